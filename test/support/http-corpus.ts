/**
 * The HTTP/1.1 request corpus (test/fixtures/http-corpus/*.jsonl, see scripts/http-corpus/) and
 * its replay against a running Weir with a recording upstream. Each case goes over its own
 * connection from its own client address (127.x.y.z), which Weir passes upstream as
 * X-Forwarded-For, so every request the upstream records is tied to the case that caused it.
 * What is checked are invariants, not statuses alone (see `violations`).
 */
import { readdirSync, readFileSync } from "node:fs";
import { exchange, type Answer, type ExchangeResult } from "./raw-exchange.js";
import { fixturePath } from "./fixtures.js";
import type { RecordedRequest } from "./recording-upstream.js";
import type { Server } from "node:http";
import type { Socket } from "node:net";

export interface CorpusCase {
  id: string;
  source: string;
  /** The bytes (one character per byte), in the writes they are sent in. */
  parts: string[];
  /** What Weir must answer, in order: "up" (proxied) or a status; a trailing "..." allows more. */
  expect?: (string | number)[];
  rule?: string;
  nginx?: string;
  note?: string;
}

/** Where nginx decides a case differently (scripts/http-corpus/compare-nginx.js writes it). */
const DIFFERENCES = "nginx-differences.jsonl";

function readLines<T>(file: string): T[] {
  return readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as T);
}

/**
 * Every case, with what nginx-differences.jsonl says of it: the rule Weir follows, what nginx
 * does, and Weir's answers as `expect` (so Weir's side of each difference is pinned).
 */
export function loadCorpus(): CorpusCase[] {
  const dir = fixturePath("http-corpus");
  const cases: CorpusCase[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".jsonl") && n !== DIFFERENCES).sort()) cases.push(...readLines<CorpusCase>(`${dir}/${name}`));
  const byId = new Map(cases.map((c) => [c.id, c]));
  for (const d of readLines<{ id: string; weir: (string | number)[]; nginx: (string | number)[]; rule: string }>(`${dir}/${DIFFERENCES}`)) {
    const c = byId.get(d.id);
    if (c === undefined) throw new Error(`${DIFFERENCES}: no case ${d.id}`);
    if (c.expect !== undefined && JSON.stringify(c.expect) !== JSON.stringify(d.weir)) throw new Error(`${DIFFERENCES}: ${d.id} says Weir answers ${JSON.stringify(d.weir)}, the case expects ${JSON.stringify(c.expect)}`);
    c.expect = d.weir;
    c.rule = d.rule;
    c.nginx = `nginx answers ${JSON.stringify(d.nginx)}`;
  }
  return cases;
}

/** What one case did: the client's side and the upstream's. */
export interface CaseOutcome {
  c: CorpusCase;
  address: string;
  result: ExchangeResult;
  upstream: RecordedRequest[];
}

