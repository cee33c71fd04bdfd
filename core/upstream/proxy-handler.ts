/**
 * The undici dispatch handler that streams one upstream response to the client.
 *
 * We use undici's raw handler interface (onConnect/onHeaders/onData/onComplete/onError) because
 * it hands us the raw header buffers without building objects; measured here `dispatch` is ~1.3x
 * `request`. (undici 7 marks these names deprecated in favour of onRequestStart &c., which wrap
 * the same calls in an adapter that parses headers; we switch when the raw path goes away.)
 * Backpressure: onData returns false when the client socket is full, undici pauses reading the
 * upstream until we call `resume` on the client's 'drain'.
 */
import { bodyPending, type ClientResponse } from "../lifecycle/client-messages.js";
import { ErrorCodes } from "../errors.js";
import { replyError, replyLocal } from "../lifecycle/local-reply.js";
import type { ResponseState } from "../plugin-host/plugin-chain.js";
import { HOP_BY_HOP, connectionListed, removeNamed } from "../lifecycle/hop-by-hop.js";
import { faultOf } from "./fault-status.js";

export interface ProxyHandlerHooks {
  /** Called once when the exchange is over, whatever the outcome. */
  done(status: number, error: unknown): void;
  /** Whether shutdown began since the request started: the answer then closes the connection. */
  draining?(): boolean;
  /**
   * Asked once, while nothing of this exchange has reached the client, when the upstream answered
   * 5xx or failed: true means "send it again" (see upstream/retry.ts). The handler then forwards
   * nothing of this attempt, reads and drops the answer's body (so the connection can be reused),
   * and calls `retry` instead of `done` when the attempt is over.
   */
  retryable?(status: number, error: unknown): boolean;
  retry?(status: number, error: unknown): void;
  /** The route's response hooks (plugins' onResponse), when it has any. */
  response?(status: number, headers: string[]): ResponseState | Promise<ResponseState>;
}

export class BodyTooLargeError extends Error {
  readonly code = "WEIR_BODY_TOO_LARGE";
}

export class ProxyHandler {
  private abortFn: ((err?: Error) => void) | null = null;
  private resumeFn: (() => void) | null = null;
  private finished = false;
  private pendingAbort: Error | null = null;
  /** Bytes of a Content-Length body still to come (-1: no Content-Length). */
  private bodyLeft = -1;
  /** Set when a response hook replaced the upstream's answer with a local one. */
  private replaced = false;
  /** Set when this attempt's answer is dropped for a retry. */
  private retrying = false;
  status = 0;

  constructor(
    private readonly res: ClientResponse,
    private readonly requestId: string,
    private readonly hooks: ProxyHandlerHooks,
    /** Where the body bytes written to the client are added up (a dropped retry attempt adds none). */
    private readonly sent: { responseBodyBytes: number } = { responseBodyBytes: 0 },
  ) {
    res.once("close", this.onClientClose);
  }

  /** Aborts the upstream exchange (client gone, body too large). */
  abort(err: Error): void {
    if (this.abortFn) this.abortFn(err);
    else this.pendingAbort = err;
  }

  private readonly onClientClose = (): void => {
    if (!this.finished) this.abort(new Error("the client closed the connection"));
  };

