/**
 * One pass over the client's raw headers: finds what routing and hygiene need, rejects framing
 * that proxies and upstreams could disagree on (request smuggling), and collects the headers to
 * forward. We read `rawHeaders`, not `req.headers`, because node:http merges duplicates there and
 * we must see them.
 */
import { connectionListed, HOP_BY_HOP, removeNamed } from "./hop-by-hop.js";

const enum Kind { Other, Hop, Host, ContentLength, TransferEncoding, Connection, Upgrade, XForwardedFor, XForwardedProto, XForwardedHost, XRequestId, Traceparent }

const KINDS = new Map<string, Kind>([
  ["host", Kind.Host],
  ["content-length", Kind.ContentLength],
  ["transfer-encoding", Kind.TransferEncoding],
  ["connection", Kind.Connection],
  ["upgrade", Kind.Upgrade],
  ["x-forwarded-for", Kind.XForwardedFor],
  ["x-forwarded-proto", Kind.XForwardedProto],
  ["x-forwarded-host", Kind.XForwardedHost],
  ["x-request-id", Kind.XRequestId],
  ["traceparent", Kind.Traceparent],
]);
for (const h of HOP_BY_HOP) if (!KINDS.has(h)) KINDS.set(h, Kind.Hop);

export interface InboundHeaders {
  /** Headers to forward as a flat [name, value, ...] list (original spelling). */
  forward: string[];
  host: string | undefined;
  forwardedFor: string | undefined;
  forwardedProto: string | undefined;
  forwardedHost: string | undefined;
  requestId: string | undefined;
  /** The client's W3C traceparent (not forwarded as is: see ProxyRequest.traceparent). */
  traceparent: string | undefined;
  upgrade: string | undefined;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  /** Why the request must be refused with 400, or null. */
  problem: string | null;
}

const FRAMING_SPELLING = "Content-Length or Transfer-Encoding";

/**
 * `Transfer_Encoding`, `Content_Length`, `Transfer--Encoding`: not framing headers to Weir or
 * llhttp, but servers behind CGI-style conventions (header names mapped to HTTP_CONTENT_LENGTH,
 * `-` and `_` alike) read them as the real thing, and would frame the body differently from
 * Weir (request smuggling; gunicorn CVE-2024-1135). nginx drops names with `_` by default; Weir
 * refuses these two, whose only use is that confusion.
 */
function disguisedFraming(name: string): boolean {
  if (name.indexOf("_") < 0 && name.indexOf("--") < 0) return false;
  const folded = name.toLowerCase().replace(/[-_]+/g, "-");
  return folded === "content-length" || folded === "transfer-encoding";
}

export function scanInboundHeaders(raw: readonly string[]): InboundHeaders {
  const forward: string[] = [];
  const r: InboundHeaders = {
    forward, host: undefined, forwardedFor: undefined, forwardedProto: undefined, forwardedHost: undefined,
    requestId: undefined, traceparent: undefined, upgrade: undefined, contentLength: -1, chunked: false, problem: null,
  };
  let listed: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const kind = KINDS.get(name.length <= 17 ? name.toLowerCase() : "") ?? Kind.Other;
    switch (kind) {
      case Kind.Other:
        if (name.length >= 14 && disguisedFraming(name)) r.problem = `the header "${name}" looks like ${FRAMING_SPELLING} and could frame the body for the next server: send it spelled exactly`;
        forward.push(name, value);
        break;
      case Kind.Host:
        if (r.host !== undefined) r.problem = "duplicate Host header";
        r.host = value;
        break;
      case Kind.ContentLength:
        if (r.contentLength !== -1) r.problem = "duplicate Content-Length header";
        else if (!/^[0-9]{1,15}$/.test(value)) r.problem = "invalid Content-Length header";
        else r.contentLength = Number(value);
        forward.push(name, value);
        break;
      case Kind.TransferEncoding:
        if (r.chunked || value.trim().toLowerCase() !== "chunked") r.problem = "unsupported Transfer-Encoding (only a single \"chunked\" is accepted)";
        r.chunked = true;
        break;
      case Kind.Connection:
        if (value.indexOf(",") >= 0 || !/^\s*(keep-alive|close|upgrade)\s*$/i.test(value)) connectionListed(value, (listed ??= new Set()));
        break;
      case Kind.Upgrade:
        r.upgrade = value;
        break;
      case Kind.XForwardedFor:
        r.forwardedFor = r.forwardedFor === undefined ? value : `${r.forwardedFor}, ${value}`;
        break;
      case Kind.XForwardedProto:
        r.forwardedProto ??= value;
        break;
      case Kind.XForwardedHost:
        r.forwardedHost ??= value;
        break;
      case Kind.XRequestId:
        r.requestId ??= value;
        break;
      case Kind.Traceparent:
        // Two traceparent headers are invalid (W3C Trace Context §3.2): start a new trace.
        r.traceparent = r.traceparent === undefined ? value : "";
        break;
      case Kind.Hop:
        break;
    }
  }
  if (r.chunked && r.contentLength !== -1) r.problem = "both Content-Length and Transfer-Encoding are present";
  if (listed !== null && listed.size) r.forward = removeNamed(forward, listed);
  return r;
}