/** Client addresses: 127.<base>.<x>.<y>, y in 1..250. */
export function addressOf(base: number, i: number): string {
  return `127.${base}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

/** An answer as `expect` writes it: "up" for the upstream's, else Weir's status. */
export const shape = (a: Answer): string | number => (a.upSeq !== null ? "up" : a.status);

/** The answers `expect` asks for, if the case has one and they came. */
function expectationMet(c: CorpusCase, answers: Answer[]): boolean | null {
  if (!c.expect) return null;
  const open = c.expect[c.expect.length - 1] === "...";
  const want = open ? c.expect.slice(0, -1) : c.expect;
  const got = answers.map(shape);
  if (open ? got.length < want.length : got.length !== want.length) return false;
  return want.every((w, i) => String(w) === String(got[i]));
}

export interface ReplayOptions {
  concurrency: number;
  /** The base of the client addresses (127.<base>.x.y), one per listener. */
  addressBase: number;
  /** Upstream requests recorded so far, by client address (filled live by the caller). */
  seen: Map<string, RecordedRequest[]>;
  /**
   * Weir's side of each client connection, by client address (see `watchConnections`); without
   * it (a server in another process) a case ends on quiet alone.
   */
  serverSockets?: Map<string, Socket>;
  /** When the upstream last received part of a request from each client address (filled live). */
  upstreamProgress?: Map<string, number>;
}

/**
 * Weir's side of every connection, by the client's address: a case may end only once Weir has
 * read all it was sent (a quiet client connection alone says nothing on a busy machine).
 */
export function watchConnections(server: Server, into: Map<string, Socket>): void {
  server.on("connection", (socket: Socket) => { if (socket.remoteAddress) into.set(socket.remoteAddress, socket); });
}

/**
 * Sends every case (many at once, each on its own connection) and returns what each did. A case
 * ends when Weir closes the connection, when the answers its `expect` names are in (plus a short
 * grace for an answer too many), or after a quiet spell in which nothing proxied is unanswered.
 */
export async function replay(port: number, cases: CorpusCase[], options: ReplayOptions): Promise<CaseOutcome[]> {
  const outcomes: CaseOutcome[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i]!;
      const address = addressOf(options.addressBase, i);
      const proxied = () => options.seen.get(address)?.length ?? 0;
      const sent = c.parts.reduce((n, p) => n + p.length, 0);
      let readAt = 0;
      /** Weir has read every byte (or closed), and that was a while ago. */
      const settled = () => {
        if (options.serverSockets === undefined) return true;
        const s = options.serverSockets.get(address);
        if (s === undefined || (!s.destroyed && s.bytesRead < sent)) return false;
        readAt ||= Date.now();
        return Date.now() - readAt >= 300;
      };
      let metAt = 0;
      const closing = (answers: Answer[]) => answers.length > 0 && (answers[answers.length - 1]!.headers["connection"] ?? "").toLowerCase() === "close";
      const result = await exchange(port, c.parts, {
        localAddress: address,
        gapMs: 5,
        // A case with `expect` ends when its answers are in; one without, after a quiet spell
        // long enough for a loaded machine (several test files run at once on two cores).
        idleMs: c.expect ? 1500 : 1000,
        maxMs: 8000,
        done: (answers) => {
          if (expectationMet(c, answers) !== true) return false;
          if (c.expect![c.expect!.length - 1] === "...") return false;
          // An answer that closes the connection: wait for the close itself.
          if (closing(answers)) return false;
          metAt ||= Date.now();
          return Date.now() - metAt >= 40;
        },
        // Never end while a request the upstream received has no answer yet: that answer is on
        // its way (or lost, which the invariants must see, not the timing).
        mayEnd: (answers) => !closing(answers) && settled() && answers.filter((a) => a.upSeq !== null).length >= proxied() &&
          // A request still streaming to the upstream is not quiet.
          Date.now() - (options.upstreamProgress?.get(address) ?? 0) >= 600,
      });
      outcomes[i] = { c, address, result, upstream: [] };
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return outcomes;
}

/**
 * The invariants, per case:
 * - the request boundaries the upstream saw are the ones Weir answered for: the upstream's
 *   requests from this client are exactly the proxied answers, in order (so nothing was forwarded
 *   and then answered 400, and nothing answered "proxied" that the upstream did not get);
 * - nothing follows an answer that closes the connection, and the connection does close, so
 *   nothing read after a refusal reached the upstream;
 * - Weir's own answers are JSON `{error, code, requestId}` with the same X-Request-Id; a 4xx that
 *   keeps the connection open is one whose framing was sound (a path refusal, 404);
 * - the answers are whole, with nothing after the last one;
 * - what the case's `expect` says.
 */
export function violations(o: CaseOutcome): string[] {
  const out: string[] = [];
  const { answers, closed, rest, error } = o.result;
  if (error !== null) return [`could not connect: ${error}`];
  const proxied = answers.filter((a) => a.upSeq !== null).map((a) => a.upSeq);
  const upstream = o.upstream.map((r) => r.seq);
  if (JSON.stringify(proxied) !== JSON.stringify(upstream))
    out.push(`the upstream received requests ${JSON.stringify(o.upstream.map((r) => `${r.method} ${r.target}`))} (seq ${JSON.stringify(upstream)}) but the client got proxied answers for seq ${JSON.stringify(proxied)}`);
  const closeAt = answers.findIndex((a) => (a.headers["connection"] ?? "").toLowerCase() === "close");
  if (closeAt >= 0 && closeAt !== answers.length - 1) out.push(`answers followed one with Connection: close: ${JSON.stringify(answers.map(shape))}`);
  if (closeAt >= 0 && !closed) out.push("an answer said Connection: close but the connection stayed open");
  for (const a of answers) {
    if (a.upSeq !== null) continue;
    let body: { error?: unknown; code?: unknown; requestId?: unknown } = {};
    try { body = JSON.parse(a.body) as typeof body; } catch { out.push(`Weir's ${a.status} answer is not JSON: ${JSON.stringify(a.body.slice(0, 120))}`); continue; }
    if (typeof body.error !== "string" || typeof body.code !== "string" || !body.code.startsWith("WEIR_ERR_") || typeof body.requestId !== "string")
      out.push(`Weir's ${a.status} answer lacks error/code/requestId: ${a.body.slice(0, 160)}`);
    else if (a.headers["x-request-id"] !== body.requestId) out.push(`Weir's ${a.status} answer has X-Request-Id ${a.headers["x-request-id"]} and requestId ${body.requestId}`);
    const keeps = (a.headers["connection"] ?? "").toLowerCase() !== "close";
    if (keeps && a.status >= 400 && a.status < 500 && !(a.status === 404 || (a.status === 400 && /path|escape|segment|backslash|NUL|fragment/i.test(String(body.error)))))
      out.push(`Weir's ${a.status} (${String(body.error)}) keeps a connection whose framing cannot be trusted`);
  }
  if (rest !== "") out.push(`bytes after the last whole answer: ${JSON.stringify(rest.slice(0, 160))}`);
  const met = expectationMet(o.c, answers);
  if (met === false) out.push(`expected ${JSON.stringify(o.c.expect)}, got ${JSON.stringify(answers.map(shape))}${o.c.rule ? ` (${o.c.rule})` : ""}`);
  return out;
}
