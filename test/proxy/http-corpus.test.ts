/**
 * The parser boundary, proven on a corpus rather than on examples: every raw request case in
 * test/fixtures/http-corpus/ (imported from aws/http-desync-guardian's and HAProxy's test suites,
 * RFC 9112's examples, and scripts/http-corpus/generate.js: 0-200 headers, every framing header
 * spelling and duplicate, obs-fold, bare LF and CR, every byte value, versions 0.9-3.0,
 * absolute-form targets, bodies split across reads at every byte) is replayed against both
 * listeners, the lean fast path and node:http alone, in front of a recording upstream that
 * parses what it gets with a strict parser of its own. The checks are invariants (see
 * support/http-corpus.ts `violations`): the process stays up, nothing read after a refusal
 * reaches the upstream, the request boundaries the upstream sees are the ones Weir answered for,
 * and no client is told 400 for a request that was forwarded. Where a case names a rule (RFC
 * section) it is one where Weir and nginx decide differently; the case's `expect` pins Weir's side.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Server } from "node:http";
import type { Socket } from "node:net";
import { loadCorpus, replay, violations, watchConnections, type CaseOutcome, type CorpusCase } from "../support/http-corpus.js";
import { exchange } from "../support/raw-exchange.js";
import { startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from "../support/recording-upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

type Listener = "lean" | "node:http";
interface Ctx {
  up: RecordingUpstream;
  weirs: Record<Listener, TestWeir>;
  cases: CorpusCase[];
  seen: Map<string, RecordedRequest[]>;
  outcomes: Record<Listener, CaseOutcome[]>;
  crashes: unknown[];
  serverSockets: Map<string, Socket>;
  progress: Map<string, number>;
}

/** The runtime's first listener (the test reads its connections; the runtime keeps it private). */
const serverOf = (weir: TestWeir): Server => (weir.rt as unknown as { listeners: { server: Server }[] }).listeners[0]!.server;

const Corpus = suite<Ctx>("HTTP/1.1 request corpus on both listeners");

Corpus.before(async (ctx) => {
  ctx.crashes = [];
  process.on("uncaughtException", (err) => { ctx.crashes.push(err); });
  ctx.cases = loadCorpus();
  ctx.seen = new Map();
  ctx.progress = new Map();
  ctx.up = await startRecordingUpstream((r) => {
    const list = ctx.seen.get(r.forwardedFor);
    if (list) list.push(r); else ctx.seen.set(r.forwardedFor, [r]);
  }, (client) => ctx.progress.set(client, Date.now()));
  const config = {
    limits: { headersTimeout: "2s", requestTimeout: "2s" },
    routes: [{ name: "all", match: { path: "/" }, upstream: ctx.up.url }],
  };
  const lean = await startWeir(config);
  process.env.WEIR_LEAN_LISTENER = "0";
  try {
    ctx.weirs = { lean, "node:http": await startWeir(config) };
  } finally {
    delete process.env.WEIR_LEAN_LISTENER;
  }
  ctx.serverSockets = new Map();
  for (const weir of Object.values(ctx.weirs)) watchConnections(serverOf(weir), ctx.serverSockets);
  // Warm both up (upstream connections, compiled code): the first requests of a cold process on
  // a busy machine can take longer than a case's quiet spell.
  for (const weir of Object.values(ctx.weirs)) {
    await Promise.all(Array.from({ length: 8 }, (_, i) => exchange(weir.port, [`GET /warm-up-${i} HTTP/1.1\r\nHost: example.com\r\n\r\n`], { done: (a) => a.length === 1 })));
  }
  await new Promise((r) => setTimeout(r, 100));
  ctx.seen.clear(); // the warm-up is no case's
});
Corpus.after(async (ctx) => {
  await ctx.weirs.lean.stop();
  await ctx.weirs["node:http"].stop();
  await ctx.up.close();
});

Corpus("the corpus holds at least 2,000 cases, from the public suites, RFC 9112 and the generator", ({ cases }) => {
  assert.ok(cases.length >= 2000, `only ${cases.length} cases`);
  const ids = new Set(cases.map((c) => c.id));
  assert.is(ids.size, cases.length, "case ids are not unique");
  for (const prefix of ["dg-", "haproxy-", "rfc9112-", "gen-"]) assert.ok(cases.some((c) => c.id.startsWith(prefix)), `no ${prefix} cases`);
});

Corpus("every case keeps the invariants on both listeners, and the process stays up", async (ctx) => {
  const started = Date.now();
  const [lean, plain] = await Promise.all([
    replay(ctx.weirs.lean.port, ctx.cases, { concurrency: 32, addressBase: 10, seen: ctx.seen, serverSockets: ctx.serverSockets, upstreamProgress: ctx.progress }),
    replay(ctx.weirs["node:http"].port, ctx.cases, { concurrency: 32, addressBase: 20, seen: ctx.seen, serverSockets: ctx.serverSockets, upstreamProgress: ctx.progress }),
  ]);
  // Let anything still in flight land at the upstream before counting.
  await new Promise((r) => setTimeout(r, 300));
  ctx.outcomes = { lean, "node:http": plain };
  const known = new Set<string>();
  const report: string[] = [];
  for (const [listener, outcomes] of Object.entries(ctx.outcomes)) {
    for (const o of outcomes) {
      known.add(o.address);
      o.upstream = ctx.seen.get(o.address) ?? [];
      for (const v of violations(o)) report.push(`${listener} ${o.c.id}: ${v}\n    sent ${JSON.stringify(o.c.parts).slice(0, 300)}`);
    }
  }
  for (const [address, requests] of ctx.seen)
    if (!known.has(address)) report.push(`the upstream received ${requests.length} request(s) from no case (X-Forwarded-For ${JSON.stringify(address)}): ${requests.map((r) => `${r.method} ${r.target}`).join(", ")}`);
  for (const p of ctx.up.problems) report.push(`the upstream could not parse what Weir sent: ${p}`);
  for (const e of ctx.crashes) report.push(`uncaught exception: ${(e as Error)?.stack ?? String(e)}`);
  console.log(`  corpus: ${ctx.cases.length} cases x 2 listeners in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.ok(report.length === 0, `${report.length} violation(s):\n${report.slice(0, 40).join("\n")}`);
});

Corpus("both listeners still answer an ordinary request after the corpus", async ({ weirs }) => {
  for (const weir of Object.values(weirs)) {
    const r = await exchange(weir.port, ["GET /after-the-corpus HTTP/1.1\r\nHost: example.com\r\n\r\n"], { done: (a) => a.length === 1 });
    assert.is(r.answers[0]?.upSeq !== null && r.answers[0]?.status, 200);
  }
});

Corpus.run();
