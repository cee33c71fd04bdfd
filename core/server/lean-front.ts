/**
 * The lean listener: the fast path in front of node:http (and node:https).
 *
 * Why: node:http's server side costs about as much CPU per proxied request as everything Weir
 * does on top of it (measured in bench/: a net + llhttp front before undici is ~1.2x faster than
 * http.createServer before undici). Most requests a gateway sees are the simple kind: HTTP/1.1,
 * the whole request in one TCP read: no body, or a small Content-Length body (an API's JSON)
 * that came with the head. Those are parsed here with node's own llhttp binding (the parser
 * node:http uses, so the grammar and its strictness are the same) and answered with
 * LeanRequest/LeanResponse, which cost a fraction of IncomingMessage/ServerResponse.
 *
 * Everything else is handed to node:http, which then owns the connection for good: a request
 * split over reads (slow clients and the headers and request timeouts, bodies larger than one
 * read), chunked bodies, Expect: 100-continue, upgrades (WebSocket, h2c), CONNECT, HTTP/1.0,
 * pipelined requests in one read, anything llhttp refuses (400/431 as node:http answers them). The hand-off puts the read bytes back on the socket (`unshift`) and calls
 * node:http's own connection listener, so node:http sees the connection as if it were new. It
 * happens only between responses: bytes that arrive while a lean response is in flight are held
 * (the socket paused) until it ends.
 *
 * With TLS the same happens on the decrypted stream (node:https's 'secureConnection').
 *
 * Nothing a client sends may throw out of here: an exception escaping a socket's 'data' handler
 * ends the process, and every other connection with it. A parser callback that throws (a bug,
 * or a shape of the binding we did not expect) is answered 400 with `Connection: close` on that
 * connection alone; a lifecycle handler that throws is answered 500. Once an answer closes the
 * connection, nothing read after it is parsed: pipelined bytes behind a refusal are dropped.
 *
 * The keep-alive timeout of lean connections is kept by a sweep once a second (node:http arms a
 * timer per response); `closeIdle`/`closeAll` serve graceful shutdown as node:http's
 * closeIdleConnections/closeAllConnections do for its own.
 */
import type { Server } from "node:http";
import type { Socket } from "node:net";
import { createRequire } from "node:module";
import type { ClientResponse, InboundRequest } from "../lifecycle/client-messages.js";
import { ErrorCodes } from "../errors.js";
import { replyError } from "../lifecycle/local-reply.js";
import { newRequestId } from "../lifecycle/request-id.js";
import { LeanRequest, LeanResponse, type ResponseSink } from "./lean-response.js";

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(data: Buffer): number | Error;
  free(): void;
  [callback: number]: unknown;
}
interface HttpCommon {
  HTTPParser: { new (): Parser; prototype: Parser; REQUEST: number; kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number };
  methods: string[];
}
// node's internal module, what node:http itself parses with (its shape has held since node 12).
const { HTTPParser, methods } = createRequire(import.meta.url)("_http_common") as HttpCommon;

/**
 * Whether this node's llhttp binding has the shape the lean listener relies on. It is internal
 * API: should a node release change it, listeners fall back to node:http alone (listener.ts).
 */
export function leanListenerSupported(): boolean {
  return typeof HTTPParser === "function" && Array.isArray(methods) && typeof HTTPParser.REQUEST === "number" &&
    [HTTPParser.kOnHeaders, HTTPParser.kOnHeadersComplete, HTTPParser.kOnBody, HTTPParser.kOnMessageComplete].every((k) => typeof k === "number") &&
    typeof HTTPParser.prototype.execute === "function" && typeof HTTPParser.prototype.initialize === "function";
}

/**
 * Method names by the code llhttp reports for them. `methods` lists the names node:http accepts,
 * but its positions are not llhttp's codes past the common ones (llhttp's PRI is 34, where
 * `methods` has QUERY; QUERY is 46, past its end), so the table is learnt from the parser
 * itself: each name is parsed once and the code it reports recorded. A code not in the table
 * (PRI, RTSP methods) is node:http's to handle, which knows them all.
 */
