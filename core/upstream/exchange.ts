/**
 * One request's way through an upstream: circuit-breaker admission, the choice of a target, the
 * attempts (the first and its retries) over the targets' pools, and what every attempt teaches
 * the balancer: in-flight counts, latency for p2c-ewma, and outcomes for outlier detection.
 * Policies are compiled per upstream (upstream.ts); this file only applies them.
 */
import type { IncomingMessage } from "node:http";
import { bodyPending, type ClientResponse } from "../lifecycle/client-messages.js";
import { ErrorCodes, type ErrorCode } from "../errors.js";
import { finishRequest, type LifecycleHost } from "../lifecycle/handle-request.js";
import type { ResponseState } from "../plugin-host/plugin-chain.js";
import { replyError } from "../lifecycle/local-reply.js";
import type { ProxyRequest } from "../lifecycle/prepare-request.js";
import type { Waiter } from "./circuit-breaker.js";
import { BodyTooLargeError, ProxyHandler, type ProxyHandlerHooks } from "./proxy-handler.js";
import { retryEligible } from "./retry.js";
import type { Target } from "./target.js";

/** Makes the request body for one attempt (a stream that was not read yet, or null). */
export type BodySource = () => IncomingMessage | AsyncIterable<Buffer> | Buffer | null;

/** Sends a prepared request to its route's upstream and streams the answer to `res`. */
export function forwardToUpstream(host: LifecycleHost, pr: ProxyRequest, res: ClientResponse, body: BodySource, hasBody: boolean): void {
  const ex = new Exchange(host, pr, res, body, hasBody);
  const breaker = pr.route.upstream.breaker;
  if (breaker === null) return ex.start();
  const admitted = breaker.acquire(ex.start, ex.onWaitTimeout);
  if (admitted === "full") {
    ex.reject(503, ErrorCodes.UPSTREAM_OVERLOADED,
      `upstream "${pr.route.upstream.name}" has ${breaker.maxConnections} requests in progress and ${breaker.maxPending} waiting (maxConnections/maxPending); try again later`);
  } else if (admitted !== "now") {
    ex.wait(admitted);
  }
}

class Exchange implements ProxyHandlerHooks {
  private target: Target | null = null;
  private next: Target | null = null;
  private attemptsLeft: number;
  private attemptStart = 0;
  private started = false;
  private finished = false;
  private holdsRetry = false;
  private holdsSlot = false;
  private waiter: Waiter | null = null;

  constructor(
    private readonly host: LifecycleHost,
    private readonly pr: ProxyRequest,
    private readonly res: ClientResponse,
    private readonly body: BodySource,
    private readonly hasBody: boolean,
  ) {
    this.attemptsLeft = pr.route.upstream.retries.attempts;
    const chain = pr.route.chain;
    // Only routes with plugins get a response hook: the handler's fast path checks for it.
    if (!chain.empty) {
      this.response = (status, headers) => {
        const r = chain.runResponse(pr, { status, headers, local: null });
        const keep = (st: ResponseState) => { pr.responseHeaders = st.headers; return st; };
        return r instanceof Promise ? r.then(keep) : keep(r);
      };
    }
  }

  response?: ProxyHandlerHooks["response"];

  /** Admitted (at once, or after waiting for a slot of the circuit breaker). */
  readonly start = (): void => {
    const up = this.pr.route.upstream;
    if (this.waiter) { this.res.off("close", this.onCloseWhileWaiting); this.waiter = null; }
    this.holdsSlot = up.breaker !== null;
    this.started = true;
    up.budget.active++;
    if (this.res.destroyed) return this.finish(499, null);
    const t = up.pick(this.pr);
    // All targets down (unhealthy or ejected): answer at once, without trying a known-dead one.
    if (t === null) return this.reject(503, ErrorCodes.NO_HEALTHY_TARGET, `no healthy target in upstream "${up.name}"`);
    this.send(t);
  };

