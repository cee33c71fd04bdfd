/**
 * The request lifecycle for plain HTTP: prepare (hygiene, route, target) -> forward over the
 * target's undici pool -> stream the answer back. Local replies for everything that goes wrong.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCodes } from "../errors.js";
import type { Generation } from "../config/generation.js";
import { BodyTooLargeError, ProxyHandler } from "../upstream/proxy-handler.js";
import { replyError } from "./local-reply.js";
import { prepareRequest, ProxyRequest } from "./prepare-request.js";

export interface LifecycleHost {
  /** The generation new requests start on. */
  readonly generation: Generation;
  /** True once shutdown began: answers carry `Connection: close`. */
  readonly draining: boolean;
  requestStarted(gen: Generation): void;
  requestFinished(gen: Generation, pr: ProxyRequest | null, status: number, error: unknown): void;
}

export function createRequestHandler(host: LifecycleHost, tls: boolean) {
  return function handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const gen = host.generation;
    host.requestStarted(gen);
    if (host.draining) res.shouldKeepAlive = false;
    const pr = prepareRequest(gen, req, tls);
    if (!(pr instanceof ProxyRequest)) {
      replyError(res, pr.status, pr.code, pr.message, pr.requestId, pr.close || !req.complete);
      host.requestFinished(gen, null, pr.status, null);
      return;
    }
    forward(host, pr, res);
  };
}

function forward(host: LifecycleHost, pr: ProxyRequest, res: ServerResponse): void {
  const { gen, req, route } = pr;
  const target = route.upstream.pick(pr);
  if (target === null) {
    replyError(res, 503, ErrorCodes.NO_HEALTHY_TARGET, `no healthy target in upstream "${route.upstream.name}"`, pr.requestId, !req.complete);
    host.requestFinished(gen, pr, 503, null);
    return;
  }
  pr.target = target;
  target.inflight++;
  const handler = new ProxyHandler(res, pr.requestId, {
    done(status, error) {
      target.inflight--;
      host.requestFinished(gen, pr, status, error);
    },
    draining: () => host.draining,
  });

  const { inbound } = pr;
  let body: IncomingMessage | AsyncIterable<Buffer> | null = null;
  if (inbound.chunked) body = limitedBody(req, gen.limits.maxBodyBytes);
  else if (inbound.contentLength > 0) body = req; // node:http stops at Content-Length, already checked

  target.pool.dispatch({
    path: pr.upstreamPath,
    method: req.method!,
    headers: pr.upstreamHeaders(target),
    body: body as IncomingMessage | null, // undici also takes async iterables (its types say Readable)
    headersTimeout: route.responseTimeoutMs,
    bodyTimeout: route.responseTimeoutMs,
  }, handler);
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