let methodByCode: Map<number, string> | null = null;
function methodTable(): Map<number, string> {
  if (methodByCode !== null) return methodByCode;
  const table = new Map<number, string>();
  const p = new HTTPParser();
  for (const name of methods) {
    let code = -1;
    p.initialize(HTTPParser.REQUEST, {}, 1024, 0);
    p[HTTPParser.kOnHeaders] = ignoreBody;
    p[HTTPParser.kOnHeadersComplete] = (_a: number, _b: number, _h: unknown, method: number) => { code = method; };
    p[HTTPParser.kOnBody] = ignoreBody;
    p[HTTPParser.kOnMessageComplete] = ignoreBody;
    try { p.execute(Buffer.from(`${name} / HTTP/1.1\r\nHost: a\r\n\r\n`)); } catch { /* not a method llhttp takes */ }
    if (code >= 0 && !table.has(code)) table.set(code, name);
  }
  p.free();
  return (methodByCode = table);
}

const END_OF_HEAD = Buffer.from("\r\n\r\n");
const SWEEP_MS = 1000;

export interface LeanSettings {
  maxHeaderBytes: number;
  keepAliveTimeoutMs: number;
  /** How long a new connection may stay silent (node:http's headersTimeout covers that case). */
  headersTimeoutMs: number;
}

type Handler = (req: InboundRequest, res: ClientResponse) => void;

export class LeanFront {
  private readonly connections = new Set<LeanConnection>();
  private readonly nodeConnectionListener: (socket: Socket) => void;
  private sweeper: NodeJS.Timeout | null = null;

  private current!: LeanSettings;
  /** Requests answered on the fast path. */
  served = 0;
  /** Connections given to node:http. */
  handedOff = 0;
  /** Told of exceptions caught at this boundary (they are Weir's bugs, so they are logged). */
  onInternalError: (err: unknown, where: string) => void = () => undefined;
  /** What a keep-alive response says of the connection (node:http's wording). */
  keepAliveHeader = "";

  constructor(
    readonly server: Server,
    readonly handler: Handler,
    settings: LeanSettings,
    tls = false,
  ) {
    this.settings = settings;
    // node:http wires itself to 'connection' in its constructor (node:https to 'secureConnection',
    // once TLS has decrypted the stream); we take that event and call node:http's listener
    // ourselves for the connections we hand over.
    const event = tls ? "secureConnection" : "connection";
    const [listener] = server.listeners(event) as ((socket: Socket) => void)[];
    if (listener === undefined) throw new Error(`node:http server without a ${event} listener`);
    this.nodeConnectionListener = listener;
    server.removeListener(event, listener);
    server.on(event, (socket: Socket) => this.connections.add(new LeanConnection(this, socket)));
    server.on("listening", () => {
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
    });
    server.on("close", () => {
      if (this.sweeper !== null) clearInterval(this.sweeper);
      this.sweeper = null;
    });
  }

  get settings(): LeanSettings {
    return this.current;
  }

  set settings(s: LeanSettings) {
    this.current = s;
    const seconds = Math.floor(s.keepAliveTimeoutMs / 1000);
    this.keepAliveHeader = "Connection: keep-alive\r\n" + (seconds > 0 ? `Keep-Alive: timeout=${seconds}\r\n` : "");
  }

  /** node:http takes the connection from here on. */
  handOff(conn: LeanConnection, socket: Socket): void {
    this.connections.delete(conn);
    this.handedOff++;
    this.nodeConnectionListener.call(this.server, socket);
  }

  forget(conn: LeanConnection): void {
    this.connections.delete(conn);
  }

  /** Closes lean connections with no response in flight (shutdown). */
  closeIdle(): void {
    for (const c of this.connections) if (c.idle) c.socket.destroy();
  }

  closeAll(): void {
    for (const c of this.connections) c.socket.destroy();
  }

  /**
   * Once a second: counts the sweeps each connection has been idle through (a field reset per
   * response is cheaper than reading a clock), and ends those idle longer than their timeout, to
   * within a second. Between requests that is the keep-alive timeout (0: none), and the
   * connection just closes, as node:http closes it. A connection that never sent a request has
   * the headers timeout and gets what node:http gives it: a 408, through the same 'clientError'
   * handler (listener.ts), which writes Weir's JSON answer and counts it.
   */
  private sweep(): void {
    const { keepAliveTimeoutMs, headersTimeoutMs } = this.settings;
    for (const c of this.connections) {
      if (!c.idle) continue;
      const idleMs = ++c.idleSweeps * SWEEP_MS - SWEEP_MS; // at least this long
      if (c.fresh) {
        if (idleMs < headersTimeoutMs) continue;
        this.connections.delete(c);
        const timeout = Object.assign(new Error("no request within the headers timeout"), { code: "ERR_HTTP_REQUEST_TIMEOUT" });
        this.server.emit("clientError", timeout, c.socket);
      } else if (keepAliveTimeoutMs > 0 && idleMs >= keepAliveTimeoutMs) {
        c.socket.destroy();
      }
    }
  }
}

