/**
 * One raw client connection that sends bytes exactly as given (in parts, with a pause between
 * them so that each part is its own read on the other side) and reads back every answer Weir
 * gives, for tests about what a parser does with bytes no client library would send. Answers
 * are told apart by the recording upstream's `x-up-seq` header: an answer with it was proxied,
 * one without it is Weir's own.
 */
import { connect, type Socket } from "node:net";
import { once } from "node:events";

export interface Answer {
  status: number;
  /** Lower-cased names; a repeated name keeps the last value. */
  headers: Record<string, string>;
  body: string;
  /** The upstream request this answer came from (x-up-seq), or null for Weir's own answer. */
  upSeq: number | null;
}

export interface ExchangeResult {
  answers: Answer[];
  /** Weir closed the connection (within the time the exchange waited). */
  closed: boolean;
  /** Bytes after the last whole answer (should be none). */
  rest: string;
  /** Connecting failed (Weir not listening?). */
  error: string | null;
  /** How long the exchange took, ms. */
  elapsedMs: number;
}

export interface ExchangeOptions {
  /** Client address to connect from (any 127.x.y.z on Linux), so the upstream can tell clients apart. */
  localAddress?: string;
  /** Pause between parts, ms (default 5). */
  gapMs?: number;
  /** How long the connection must stay quiet, after the last part, before the exchange ends (default 250). */
  idleMs?: number;
  /** The most the exchange waits in all (default 4000). */
  maxMs?: number;
  /** Ends the exchange early (checked on every answer and idle period): e.g. all answers are in. */
  done?: (answers: Answer[]) => boolean;
  /** Whether an idle exchange may end (default true); false keeps waiting, up to maxMs. */
  mayEnd?: (answers: Answer[]) => boolean;
}

/**
 * Cuts whole answers off `buf`. An answer announced with a body that starts with "HTTP/1." is
 * an answer to HEAD (Weir's and the recording upstream's bodies never start so).
 */
export function parseAnswers(buf: Buffer, closed: boolean): { answers: Answer[]; rest: Buffer } {
  const answers: Answer[] = [];
  for (;;) {
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) break;
    const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1] ?? NaN);
    if (!Number.isFinite(status)) break;
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let at = end + 4;
    const seq = headers["x-up-seq"];
    if (status === 101) {
      // Switched: what follows is not HTTP any more.
      answers.push({ status, headers, body: "", upSeq: seq === undefined ? null : Number(seq) });
      return { answers, rest: Buffer.alloc(0) };
    }
    if (status < 200) { buf = buf.subarray(at); continue; }
    const looksLikeNext = buf.subarray(at, at + 7).toString("latin1") === "HTTP/1.";
    let body = "";
    if (status === 204 || status === 304 || looksLikeNext) {
      // no body
    } else if (headers["transfer-encoding"] === "chunked") {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const lineEnd = buf.indexOf("\r\n", at);
        if (lineEnd < 0) break;
        const size = parseInt(buf.subarray(at, lineEnd).toString("latin1"), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          if (buf.length < lineEnd + 4) break;
          at = lineEnd + 4;
          complete = true;
          break;
        }
        if (buf.length < lineEnd + 2 + size + 2) break;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts).toString("latin1");
    } else if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      if (buf.length < at + n) break;
      body = buf.subarray(at, at + n).toString("latin1");
      at += n;
    } else {
      if (!closed) break;
      body = buf.subarray(at).toString("latin1");
      at = buf.length;
    }
    answers.push({ status, headers, body, upSeq: seq === undefined ? null : Number(seq) });
    buf = buf.subarray(at);
  }
  return { answers, rest: buf };
}

export async function exchange(port: number, parts: (string | Buffer)[], options: ExchangeOptions = {}): Promise<ExchangeResult> {
  const { gapMs = 5, idleMs = 250, maxMs = 4000 } = options;
  const started = Date.now();
  let socket: Socket;
  try {
    socket = connect({ port, host: "127.0.0.1", localAddress: options.localAddress });
    socket.setNoDelay(true);
    await Promise.race([once(socket, "connect"), new Promise((_, reject) => setTimeout(() => reject(new Error("connect timed out")), maxMs))]);
  } catch (err) {
    return { answers: [], closed: true, rest: "", error: (err as Error).message, elapsedMs: Date.now() - started };
  }
  let buf: Buffer = Buffer.alloc(0);
  let closed = false;
  let lastActivity = Date.now();
  let wake: (() => void) | null = null;
  socket.on("data", (d: Buffer) => { buf = Buffer.concat([buf, d]); lastActivity = Date.now(); wake?.(); });
  socket.on("close", () => { closed = true; wake?.(); });
  socket.on("error", () => undefined);
  const sleep = (ms: number) => new Promise<void>((r) => { const t = setTimeout(() => { wake = null; r(); }, ms); wake = () => { clearTimeout(t); wake = null; r(); }; });

  for (let i = 0; i < parts.length && !closed; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    socket.write(typeof parts[i] === "string" ? Buffer.from(parts[i] as string, "latin1") : (parts[i] as Buffer));
  }
  lastActivity = Date.now();
  for (;;) {
    const { answers } = parseAnswers(buf, closed);
    if (closed) break;
    if (options.done?.(answers)) break;
    const now = Date.now();
    if (now - started >= maxMs) break;
    const quiet = now - lastActivity;
    if (quiet >= idleMs && (options.mayEnd?.(answers) ?? true)) break;
    await sleep(Math.max(5, Math.min(idleMs - quiet, maxMs - (now - started), 50)));
  }
  socket.destroy();
  const { answers, rest } = parseAnswers(buf, closed);
  return { answers, closed, rest: rest.toString("latin1"), error: null, elapsedMs: Date.now() - started };
}
