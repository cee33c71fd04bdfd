/**
 * The listeners: one node:http (or https) server per `listen` entry, wired to the lifecycle.
 * Every listener serves simple requests on the lean fast path (lean-front.ts) and hands
 * everything else to node:http (node:https with TLS), which parses it; we decide what every
 * malformed or slow request gets, always as JSON with a request id. Every handler node:http
 * calls goes through a ConnectionGuard (connection-guard.ts): one request at a time per
 * connection, nothing handled after an answer that closes it, and no exception let out.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { ListenConfig } from "../config/schema.js";
import type { Limits } from "../config/generation.js";
import { ErrorCodes, type ErrorCode } from "../errors.js";
import { unmapIPv4 } from "../net/client-address.js";
import { createRequestHandler, expectContinue, type LifecycleHost } from "../lifecycle/handle-request.js";
import { replyErrorRaw } from "../lifecycle/local-reply.js";
import { newRequestId } from "../lifecycle/request-id.js";
import { createUpgradeHandler } from "../upstream/websocket.js";
import { ConnectionGuard } from "./connection-guard.js";
import { LeanFront, leanListenerSupported, type LeanSettings } from "./lean-front.js";

export interface Listener {
  readonly server: Server;
  /** The listener's fast path (null with WEIR_LEAN_LISTENER=0). */
  readonly lean: LeanFront | null;
}

export function createListener(spec: ListenConfig, limits: Limits, host: LifecycleHost): Listener {
  const tls = spec.tls !== undefined;
  const options = {
    maxHeaderSize: limits.maxHeaderBytes,
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // node:http checks request and header timeouts only this often (30 s by default), which would
    // let a slow client hold a socket far past `limits.requestTimeout`.
    connectionsCheckingInterval: 1000,
    requireHostHeader: false, // we answer a missing Host ourselves, with JSON
  };
  const server: Server = tls
    ? (createHttpsServer({ ...options, cert: readFileSync(spec.tls!.cert), key: readFileSync(spec.tls!.key) }) as unknown as Server)
    : createHttpServer(options);
  // node:http keeps only the first 1,000 or so header fields by default and drops the rest
  // silently, while its parser still frames the message by all of them: Weir would check and
  // forward other headers than the message has. maxHeaderBytes bounds them instead.
  server.maxHeadersCount = 0;
  const handleRequest = createRequestHandler(host, tls);
  const internalError = (err: unknown, where: string) => host.internalError?.(err, where);
  const guard = new ConnectionGuard(internalError);
  server.on("request", guard.requests(handleRequest));
  // Expect: 100-continue (RFC 9110 §10.1.1): node:http would say "100 Continue" to everything, so a
  // client would upload a body we then refuse (404, 413, a plugin's 401). We say it only when the
  // request is about to go upstream (handle-request.ts forward).
  server.on("checkContinue", guard.requests((req: IncomingMessage, res: ServerResponse) => {
    expectContinue(req);
    handleRequest(req, res);
  }));
  // An Expect other than 100-continue: node:http would answer 417 itself; prepareRequest does.
  server.on("checkExpectation", guard.requests(handleRequest));
  server.on("upgrade", guard.takeovers(createUpgradeHandler(host, tls, handleRequest)));
  server.on("connect", guard.takeovers((_req: IncomingMessage, socket: Duplex) => {
    replyErrorRaw(socket, 405, ErrorCodes.METHOD_NOT_ALLOWED, "CONNECT is not allowed", newRequestId());
  }));
  server.on("clientError", guard.clientErrors((err: NodeJS.ErrnoException, socket: Duplex) => {
    const answered = onClientError(err, socket);
    if (answered) host.unparsedAnswered?.(unmapIPv4((socket as { remoteAddress?: string }).remoteAddress ?? ""), answered.status, answered.requestId, answered.message);
  }));
  let lean: LeanFront | null = null;
  if (process.env.WEIR_LEAN_LISTENER !== "0" && leanListenerSupported()) {
    lean = new LeanFront(server, handleRequest, leanSettings(limits), tls);
    lean.onInternalError = internalError;
  }
  return { server, lean };
}

/** Applies the limits of a new generation to a running listener. */
export function applyLimits({ server, lean }: Listener, limits: Limits): void {
  if (lean) lean.settings = leanSettings(limits);
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = limits.headersTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  (server as unknown as { maxHeaderSize: number }).maxHeaderSize = limits.maxHeaderBytes;
}

function leanSettings(limits: Limits): LeanSettings {
  return { maxHeaderBytes: limits.maxHeaderBytes, keepAliveTimeoutMs: limits.keepAliveTimeoutMs, headersTimeoutMs: limits.headersTimeoutMs };
}

/** What node:http could not parse or waited too long for. */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex): { status: number; requestId: string; message: string } | null {
  const inFlight = (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return null;
  }
  const requestId = newRequestId();
  let status: number, code: ErrorCode, message: string;
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      [status, code, message] = [431, ErrorCodes.HEADERS_TOO_LARGE, "the request headers are too large"];
      break;
    case "ERR_HTTP_REQUEST_TIMEOUT":
    case "HPE_HEADERS_TIMEOUT":
      [status, code, message] = [408, ErrorCodes.REQUEST_TIMEOUT, "the request was not received in time"];
      break;
    default:
      [status, code, message] = [400, ErrorCodes.BAD_REQUEST, `malformed request (${err.code ?? "parse error"})`];
  }
  replyErrorRaw(socket, status, code, message, requestId);
  return { status, requestId, message };
}
