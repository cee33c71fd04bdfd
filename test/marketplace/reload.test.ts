/**
 * A running Weir never swaps in a refused package: neither on an explicit reload (rt.reload(),
 * what POST /reload and a config change do) nor when the file watcher sees a .weirpkg replaced.
 * The version that was serving keeps serving, and the refusal is reported.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { request } from "undici";
import type { WeirConfig } from "../../core/config/schema.js";
import { ConfigError } from "../../core/errors.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";
import { eventually, makePackage, publisher, replaceFile, routeThrough, startMarketWeir, tamperOneByte, type Publisher } from "./support.js";

const dir = tempDir("weir-market-reload-");
let acme: Publisher, mallory: Publisher, upstream: TestUpstream;
/** Signed packages of greeter, by version, plus refused variants. */
const pkgs: Record<string, string> = {};

const policy = (): Partial<WeirConfig> => ({ requireSigned: true, trustedPublishers: { acme: acme.publicPem } });

/** The greeter version the upstream saw on a fresh request. */
async function serving(url: string): Promise<string> {
  const res = await request(`${url}/which`);
  await res.body.dump();
  assert.is(res.statusCode, 200);
  return String(upstream.seen.at(-1)!.headers["x-greeter"]);
}

async function refusedReload(reload: () => Promise<unknown>, reason: RegExp): Promise<void> {
  try {
    await reload();
    assert.unreachable("the reload should be refused");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    assert.match(err.problems.map((p) => `${p.path}: ${p.message}`).join("\n"), reason);
  }
}

const Setup = suite("reload fixtures");
Setup("signed versions 1.0.0, 2.0.0 and 2.1.0, a tampered 2.0.0 and one signed by an untrusted key", async () => {
  acme = await publisher("acme", dir);
  mallory = await publisher("mallory", dir);
  upstream = await startUpstream();
  for (const v of ["1.0.0", "2.0.0", "2.1.0"]) pkgs[v] = await makePackage(dir, { by: acme, version: v });
  pkgs.tampered = tamperOneByte(pkgs["2.0.0"]!, join(dir, "tampered-2.0.0.weirpkg"));
  pkgs.untrusted = await makePackage(dir, { by: acme, signWith: mallory, version: "2.0.0", out: join(dir, "untrusted-2.0.0.weirpkg") });
  pkgs.unsigned = await makePackage(dir, { by: acme, unsigned: true, version: "2.0.0", out: join(dir, "unsigned-2.0.0.weirpkg") });
});
Setup.run();