export class LeanConnection implements ResponseSink {
  private readonly parser: Parser;
  private active: LeanResponse | null = null;
  /** Bytes that came while a response was in flight. */
  private held: Buffer | null = null;
  /** Sweeps this connection has been idle through (see LeanFront#sweep). */
  idleSweeps = 0;
  /** No request came yet. */
  fresh = true;

  /** An answer closed the connection: whatever the client sends now is dropped, never parsed. */
  private closing = false;

  // What the parser saw in the current read.
  private messages = 0;
  private method = -1;
  private url = "";
  private headers: string[] | null = null;
  /**
   * Header fields (and the target) the binding handed over before the head ended: it flushes
   * them through kOnHeaders in groups of 32 and then calls kOnHeadersComplete without them, and
   * once it has flushed on a connection it keeps doing so for every later message (node:http's
   * parserOnHeaders collects them the same way). Trailers come the same way, after a chunked
   * body; those belong to no head and are dropped at the message's end.
   */
  private flushed: string[] = [];
  private flushedUrl = "";
  /** The request's Content-Length (0 without one), or -1 when the request is not for us. */
  private bodyLength = -1;
  private keepAlive = true;

  constructor(
    private readonly front: LeanFront,
    readonly socket: Socket,
  ) {
    const p = new HTTPParser();
    p.initialize(HTTPParser.REQUEST, {}, front.settings.maxHeaderBytes, 0);
    p[HTTPParser.kOnHeaders] = this.onHeaders;
    p[HTTPParser.kOnHeadersComplete] = this.onHeadersComplete;
    p[HTTPParser.kOnBody] = ignoreBody; // read from the chunk itself (see read)
    p[HTTPParser.kOnMessageComplete] = this.onMessageComplete;
    this.parser = p;
    socket.on("data", this.onData);
    socket.on("drain", this.onDrain);
    socket.on("error", this.onError);
    socket.on("end", this.onEnd);
    socket.on("close", this.onClose);
  }

  get idle(): boolean {
    return this.active === null;
  }

  get keepAliveHeader(): string {
    return this.front.keepAliveHeader;
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    if (this.active !== null) {
      this.held = this.held === null ? chunk : Buffer.concat([this.held, chunk]);
      this.socket.pause();
      return;
    }
    this.read(chunk);
  };

  private read(chunk: Buffer): void {
    // Only one whole request and nothing after it; anything else is node:http's (see the file
    // comment). The head must be whole and within the header limit before llhttp sees it.
    const bodyAt = chunk.indexOf(END_OF_HEAD) + 4;
    if (bodyAt === 3 || bodyAt > this.front.settings.maxHeaderBytes) return this.handOff(chunk);
    this.messages = 0;
    this.bodyLength = -1;
    let parsed: number | Error;
    try {
      parsed = this.parser.execute(chunk);
    } catch (err) {
      return this.refuse(err);
    }
    // One message that used every byte, and whose Content-Length (0 without one) is exactly what
    // followed the head: trailing bytes could otherwise be a second request's beginning.
    if (parsed !== chunk.length || this.messages !== 1 || this.bodyLength !== chunk.length - bodyAt) return this.handOff(chunk);
    const method = methodTable().get(this.method);
    if (method === undefined) return this.handOff(chunk);
    this.fresh = false;
    const req = new LeanRequest(method, this.url, this.headers!, this.socket, this.bodyLength > 0 ? chunk.subarray(bodyAt) : undefined);
    this.headers = null;
    const res = new LeanResponse(this, req);
    if (!this.keepAlive) res.shouldKeepAlive = false; // Connection: close
    this.active = res;
    this.front.served++;
    try {
      this.front.handler(req, res);
    } catch (err) {
      this.front.onInternalError(err, "lean listener: request handler");
      if (!res.headersSent && !res.destroyed) {
        try {
          replyError(res, 500, ErrorCodes.INTERNAL, "Weir failed while handling the request", newRequestId(), true);
          return;
        } catch { /* fall through to the cut */ }
      }
      this.socket.destroy();
    }
  }

