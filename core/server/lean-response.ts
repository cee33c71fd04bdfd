/**
 * The request and response objects of the lean listener (lean-front.ts): plain objects, not
 * streams, for an HTTP/1.1 request that arrived whole in one read (its body, if any, a Buffer). They implement what the
 * lifecycle uses (core/lifecycle/client-messages.ts) with node:http's observable behaviour: the
 * same status line, a Date header when none is given, `Connection: keep-alive` and `Keep-Alive:
 * timeout=N` (or `Connection: close`), chunked framing when there is no Content-Length, no body for
 * HEAD, 204 and 304, header values checked for characters that would split the response. What
 * they save is node:http's per-request work: an IncomingMessage and a ServerResponse (two streams
 * with their state and events), and the separate writes of head and body.
 */
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import type { ClientResponse, InboundRequest } from "../lifecycle/client-messages.js";
import { isHeaderName, isHeaderValue } from "../lifecycle/header-rule.js";

/** The connection a lean response is written to (see LeanConnection). */
export interface ResponseSink {
  readonly socket: Socket;
  /** "Connection: keep-alive\r\n" and, with a keep-alive timeout, "Keep-Alive: timeout=N\r\n". */
  readonly keepAliveHeader: string;
  /** The response ended; `keepAlive` false closes the connection once it is written. */
  responseEnded(keepAlive: boolean): void;
}

export class LeanRequest implements InboundRequest {
  readonly complete = true;
  readonly readableDidRead = false;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  private merged: IncomingHttpHeaders | null = null;

  constructor(
    readonly method: string,
    readonly url: string,
    readonly rawHeaders: string[],
    readonly socket: Socket,
    /** The whole body, when it came in the same read as the head. */
    readonly bodyBuffer: Buffer | undefined,
  ) {}

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  /** Built on first use, merged as node:http merges duplicates (IncomingMessage#headers). */
  get headers(): IncomingHttpHeaders {
    return (this.merged ??= mergeHeaders(this.rawHeaders));
  }
}

// node:http keeps the first of these when a client repeats them (_http_incoming.js matchKnownFields).
const FIRST_WINS = new Set([
  "content-type", "content-length", "user-agent", "referer", "host", "authorization", "proxy-authorization",
  "if-modified-since", "if-unmodified-since", "from", "location", "max-forwards", "retry-after", "etag",
  "last-modified", "server", "age", "expires",
]);

function mergeHeaders(raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = Object.create(null);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const had = out[name];
    if (had === undefined) out[name] = name === "set-cookie" ? [value] : value;
    else if (name === "set-cookie") (had as string[]).push(value);
    else if (FIRST_WINS.has(name)) continue;
    else out[name] = had + (name === "cookie" ? "; " : ", ") + value;
  }
  return out as IncomingHttpHeaders;
}


let dateText = "";
let dateUntil = 0;
/** The Date header's value, made at most once per second (as node:http's utcDate does). */
function httpDate(): string {
  const now = Date.now();
  if (now >= dateUntil) {
    dateText = new Date(now).toUTCString();
    dateUntil = now - (now % 1000) + 1000;
  }
  return dateText;
}

/** node:http's object form of headers, flat: an array value is one line per element. */
function flatten(headers: OutgoingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name of Object.keys(headers)) {
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) out.push(name, String(one));
    else out.push(name, String(v));
  }
  return out;
}

type Listener = () => void;

export class LeanResponse implements ClientResponse {
  headersSent = false;
  writableEnded = false;
  shouldKeepAlive = true;
  /** The head, made by writeHead and sent with the first body bytes (one write for both). */
  private head = "";
  private chunked = false;
  private bodyless: boolean;
  private closeAfter = false;
  private onClose: Listener[] | null = null;
  private onDrain: Listener[] | null = null;

  constructor(
    private readonly sink: ResponseSink,
    readonly req: LeanRequest,
  ) {
    this.bodyless = req.method === "HEAD";
  }

  get destroyed(): boolean {
    return this.sink.socket.destroyed;
  }

  writeHead(status: number, headers: string[] | OutgoingHttpHeaders): this {
    return this.startHead(status, Array.isArray(headers) ? headers : flatten(headers), true);
  }

