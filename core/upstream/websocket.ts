/**
 * WebSocket upgrades (RFC 6455 §4): the request is prepared like any other (hygiene, route,
 * target), then undici performs the upgrade on the target. We check that the upstream really
 * switched protocols with the right `Sec-WebSocket-Accept` before telling the client so; otherwise
 * the client gets a 502. After the 101 both sockets are piped to each other.
 * Other upgrades (h2c, which can smuggle requests past a proxy's rules) are refused.
 */
import { createHash } from "node:crypto";
import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ErrorCodes } from "../errors.js";
import { finishRequest, type LifecycleHost } from "../lifecycle/handle-request.js";
import { replyErrorRaw, replyLocalRaw } from "../lifecycle/local-reply.js";
import { jsonError, type LocalResponse } from "../plugin-host/plugin-chain.js";
import { prepareRequest, ProxyRequest } from "../lifecycle/prepare-request.js";
import { newRequestId } from "../lifecycle/request-id.js";
import { faultOf } from "./fault-status.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export function createUpgradeHandler(host: LifecycleHost, tls: boolean, handleRequest: (req: IncomingMessage, res: ServerResponse) => void) {
  return function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    const protocol = String(req.headers.upgrade ?? "").toLowerCase();
    if (protocol !== "websocket") return answerWithoutUpgrade(req, socket, handleRequest);
    const gen = host.generation;
    host.requestStarted(gen);
    const pr = prepareRequest(gen, req, tls);
    if (!(pr instanceof ProxyRequest)) {
      replyErrorRaw(socket, pr.status, pr.code, pr.message, pr.requestId);
      host.requestFinished(gen, null, pr.status, null);
      return;
    }
    if (host.logsAccess) pr.bytesBefore = req.socket.bytesWritten;
    const key = req.headers["sec-websocket-key"];
    if (req.method !== "GET" || typeof key !== "string" || key.length === 0) {
      replyErrorRaw(socket, 400, ErrorCodes.BAD_REQUEST, "a WebSocket upgrade must be a GET with Sec-WebSocket-Key", pr.requestId);
      finishRequest(host, pr, 400, null);
      return;
    }
    // The route's request hooks run for an upgrade as for any request: an auth plugin must be
    // able to refuse it (or a protected route would be open to WebSocket clients).
    const chain = pr.route.chain;
    if (chain.empty) return connect(host, pr, socket, head, key);
    chain.pin(pr);
    const go = (local: LocalResponse | null) => {
      if (local === null) return connect(host, pr, socket, head, key);
      replyLocalRaw(socket, local.status, local.headers, local.body, pr.requestId);
      finishRequest(host, pr, local.status, null);
    };
    const outcome = chain.runRequest(pr);
    if (outcome instanceof Promise) outcome.then(go, (err: Error) => go(jsonError(500, ErrorCodes.PLUGIN_FAILED, `a plugin failed: ${err.message}`, pr.requestId)));
    else go(outcome);
  };
}

/**
 * Any other upgrade (h2c from `curl --http2`, which could smuggle requests past a proxy's rules if
 * passed on) is not performed: as nginx and Envoy do, the request is answered over HTTP/1.1 (the
 * Upgrade header is hop-by-hop and never forwarded), and the connection closes after the answer
 * since node:http has handed the socket over. A request with a body is refused instead: its bytes
 * are already in flight on a socket that no longer has a parser.
 */
function answerWithoutUpgrade(req: IncomingMessage, socket: Duplex, handleRequest: (req: IncomingMessage, res: ServerResponse) => void): void {
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  if (hasBody) {
    replyErrorRaw(socket, 400, ErrorCodes.BAD_REQUEST, `upgrading to "${String(req.headers.upgrade)}" is not supported, and a request with a body cannot be answered without it; send it without Upgrade`, newRequestId());
    return;
  }
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once("finish", () => { res.detachSocket(socket as Socket); socket.end(); });
  res.once("close", () => { if (!socket.destroyed) socket.destroy(); });
  handleRequest(req, res);
}

/** Picks a target and performs the upgrade on it; pipes both sockets once it switched protocols. */
function connect(host: LifecycleHost, pr: ProxyRequest, socket: Duplex, head: Buffer, key: string): void {
  const target = pr.route.upstream.pick(pr);
  if (target === null) {
    replyErrorRaw(socket, 503, ErrorCodes.NO_HEALTHY_TARGET, `no healthy target in upstream "${pr.route.upstream.name}"`, pr.requestId);
    finishRequest(host, pr, 503, null);
    return;
  }
  pr.target = target;
  target.inflight++;
  let finished = false;
  const finish = (status: number, err: unknown) => {
    if (finished) return;
    finished = true;
    target.inflight--;
    finishRequest(host, pr, status, err);
  };
  target.pool.upgrade({ path: pr.upstreamPath, method: "GET", headers: pr.upstreamHeaders(target), protocol: "websocket" }).then(
    ({ headers, socket: upstream }) => {
      const expected = createHash("sha1").update(key + GUID).digest("base64");
      if (headers["sec-websocket-accept"] !== expected) {
        upstream.destroy();
        replyErrorRaw(socket, 502, ErrorCodes.UPSTREAM_BAD_RESPONSE, "the upstream answered the WebSocket upgrade with a wrong Sec-WebSocket-Accept", pr.requestId);
        finish(502, null);
        return;
      }
      if (socket.destroyed) { upstream.destroy(); finish(499, null); return; }
      let lines = "HTTP/1.1 101 Switching Protocols\r\n";
      for (const [name, value] of Object.entries(headers)) {
        if (name === "x-request-id") continue;
        for (const v of Array.isArray(value) ? value : [value]) lines += `${name}: ${v}\r\n`;
      }
      socket.write(lines + `x-request-id: ${pr.requestId}\r\n\r\n`);
      if (head.length) upstream.write(head);
      const close = () => { socket.destroy(); upstream.destroy(); finish(101, null); };
      upstream.on("error", close).on("close", close);
      socket.on("close", close);
      socket.pipe(upstream);
      upstream.pipe(socket);
    },
    (err: unknown) => {
      // undici reports an upstream that answered without switching protocols (a 200, a 404) as a
      // SocketError "bad upgrade" (api-upgrade.js onHeaders), which would read as a reset.
      const fault = (err as Error | null)?.message === "bad upgrade"
        ? { status: 502, code: ErrorCodes.UPSTREAM_BAD_RESPONSE, message: "the upstream answered the WebSocket upgrade without switching protocols" }
        : faultOf(err);
      replyErrorRaw(socket, fault.status, fault.code, fault.message, pr.requestId);
      finish(fault.status, err);
    },
  );
}
