/**
 * Clients that keep opening connections to a listener while a test does something to Weir (kills a
 * worker), each sending one request and recording how it ended: answered (any HTTP status), refused
 * (ECONNREFUSED: nothing listened), or cut (accepted, then closed or reset without an answer: it was
 * in flight on a worker that died). Bounded in count and time.
 */
import { connect } from "node:net";

export type Outcome = "answered" | "refused" | "cut";
export interface Attempt { at: number; outcome: Outcome; status: number }

export interface ClientLoop {
  attempts: Attempt[];
  /** Stops the loops and resolves once every one has finished its attempt. */
  stop(): Promise<Attempt[]>;
  count(outcome: Outcome): number;
}

function attempt(port: number, path: string, timeoutMs: number): Promise<Attempt> {
  const at = Date.now();
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let text = "";
    let refused = false;
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on("connect", () => s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    s.on("data", (d) => { text += d.toString("latin1"); });
    s.on("error", (err: NodeJS.ErrnoException) => { if (err.code === "ECONNREFUSED") refused = true; });
    s.on("close", () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ at, outcome: refused ? "refused" : m ? "answered" : "cut", status: m ? Number(m[1]) : 0 });
    });
  });
}

/** `concurrency` loops of one new connection after another, for at most `maxMs` and `maxAttempts`. */
export function clientLoop(port: number, path: string, { concurrency = 2, maxMs = 30_000, maxAttempts = 20_000, timeoutMs = 15_000 } = {}): ClientLoop {
  const attempts: Attempt[] = [];
  let running = true;
  const end = Date.now() + maxMs;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running && Date.now() < end && attempts.length < maxAttempts) attempts.push(await attempt(port, path, timeoutMs));
  });
  return {
    attempts,
    async stop() { running = false; await Promise.all(loops); return attempts; },
    count: (o) => attempts.filter((a) => a.outcome === o).length,
  };
}