  /**
   * writeHead for headers that need no check: an upstream's, as undici's parser accepted them,
   * plus Weir's own X-Request-Id (printable ASCII, see request-id.ts). Saves two regular
   * expressions per header on the hot path.
   */
  writeTrustedHead(status: number, headers: string[]): this {
    return this.startHead(status, headers, false);
  }

  private startHead(status: number, list: string[], check: boolean): this {
    if (this.headersSent) throw new Error("writeHead called twice");
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "unknown"}\r\n`;
    let length = false, date = false, connection = false;
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i]!;
      const value = list[i + 1]!;
      // The plugin chain refuses such a header as the plugin's failure before it gets here; this
      // throws as node:http's writeHead does (ERR_INVALID_CHAR), never writes a split head.
      if (check && (!isHeaderName(name) || !isHeaderValue(value))) throw new TypeError(`invalid character in the response header "${name}"`);
      switch (name.length) {
        case 4: if (name.toLowerCase() === "date") date = true; break;
        case 10:
          if (name.toLowerCase() === "connection") {
            connection = true;
            if (value.toLowerCase() === "close") this.shouldKeepAlive = false;
          }
          break;
        case 14: if (name.toLowerCase() === "content-length") length = true; break;
        // We frame the body ourselves (chunked when there is no length): a caller's
        // Transfer-Encoding would describe a framing that is not the one sent.
        case 17: if (name.toLowerCase() === "transfer-encoding") continue;
      }
      head += name + ": " + value + "\r\n";
    }
    if (status === 204 || status === 304 || status < 200) this.bodyless = true;
    if (!date) head += "Date: " + httpDate() + "\r\n";
    if (!connection) head += this.shouldKeepAlive ? this.sink.keepAliveHeader : "Connection: close\r\n";
    if (!length && !this.bodyless) {
      head += "Transfer-Encoding: chunked\r\n";
      this.chunked = true;
    }
    this.closeAfter = !this.shouldKeepAlive;
    this.head = head + "\r\n";
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer): boolean {
    if (!this.headersSent) this.writeHead(200, []);
    const socket = this.sink.socket;
    if (this.bodyless || chunk.length === 0) return this.flushHead();
    if (this.chunked) {
      socket.cork();
      socket.write(this.takeHead() + chunk.length.toString(16) + "\r\n", "latin1");
      socket.write(chunk);
      const ok = socket.write("\r\n");
      socket.uncork();
      return ok;
    }
    if (this.head === "") return socket.write(chunk);
    // Head and first bytes in one buffer: one write, one syscall, one TCP segment for a small
    // response.
    const head = this.takeHead();
    const out = Buffer.allocUnsafe(head.length + chunk.length);
    out.write(head, 0, "latin1");
    chunk.copy(out, head.length);
    return socket.write(out);
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    if (!this.headersSent) this.writeHead(200, []);
    if (chunk !== undefined && chunk.length > 0) this.write(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    if (this.chunked) this.sink.socket.write(this.takeHead() + "0\r\n\r\n", "latin1");
    else this.flushHead();
    this.writableEnded = true;
    this.onClose = this.onDrain = null;
    this.sink.responseEnded(!this.closeAfter);
    return this;
  }

  destroy(_err?: Error): this {
    this.sink.socket.destroy();
    return this;
  }

  /** Never needed: a request with `Expect` goes to node:http (see lean-front.ts). */
  writeContinue(): void {}

  once(event: "close" | "drain", listener: Listener): this {
    if (this.writableEnded) return this;
    if (event === "close") (this.onClose ??= []).push(listener);
    else (this.onDrain ??= []).push(listener);
    return this;
  }

  off(event: "close" | "drain", listener: Listener): this {
    const list = event === "close" ? this.onClose : this.onDrain;
    const i = list === null ? -1 : list.indexOf(listener);
    if (i >= 0) list!.splice(i, 1);
    return this;
  }

  /** The client's socket closed before this response ended. */
  socketClosed(): void {
    const list = this.onClose;
    this.onClose = this.onDrain = null;
    if (list !== null) for (const f of list) f();
  }

  /** The client's socket took what was written. */
  socketDrained(): void {
    const list = this.onDrain;
    this.onDrain = null;
    if (list !== null) for (const f of list) f();
  }

  private takeHead(): string {
    const h = this.head;
    this.head = "";
    return h;
  }

  private flushHead(): boolean {
    return this.head === "" ? true : this.sink.socket.write(this.takeHead(), "latin1");
  }
}