const Reload = suite("rt.reload() to a refused package");
Reload("a package file replaced by a tampered one: the reload is refused and 1.0.0 keeps serving", async () => {
  const live = join(dir, "live-a.weirpkg");
  replaceFile(live, pkgs["1.0.0"]!);
  const w = await startMarketWeir(routeThrough(upstream.url, { use: live }, policy()));
  try {
    assert.is(await serving(w.url), "1.0.0");
    replaceFile(live, pkgs.tampered!);
    await refusedReload(() => w.rt.reload(), /routes\[0\]\.plugins\[0\]\.use: refused package \(digest-mismatch\)/);
    assert.is(await serving(w.url), "1.0.0");
    // The same file made good again: the next reload takes it.
    replaceFile(live, pkgs["2.0.0"]!);
    await w.rt.reload();
    assert.is(await serving(w.url), "2.0.0");
  } finally { await w.stop(); }
});
Reload("a config rewritten to name a package signed by an untrusted key, or an unsigned one: refused, 1.0.0 keeps serving", async () => {
  const w = await startMarketWeir(routeThrough(upstream.url, { use: pkgs["1.0.0"] }, policy()));
  try {
    const before = w.rt.generation.id;
    w.write(routeThrough(upstream.url, { use: pkgs.untrusted }, policy()));
    await refusedReload(() => w.rt.reload(), /refused package \(bad-signature\)/);
    w.write(routeThrough(upstream.url, { use: pkgs.unsigned }, policy()));
    await refusedReload(() => w.rt.reload(), /refused package \(unsigned\)/);
    assert.is(w.rt.generation.id, before, "no new generation was made");
    assert.is(await serving(w.url), "1.0.0");
  } finally { await w.stop(); }
});
Reload("a config that drops the publisher from trustedPublishers: the loaded package is checked again and refused", async () => {
  const w = await startMarketWeir(routeThrough(upstream.url, { use: pkgs["1.0.0"] }, policy()));
  try {
    w.write(routeThrough(upstream.url, { use: pkgs["1.0.0"] }, { requireSigned: true, trustedPublishers: { mallory: mallory.publicPem } }));
    await refusedReload(() => w.rt.reload(), /refused package \(unknown-publisher\): the publisher "acme" is not in trustedPublishers/);
    assert.is(await serving(w.url), "1.0.0");
  } finally { await w.stop(); }
});
Reload("a replayed older version under a version pin: refused, 2.0.0 keeps serving", async () => {
  const live = join(dir, "live-b.weirpkg");
  replaceFile(live, pkgs["2.0.0"]!);
  const w = await startMarketWeir(routeThrough(upstream.url, { use: live, version: "^2.0.0" }, policy()));
  try {
    replaceFile(live, pkgs["1.0.0"]!);
    await refusedReload(() => w.rt.reload(), /routes\[0\]\.plugins\[0\]\.version: the package is version 1\.0\.0; this entry pins \^2\.0\.0/);
    assert.is(await serving(w.url), "2.0.0");
  } finally { await w.stop(); }
});
Reload("a permission escalation in the new version: refused naming the grant, 1.0.0 keeps serving", async () => {
  const live = join(dir, "live-c.weirpkg");
  replaceFile(live, pkgs["1.0.0"]!);
  const w = await startMarketWeir(routeThrough(upstream.url, { use: live }, policy()));
  try {
    // A "new version" of the same package name that now wants the store.
    await makePackage(dir, { fixture: "store-counter", by: acme, out: live });
    await refusedReload(() => w.rt.reload(), /routes\[0\]\.plugins\[0\]: .*add permissions: \{ store: true \}/);
    assert.is(await serving(w.url), "1.0.0");
  } finally { await w.stop(); }
});
Reload.run();

const Watch = suite("hot reload of a watched .weirpkg");
Watch("a package replaced by a tampered one, then by a replayed old one: the old version keeps serving; a good one is swapped in", async () => {
  const live = join(dir, "watched.weirpkg");
  replaceFile(live, pkgs["2.0.0"]!);
  const w = await startMarketWeir(routeThrough(upstream.url, { use: live, version: "^2.0.0" }, policy()), { watchPlugins: true });
  try {
    const slot = () => w.rt.plugins.all()[0]!;
    assert.is(await serving(w.url), "2.0.0");
    // Give the watcher a moment to start watching the file.
    await new Promise((r) => setTimeout(r, 300));

    replaceFile(live, pkgs.tampered!);
    await eventually(() => slot().reloadError !== null, 5000, "the watcher to refuse the tampered package");
    assert.match(slot().reloadError!, /digest|altered/);
    assert.is(await serving(w.url), "2.0.0");

    replaceFile(live, pkgs.untrusted!);
    await eventually(() => /does not verify/.test(slot().reloadError ?? ""), 5000, "the watcher to refuse the untrusted signature");
    assert.is(await serving(w.url), "2.0.0");

    replaceFile(live, pkgs["1.0.0"]!);
    await eventually(() => /1\.0\.0/.test(slot().reloadError ?? ""), 5000, "the watcher to refuse the replayed 1.0.0");
    assert.match(slot().reloadError!, /pins \^2\.0\.0/);
    assert.is(await serving(w.url), "2.0.0");

    replaceFile(live, pkgs["2.1.0"]!);
    await eventually(async () => (await serving(w.url)) === "2.1.0", 5000, "the watcher to swap in 2.1.0");
    assert.is(slot().reloadError, null);
  } finally { await w.stop(); }
});
Watch.after(async () => { await upstream.close(); });
Watch.run();
