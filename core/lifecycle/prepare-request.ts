/**
 * The request's way from the listener to a chosen target, shared by plain requests and WebSocket
 * upgrades: hygiene (refuse what proxies and upstreams could read differently), path
 * normalisation, routing, target choice and the headers to forward. Nothing here contacts an
 * upstream; a request refused here never reaches one.
 */
import type { InboundRequest } from "./client-messages.js";
import { ErrorCodes, type ErrorCode } from "../errors.js";
import type { CompiledRoute, Generation } from "../config/generation.js";
import { unmapIPv4 } from "../net/client-address.js";
import { normalizePath, PathRejection } from "../router/normalize-path.js";
import { originalPrefixLength, withoutPathParameters } from "../router/path-parameters.js";
import type { Params } from "../router/path-pattern.js";
import type { PickContext } from "../upstream/balancers/balancer.js";
import type { Target } from "../upstream/target.js";
import type { PluginInstance } from "../plugin-host/plugin-instance.js";
import { authorityProblem, validAuthority } from "./authority.js";
import { scanInboundHeaders, type InboundHeaders } from "./inbound-headers.js";
import { acceptRequestId } from "./request-id.js";
import { newTraceparent, traceIdOf, validTraceparent } from "./trace-context.js";

export interface Rejection {
  status: number;
  code: ErrorCode;
  message: string;
  requestId: string;
  /** Close the client connection after answering (its framing can no longer be trusted). */
  close: boolean;
}

/** Everything the forwarding step needs; one per request. */
export class ProxyRequest implements PickContext {
  target: Target | null = null;
  private ip: string | undefined;
  private forward: string[];
  private block: string | null = null;
  private paramsText: string | null = null;

  // Plugin state, shared by the chain (see core/plugin-host/plugin-chain.ts).
  /** The instances this request holds for its whole life (null without plugins). */
  pinned: PluginInstance[] | null = null;
  consumer: string | null = null;
  varsJson = "";
  /** A path set by a plugin: sent upstream as it is (stripPrefix does not apply again). */
  pathOverride: string | undefined = undefined;
  /** A Host set by a plugin. */
  hostOverride: string | undefined = undefined;
  /** Response header operations queued by onRequest hooks: ["a", name, value] or ["d", name]. */
  responseOps: string[][] | null = null;
  /** The response headers as sent (for onLog); set only when the route has plugins. */
  responseHeaders: string[] | null = null;
  /** When the upstream exchange began (performance.now()), 0 before. */
  upstreamStartedAt = 0;
  /** Names of plugins that failed on this request (for the access log). */
  failedPlugins: string[] | null = null;
  /** Time spent in this request's plugin hooks, ms (added up by PluginInstance.run). */
  pluginMs = 0;
  /**
   * Bytes the client connection had sent before this response, for the access log's bytesSent;
   * set by the lifecycle only when the access log is on (net.Socket#bytesWritten walks the
   * socket's write buffer: measured ~0.8% of a proxied request's CPU).
   */
  bytesBefore = 0;
  /** Bytes of response body written to the client (the upstream's, a plugin's or Weir's own), for onLog. */
  responseBodyBytes = 0;
  private tp: string | null = null;

  constructor(
    readonly gen: Generation,
    readonly req: InboundRequest,
    readonly requestId: string,
    readonly route: CompiledRoute,
    readonly params: Params,
    /** The canonical path that was matched. */
    readonly path: string,
    /** The canonical path after stripPrefix. */
    readonly strippedPath: string,
    /** The raw query string with its "?", or "". */
    readonly query: string,
    readonly inbound: InboundHeaders,
    readonly peer: string,
    readonly tls: boolean,
    readonly startedAt: number,
  ) {
    this.forward = inbound.forward;
  }

  /** The W3C traceparent sent upstream: the client's when valid, else a new trace's. */
  get traceparent(): string {
    if (this.tp === null) {
      const given = this.inbound.traceparent;
      this.tp = given !== undefined && validTraceparent(given) ? given : newTraceparent();
    }
    return this.tp;
  }