  wait(w: Waiter): void {
    this.waiter = w;
    this.res.once("close", this.onCloseWhileWaiting);
  }

  private readonly onCloseWhileWaiting = (): void => {
    if (!this.waiter) return;
    this.pr.route.upstream.breaker!.cancel(this.waiter);
    this.waiter = null;
    this.finish(499, null);
  };

  readonly onWaitTimeout = (): void => {
    this.res.off("close", this.onCloseWhileWaiting);
    this.waiter = null;
    const b = this.pr.route.upstream.breaker!;
    this.reject(503, ErrorCodes.UPSTREAM_OVERLOADED, `no connection to upstream "${this.pr.route.upstream.name}" freed up within ${b.maxWaitMs} ms (maxConnections ${b.maxConnections}); try again later`);
  };

  reject(status: number, code: ErrorCode, message: string): void {
    this.pr.responseBodyBytes = replyError(this.res, status, code, message, this.pr.requestId, bodyPending(this.pr.req));
    this.finish(status, null);
  }

  private send(t: Target): void {
    const { pr } = this;
    this.target = t;
    pr.target = t;
    t.inflight++;
    this.attemptStart = performance.now();
    if (pr.upstreamStartedAt === 0) pr.upstreamStartedAt = this.attemptStart;
    const handler = new ProxyHandler(this.res, pr.requestId, this, pr);
    t.pool.dispatch({
      path: pr.upstreamPath,
      method: pr.req.method!,
      headers: pr.upstreamHeaders(t),
      body: this.body() as IncomingMessage | null, // undici also takes async iterables (its types say Readable)
      headersTimeout: pr.route.responseTimeoutMs,
      bodyTimeout: pr.route.responseTimeoutMs,
    }, handler);
  }

  draining(): boolean {
    return this.host.draining;
  }

  retryable(status: number, error: unknown): boolean {
    if (this.attemptsLeft <= 0 || this.res.destroyed) return false;
    const req = this.pr.req;
    const bodyTouched = this.hasBody && (req.readableDidRead || req.destroyed);
    if (!retryEligible(req.method!, this.hasBody, bodyTouched, status, error, this.pr.route.upstream.retries.connectionErrorsOnly)) return false;
    const up = this.pr.route.upstream;
    // Another target if there is one; the same one when it is the only one left.
    const next = up.pick(this.pr, this.target) ?? up.pick(this.pr);
    if (next === null) return false;
    if (!this.holdsRetry) {
      if (!up.budget.tryAcquire()) return false;
      this.holdsRetry = true;
    }
    this.next = next;
    this.attemptsLeft--;
    return true;
  }

  retry(status: number, error: unknown): void {
    this.attemptOver(status, error);
    const next = this.next!;
    this.next = null;
    if (this.res.destroyed) return this.finish(499, error);
    this.send(next);
  }

  done(status: number, error: unknown): void {
    this.attemptOver(status, error);
    this.finish(status, error);
  }

  /** What this attempt teaches: latency for p2c-ewma, success or failure for outlier detection. */
  private attemptOver(status: number, error: unknown): void {
    const t = this.target!;
    t.inflight--;
    // The client left, or sent too much: says nothing about the target.
    if (status === 499 || error instanceof BodyTooLargeError) return;
    const now = Date.now();
    const ms = performance.now() - this.attemptStart;
    const outlier = this.pr.route.upstream.outlier;
    if (error != null || status >= 500) {
      t.latency.penalize(ms, now);
      outlier?.failure(t, now);
    } else {
      t.latency.observe(ms, now);
      outlier?.success(t);
    }
  }

  private finish(status: number, error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    const up = this.pr.route.upstream;
    if (this.started) up.budget.active--;
    if (this.holdsRetry) up.budget.release();
    if (this.holdsSlot) up.breaker!.release();
    finishRequest(this.host, this.pr, status, error);
  }
}
