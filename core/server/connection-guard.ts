/**
 * One request at a time on a node:http connection, and nothing after a refusal.
 *
 * Why: node:http parses every request in a read at once and emits each one straight away
 * ('request'), queuing the answers in order. A request pipelined behind one that Weir refuses
 * (400 with `Connection: close`: its framing cannot be trusted, so neither can what follows)
 * would already be on its way upstream while the refusal is written, its answer thrown away;
 * and junk behind a valid request would be answered 400 (node:http's 'clientError') while that
 * request is still being proxied, so the client would be told it failed. Here a connection's
 * requests are handled in turn, as nginx does: the next starts only once the answer before it is
 * written and the connection kept; an answer that closes the connection drops everything read
 * after it, unforwarded; and a parse error behind requests in flight is answered after their
 * own answers (the client learns the truth about each), unless it lies inside the body of the
 * request being read (then that request was never whole, and 400 is the truth about it), or an
 * answer before it closes the connection (then those bytes were never to be read at all).
 *
 * The same holds for what takes a socket over (an upgrade, CONNECT): it waits for the answer in
 * flight, and is dropped after a closing one.
 *
 * And no exception thrown by a handler may escape: node:http emits these events from inside its
 * parser's callbacks on a socket's 'data' event, so a throw there would end the process and every
 * connection with it. A throw is logged and answered 500 (or the connection cut, when an answer
 * had begun) on that connection alone.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { ErrorCodes } from "../errors.js";
import { replyError } from "../lifecycle/local-reply.js";
import { newRequestId } from "../lifecycle/request-id.js";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface ConnectionState {
  /** The request whose answer is being made, or null. */
  current: IncomingMessage | null;
  /** Requests read behind it, not started (and takeovers waiting for their turn). */
  queue: { req: IncomingMessage; start: () => void }[];
  /** An answer closed (or is closing) the connection: nothing more is handled on it. */
  closing: boolean;
  /** A parse error's answer, written once the answer in flight is. */
  refusal: (() => void) | null;
}

/** Internal: set by node:http once an answer says `Connection: close`. */
interface NodeResponse extends ServerResponse { _last?: boolean }

export class ConnectionGuard {
  private readonly states = new WeakMap<object, ConnectionState>();

  constructor(private readonly onInternalError: (err: unknown, where: string) => void) {}

  private stateOf(socket: object): ConnectionState {
    let s = this.states.get(socket);
    if (s === undefined) this.states.set(socket, (s = { current: null, queue: [], closing: false, refusal: null }));
    return s;
  }

  /** Wraps a 'request' (or 'checkContinue') handler. */
  requests(handler: Handler): Handler {
    return (req, res) => {
      const s = this.stateOf(req.socket);
      if (s.closing) return; // read after an answer that closes the connection: never handled
      if (s.current !== null) {
        s.queue.push({ req, start: () => this.start(s, req, res, handler) });
        return;
      }
      this.start(s, req, res, handler);
    };
  }

  private start(s: ConnectionState, req: IncomingMessage, res: ServerResponse, handler: Handler): void {
    s.current = req;
    const socket = req.socket; // node:http lets go of it once the answer is written
    let done = false;
    const ended = () => {
      if (done) return;
      done = true;
      this.answered(s, req, res as NodeResponse, socket);
    };
    // node:http's own 'finish' listener (it ends the socket after a closing answer) was added
    // before the request was emitted, so it has run when this one does.
    res.once("finish", ended);
    res.once("close", ended);
    try {
      handler(req, res);
    } catch (err) {
      this.failed(err, "request handler", res);
    }
  }

  private answered(s: ConnectionState, req: IncomingMessage, res: NodeResponse, socket: Duplex): void {
    if (s.current !== req) return;
    s.current = null;
    if (s.closing || res._last === true || !res.shouldKeepAlive || socket.destroyed || socket.writableEnded) {
      s.closing = true;
      s.queue.length = 0;
      s.refusal = null;
      return;
    }
    // Requests read before the bad bytes are answered first, in order; the refusal comes last.
    const next = s.queue.shift();
    if (next !== undefined) return next.start();
    const refusal = s.refusal;
    if (refusal !== null) {
      s.refusal = null;
      s.closing = true;
      this.safely(refusal, "client error answer", socket);
    }
  }

  /**
   * Wraps the 'clientError' handler: a parse error (or timeout) is answered now when no request
   * is in flight on the connection or the error lies in that request's own body; after the
   * answer in flight otherwise; and not at all after an answer that closed the connection.
   */
  clientErrors(handler: (err: NodeJS.ErrnoException, socket: Duplex) => void): (err: NodeJS.ErrnoException, socket: Duplex) => void {
    return (err, socket) => {
      const s = this.stateOf(socket);
      const run = () => this.safely(() => handler(err, socket), "client error handler", socket);
      if (s.closing || s.refusal !== null) {
        if (s.current === null) socket.destroy();
        return;
      }
      if (s.current === null) {
        s.closing = true;
        return run();
      }
      // The request node:http was reading when it failed is the last one it emitted, if that one
      // never came whole: the bad bytes are in its body, and it must not be handled.
      const last = s.queue.length > 0 ? s.queue[s.queue.length - 1]!.req : s.current;
      if (!last.complete) {
        if (last === s.current) {
          s.closing = true;
          s.queue.length = 0;
          return run();
        }
        s.queue.pop();
      }
      s.refusal = run;
    };
  }

  /** Wraps a handler that takes the socket over ('upgrade', 'connect'). */
  takeovers<A extends unknown[]>(handler: (req: IncomingMessage, socket: Duplex, ...rest: A) => void): (req: IncomingMessage, socket: Duplex, ...rest: A) => void {
    return (req, socket, ...rest) => {
      const s = this.stateOf(socket);
      const run = () => {
        s.closing = true; // the socket is the handler's now: node:http reads no more from it
        this.safely(() => handler(req, socket, ...rest), "upgrade handler", socket);
      };
      if (s.closing) { socket.destroy(); return; }
      if (s.current !== null) s.queue.push({ req, start: run });
      else run();
    };
  }

  private safely(f: () => void, where: string, socket: Duplex): void {
    try {
      f();
    } catch (err) {
      this.onInternalError(err, where);
      socket.destroy();
    }
  }

  private failed(err: unknown, where: string, res: ServerResponse): void {
    this.onInternalError(err, where);
    if (!res.headersSent && !res.destroyed) {
      try {
        replyError(res, 500, ErrorCodes.INTERNAL, "Weir failed while handling the request", newRequestId(), true);
        return;
      } catch { /* cut below */ }
    }
    res.destroy();
  }
}
