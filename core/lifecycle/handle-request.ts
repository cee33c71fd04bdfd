/**
 * The request lifecycle for plain HTTP: prepare (hygiene, route, target) -> forward over the
 * target's undici pool -> stream the answer back. Local replies for everything that goes wrong.
 */
import type { IncomingMessage } from "node:http";
import { bodyPending, type ClientResponse, type InboundRequest } from "./client-messages.js";
import { ErrorCodes } from "../errors.js";
import type { Generation } from "../config/generation.js";
import { forwardToUpstream } from "../upstream/exchange.js";
import { BodyTooLargeError } from "../upstream/proxy-handler.js";
import { replyError, replyLocal } from "./local-reply.js";
import { jsonError, type LocalResponse, type ResponseState } from "../plugin-host/plugin-chain.js";
import { prepareRequest, ProxyRequest, type Rejection } from "./prepare-request.js";

export interface LifecycleHost {
  /** The generation new requests start on. */
  readonly generation: Generation;
  /** True once shutdown began: answers carry `Connection: close`. */
  readonly draining: boolean;
  /** Whether access log lines are written (they need the bytes each response sent). */
  readonly logsAccess: boolean;
  requestStarted(gen: Generation): void;
  /** Once per request; `pr` is null for a request refused before routing, then `refused` says why. */
  requestFinished(gen: Generation, pr: ProxyRequest | null, status: number, error: unknown, refused?: { req: InboundRequest; rejection: Rejection }): void;
  /** A request node:http could not parse or waited too long for was answered (400/408/431). */
  unparsedAnswered?(peer: string, status: number, requestId: string, message: string): void;
  /** An exception was caught at the listener's boundary (a bug in Weir: it is logged). */
  internalError?(err: unknown, where: string): void;
}

export function createRequestHandler(host: LifecycleHost, tls: boolean) {
  return function handleRequest(req: InboundRequest, res: ClientResponse): void {
    const gen = host.generation;
    host.requestStarted(gen);
    if (host.draining) res.shouldKeepAlive = false;
    const pr = prepareRequest(gen, req, tls);
    if (!(pr instanceof ProxyRequest)) {
      replyError(res, pr.status, pr.code, pr.message, pr.requestId, pr.close || bodyPending(req));
      host.requestFinished(gen, null, pr.status, null, { req, rejection: pr });
      return;
    }
    if (host.logsAccess) pr.bytesBefore = req.socket.bytesWritten;
    const chain = pr.route.chain;
    if (chain.empty) return forward(host, pr, res);
    chain.pin(pr);
    const outcome = chain.runRequest(pr);
    if (outcome === null) return forward(host, pr, res);
    if (!(outcome instanceof Promise)) return respondLocally(host, pr, res, outcome);
    outcome.then(
      (o) => (o === null ? forward(host, pr, res) : respondLocally(host, pr, res, o)),
      (err: Error) => respondLocally(host, pr, res, jsonError(500, ErrorCodes.PLUGIN_FAILED, `a plugin failed: ${err.message}`, pr.requestId)),
    );
  };
}

/** A plugin answered (ctx.respond) or failed closed: the response hooks still see the answer. */
function respondLocally(host: LifecycleHost, pr: ProxyRequest, res: ClientResponse, local: LocalResponse): void {
  const send = (s: ResponseState) => {
    if (host.draining) res.shouldKeepAlive = false;
    replyLocal(res, s.status, s.headers, s.local?.body ?? local.body, pr.requestId);
    pr.responseHeaders = s.headers;
    finishRequest(host, pr, s.status, null);
  };
  const state: ResponseState = { status: local.status, headers: local.headers, local: null };
  const r = pr.route.chain.runResponse(pr, state);
  if (r instanceof Promise) r.then(send, () => send(state));
  else send(r);
}

/** Requests that sent `Expect: 100-continue` and have not been told to go on yet. */
const awaitingContinue = new WeakSet<InboundRequest>();

/** Marks a request whose client waits for "100 Continue" before sending its body. */
export function expectContinue(req: IncomingMessage): void {
  awaitingContinue.add(req);
}

/**
 * The end of every proxied request: the log hooks are queued (they run after the response, off
 * this path), the plugin instances the request held are let go, and the runtime is told.
 */
export function finishRequest(host: LifecycleHost, pr: ProxyRequest, status: number, error: unknown): void {
  const chain = pr.route.chain;
  if (pr.pinned !== null) {
    chain.runLog(pr, status, pr.responseHeaders ?? []);
    chain.release(pr);
  }
  host.requestFinished(pr.gen, pr, status, error);
}

function forward(host: LifecycleHost, pr: ProxyRequest, res: ClientResponse): void {
  if (awaitingContinue.has(pr.req)) {
    awaitingContinue.delete(pr.req);
    res.writeContinue();
  }
  const { gen, req, inbound } = pr;
  // The body is made per attempt: a retry after a connect failure sends a stream nobody read yet.
  // A body is a Buffer the lean listener read with the head, or node:http's request stream (the
  // lean listener takes no chunked body).
  const buffered = req.bodyBuffer;
  const body = buffered !== undefined ? () => buffered
    : inbound.chunked ? () => limitedBody(req as IncomingMessage, gen.limits.maxBodyBytes)
    : inbound.contentLength > 0 ? () => req as IncomingMessage // node:http stops at Content-Length, already checked
    : () => null;
  forwardToUpstream(host, pr, res, body, inbound.chunked || inbound.contentLength > 0);
}

/**
 * A chunked body has no announced length: count it as it streams and fail the upstream request
 * when it crosses the limit. `destroyOnReturn: false` keeps the client socket open so that the 413
 * can still be written.
 */
async function* limitedBody(req: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  let received = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > max) throw new BodyTooLargeError(`the request body is larger than ${max} bytes`);
    yield chunk;
  }
}