  get traceId(): string {
    return traceIdOf(this.traceparent);
  }

  get method(): string {
    return this.req.method!;
  }

  /** Path and query sent upstream. */
  get upstreamPath(): string {
    return (this.pathOverride ?? this.strippedPath) + this.query;
  }

  /** The client address Weir trusts (see TrustedProxies). */
  get clientIp(): string {
    return (this.ip ??= this.gen.trustedProxies.clientIp(this.peer, this.inbound.forwardedFor));
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(", ") : v;
  }

  /** The request headers as plugins see them: "name\nvalue\n..." (Host included). */
  headerBlock(): string {
    if (this.block === null) {
      const host = this.hostOverride ?? this.inbound.host;
      this.block = this.forward.join("\n");
      if (host !== undefined) this.block = this.block === "" ? "host\n" + host : this.block + "\nhost\n" + host;
    }
    return this.block;
  }

  paramsJson(): string {
    if (this.paramsText === null) {
      let any = false;
      for (const _ in this.params) { any = true; break; }
      this.paramsText = any ? JSON.stringify(this.params) : "";
    }
    return this.paramsText;
  }

  /** Replaces the headers to forward (a plugin changed them). */
  setForwardHeaders(list: string[]): void {
    this.forward = list;
    this.block = null;
  }

  pluginFailed(slot: { current: { name: string } }, _failure: unknown): void {
    (this.failedPlugins ??= []).push(slot.current.name);
  }

  /** Lines a plugin logged with ctx.log. */
  pluginLogs(plugin: string, logs: unknown): void {
    this.gen.pluginLog(plugin, this.requestId, logs);
  }

  /** Headers for the upstream: the client's minus hop-by-hop, plus Host and X-Forwarded-*. */
  upstreamHeaders(target: Target): string[] {
    const h = this.inbound;
    const out = this.forward.slice(); // a retry builds them again for another target
    const trusted = this.gen.trustedProxies.has(this.peer);
    out.push("host", this.hostOverride ?? (this.route.preserveHost && h.host !== undefined ? h.host : target.host));
    out.push("x-forwarded-for", trusted && h.forwardedFor !== undefined ? `${h.forwardedFor}, ${this.peer}` : this.peer);
    out.push("x-forwarded-proto", trusted && h.forwardedProto !== undefined ? h.forwardedProto : this.tls ? "https" : "http");
    out.push("x-forwarded-host", trusted && h.forwardedHost !== undefined ? h.forwardedHost : (h.host ?? ""));
    out.push("x-request-id", this.requestId);
    out.push("traceparent", this.traceparent);
    return out;
  }
}

function reject(status: number, code: ErrorCode, message: string, requestId: string, close = false): Rejection {
  return { status, code, message, requestId, close };
}