  private readonly onDrain = (): void => {
    this.resumeFn?.();
  };

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.pendingAbort) abort(this.pendingAbort);
    else if (this.res.destroyed) abort(new Error("the client closed the connection"));
  }

  onResponseStarted(): void {}

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 100/102/103 are not forwarded
    this.status = statusCode;
    this.resumeFn = resume;
    if (statusCode >= 500 && this.hooks.retryable?.(statusCode, null)) {
      this.retrying = true;
      return true;
    }
    let out: string[] = [];
    let listed: Set<string> | null = null;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString("latin1");
      const value = raw[i + 1]!.toString("latin1");
      if (name.length <= 17) {
        const lower = name.toLowerCase();
        if (HOP_BY_HOP.has(lower)) {
          // Fast path for the usual values, which name no other header (saves a split and a Set
          // per response; profiled at ~0.4% of the proxy's CPU).
          if (lower === "connection" && value !== "keep-alive" && value !== "close") connectionListed(value, (listed ??= new Set()));
          continue;
        }
        if (lower === "x-request-id") continue;
        if (lower === "content-length") this.bodyLeft = Number(value);
      }
      out.push(name, value);
    }
    if (listed !== null && listed.size) out = removeNamed(out, listed);
    if (this.hooks.response) {
      // Plugins see the headers before the client does; an async hook pauses the upstream body.
      const state = this.hooks.response(statusCode, out);
      if (state instanceof Promise) {
        state.then((s) => { if (this.emit(s)) resume(); }, (err: Error) => this.onError(err));
        return false;
      }
      return this.emit(state);
    }
    out.push("x-request-id", this.requestId);
    const res = this.res;
    if (this.hooks.draining?.()) res.shouldKeepAlive = false;
    // Only the upstream's headers (checked by undici's parser) and our request id: no plugin
    // touched them.
    if (res.writeTrustedHead !== undefined) res.writeTrustedHead(statusCode, out);
    else res.writeHead(statusCode, out);
    return true;
  }

  /** Sends the head the response hooks settled on, or their local response instead. */
  private emit(s: ResponseState): boolean {
    if (this.finished || this.res.destroyed) return false;
    if (this.hooks.draining?.()) this.res.shouldKeepAlive = false;
    if (s.local) {
      this.finished = true;
      this.replaced = true;
      // s.status/s.headers, not s.local's: response hooks after the one that replaced the answer
      // may still change them (as for a local reply from onRequest, see respondLocally).
      this.sent.responseBodyBytes = replyLocal(this.res, s.status, s.headers, s.local.body, this.requestId);
      this.abortFn?.(new Error("the response was replaced by a plugin"));
      this.hooks.done(s.status, null);
      return false;
    }
    this.status = s.status;
    s.headers.push("x-request-id", this.requestId);
    this.res.writeHead(s.status, s.headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.replaced) return true;
    if (this.retrying) return true;
    this.sent.responseBodyBytes += chunk.length;
    if (this.bodyLeft > 0 && (this.bodyLeft -= chunk.length) === 0) {
      // The chunk that completes a Content-Length body ends the response in the same call:
      // one write and no second pass through ServerResponse.end (measured on the hot path).
      this.res.end(chunk);
      return true;
    }
    if (this.res.write(chunk)) return true;
    this.res.once("drain", this.onDrain);
    return false;
  }

  onComplete(): void {
    if (this.replaced) return;
    this.finished = true;
    if (this.retrying) return this.handOver(this.status, null);
    if (!this.res.writableEnded) this.res.end();
    this.hooks.done(this.status, null);
  }

  onError(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    const res = this.res;
    if (res.destroyed) {
      this.hooks.done(499, err);
      return;
    }
    // The dropped body of a retried answer failed: the retry is already decided.
    if (this.retrying) return this.handOver(this.status, err);
    if (res.headersSent) {
      // The status line went out: the only honest signal left is to cut the connection, so the
      // client does not take a truncated body for a complete one.
      res.destroy(err);
      this.hooks.done(this.status, err);
      return;
    }
    if (err instanceof BodyTooLargeError) {
      this.sent.responseBodyBytes = replyError(res, 413, ErrorCodes.BODY_TOO_LARGE, err.message, this.requestId, true);
      this.hooks.done(413, err);
      return;
    }
    const fault = faultOf(err);
    if (this.hooks.retryable?.(fault.status, err)) return this.handOver(fault.status, err);
    this.sent.responseBodyBytes = replyError(res, fault.status, fault.code, fault.message, this.requestId, bodyPending(res.req));
    this.hooks.done(fault.status, err);
  }

  /** Ends this attempt without touching the client and lets the caller send the next one. */
  private handOver(status: number, err: unknown): void {
    this.res.off("close", this.onClientClose);
    this.res.off("drain", this.onDrain);
    this.hooks.retry!(status, err);
  }
}