  /**
   * A parser callback threw: the parser's state is lost, so is the framing of whatever follows.
   * The client gets 400 and the connection closes, through the listener's 'clientError' handler
   * (Weir's JSON answer, counted like node:http's parse errors); nothing more is read.
   */
  private refuse(err: unknown): void {
    this.front.onInternalError(err, "lean listener: HTTP parser callback");
    this.closing = true;
    this.held = null;
    this.front.forget(this);
    const error = Object.assign(new Error(`the request could not be parsed (${(err as Error)?.message ?? String(err)})`), { code: "HPE_PARSER_CALLBACK" });
    this.front.server.emit("clientError", error, this.socket);
  }

  responseEnded(keepAlive: boolean): void {
    this.active = null;
    this.idleSweeps = 0;
    if (!keepAlive) {
      // Bytes held or still to come were sent after a request whose answer ends the exchange
      // (a refusal whose framing cannot be trusted, Connection: close): they are never read.
      this.closing = true;
      this.held = null;
      this.socket.destroySoon();
      return;
    }
    const held = this.held;
    if (held !== null) {
      this.held = null;
      this.socket.resume();
      this.read(held);
    }
  }

  private handOff(chunk: Buffer): void {
    const s = this.socket;
    s.removeListener("data", this.onData);
    s.removeListener("drain", this.onDrain);
    s.removeListener("error", this.onError);
    s.removeListener("end", this.onEnd);
    s.removeListener("close", this.onClose);
    this.parser.free();
    s.unshift(chunk);
    if (s.isPaused()) s.resume();
    this.front.handOff(this, s);
  }

  private readonly onHeaders = (headers: string[], url: string): void => {
    for (let i = 0; i < headers.length; i++) this.flushed.push(headers[i]!);
    this.flushedUrl += url;
  };

  private readonly onHeadersComplete = (major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined, _status: unknown, _message: unknown, upgrade: boolean, keepAlive: boolean): void => {
    if (headers === undefined) {
      headers = this.flushed;
      this.flushed = [];
    }
    if (url === undefined) {
      url = this.flushedUrl;
      this.flushedUrl = "";
    }
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.keepAlive = keepAlive;
    this.bodyLength = major === 1 && minor === 1 && !upgrade ? contentLengthOf(headers) : -1;
  };

  private readonly onMessageComplete = (): void => {
    this.messages++;
    if (this.flushed.length) this.flushed = []; // trailers
    this.flushedUrl = "";
  };

  private readonly onDrain = (): void => {
    try {
      this.active?.socketDrained();
    } catch (err) {
      this.front.onInternalError(err, "lean listener: drain");
      this.socket.destroy();
    }
  };

  private readonly onError = (): void => {
    this.socket.destroy();
  };

  /**
   * The client finished sending (node:http's sockets are half-open). As node:http does without
   * `httpAllowHalfOpen`, that ends the exchange: an idle connection is ended, and a response in
   * flight is cut (its 'close' aborts the upstream request) rather than left writing to a client
   * that said it is done.
   */
  private readonly onEnd = (): void => {
    if (this.active !== null) this.socket.destroy();
    else this.socket.end();
  };

  private readonly onClose = (): void => {
    this.front.forget(this);
    this.parser.free();
    const res = this.active;
    this.active = null;
    try {
      res?.socketClosed();
    } catch (err) {
      this.front.onInternalError(err, "lean listener: close");
    }
  };
}

const ignoreBody = (): void => undefined;

/**
 * The Content-Length of a request the fast path can take (0 without one), or -1: a chunked body,
 * an `Expect` (the 100-continue dance), more than one Content-Length or one that is not plain
 * digits. node:http and prepareRequest decide what those get.
 */
function contentLengthOf(headers: string[]): number {
  let length = 0, seen = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    switch (name.length) {
      case 6:
        if (name.toLowerCase() === "expect") return -1;
        break;
      case 14:
        if (name.toLowerCase() === "content-length") {
          const v = headers[i + 1]!;
          if (seen || !DIGITS.test(v)) return -1;
          seen = true;
          length = Number(v);
        }
        break;
      case 17:
        if (name.toLowerCase() === "transfer-encoding") return -1;
    }
  }
  return length;
}

const DIGITS = /^\d{1,15}$/;