export function prepareRequest(gen: Generation, req: InboundRequest, tls: boolean): ProxyRequest | Rejection {
  const startedAt = performance.now();
  const inbound = scanInboundHeaders(req.rawHeaders);
  const requestId = acceptRequestId(inbound.requestId);
  const method = req.method!;

  // llhttp also reads HTTP/0.9 (a request line without a version) and "HTTP/2.0" request lines:
  // neither is an HTTP/1 message whose framing we could forward.
  if (req.httpVersionMajor !== 1)
    return reject(400, ErrorCodes.BAD_REQUEST, `HTTP/${req.httpVersionMajor}.${req.httpVersionMinor} is not supported: send HTTP/1.1 (or HTTP/1.0)`, requestId, true);
  if (method === "TRACE" || method === "CONNECT")
    return reject(405, ErrorCodes.METHOD_NOT_ALLOWED, `${method} is not allowed`, requestId, true);
  if (inbound.problem !== null) return reject(400, ErrorCodes.BAD_REQUEST, inbound.problem, requestId, true);
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request means its framing is faulty (1.0 has
  // no chunked coding); the server "MUST close the connection after responding". nginx says 400.
  if (inbound.chunked && req.httpVersionMinor === 0)
    return reject(400, ErrorCodes.BAD_REQUEST, "Transfer-Encoding is not allowed in an HTTP/1.0 request (RFC 9112 section 6.1): send HTTP/1.1", requestId, true);
  if (inbound.host === undefined && req.httpVersionMinor === 1) return reject(400, ErrorCodes.BAD_REQUEST, "missing Host header", requestId, true);
  // RFC 9110 §10.1.1: 100-continue is the only expectation there is; another one is 417 (node:http
  // would answer it itself, without Weir's JSON). Its body may be on its way: close.
  const expect = req.headers.expect;
  if (expect !== undefined && expect.trim().toLowerCase() !== "100-continue")
    return reject(417, ErrorCodes.EXPECTATION_FAILED, `the expectation "${expect}" cannot be met: only "Expect: 100-continue" is supported`, requestId, true);
  if (inbound.host !== undefined && !validAuthority(inbound.host))
    return reject(400, ErrorCodes.BAD_REQUEST, authorityProblem(inbound.host, "the Host header"), requestId, true);

  let target = req.url!;
  // RFC 9112 §3.2: a request-target never carries a fragment. llhttp lets "#" through, but Weir
  // would match `/admin#x` as its own path while a server behind drops "#x" and serves /admin.
  if (target.indexOf("#") >= 0)
    return reject(400, ErrorCodes.BAD_REQUEST, "the request target has a fragment (#), which a request never carries (RFC 9112 section 3.2): send it percent-encoded, as %23", requestId);
  if (target.charCodeAt(0) !== 47) {
    // absolute-form (RFC 9112 §3.2.2): its authority must agree with Host, or two parties could
    // route the same request differently.
    const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
    if (!m) return reject(400, ErrorCodes.BAD_REQUEST, "the request target must be a path or an absolute http(s) URL", requestId, true);
    if (!validAuthority(m[1]!)) return reject(400, ErrorCodes.BAD_REQUEST, authorityProblem(m[1]!, "the absolute URL"), requestId, true);
    if (inbound.host === undefined || m[1]!.toLowerCase() !== inbound.host.toLowerCase())
      return reject(400, ErrorCodes.BAD_REQUEST, "the absolute URL's authority differs from the Host header", requestId, true);
    target = m[2] || "/";
    if (target.charCodeAt(0) !== 47) target = "/" + target;
  }

  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q);
  const path = normalizePath(rawPath);
  if (path instanceof PathRejection) return reject(400, ErrorCodes.BAD_REQUEST, path.message, requestId);

  const hostHeader = inbound.host ?? "";
  const colon = hostHeader.lastIndexOf(":");
  const host = (colon > 0 && hostHeader.indexOf("]", colon) < 0 ? hostHeader.slice(0, colon) : hostHeader).toLowerCase();
  const routed = path.indexOf(";") < 0 ? path : withoutPathParameters(path);
  const match = gen.router.find(method, host, routed, (name) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(", ") : v;
  });
  if (match === null) return reject(404, ErrorCodes.NO_ROUTE, `no route matches ${method} ${path}`, requestId);

  const { route } = match;
  if (inbound.contentLength > gen.limits.maxBodyBytes)
    return reject(413, ErrorCodes.BODY_TOO_LARGE, `the request body is larger than ${gen.limits.maxBodyBytes} bytes`, requestId, true);

  let upstreamPath = path;
  if (route.stripPrefix && match.matchedLength > 0) {
    const cut = routed === path ? match.matchedLength : originalPrefixLength(path, routed, match.matchedLength);
    upstreamPath = path.slice(cut) || "/";
  }
  if (upstreamPath.charCodeAt(0) !== 47) upstreamPath = "/" + upstreamPath;

  return new ProxyRequest(gen, req, requestId, route, match.params, path, upstreamPath, query, inbound,
    unmapIPv4(req.socket.remoteAddress ?? ""), tls, startedAt);
}
