/**
 * The loading policy for .weirpkg packages (docs/plugin-packages.md): with requireSigned and
 * trustedPublishers, only an intact package signed by a trusted key, asking for no more than its
 * entry grants, for this SDK, within the size limit, is loaded. Everything else is refused at
 * validate (exit 1, `FILE: key.path: refused package (reason): ...`) and at start, and the
 * upstream never sees a request.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import type { WeirConfig } from "../../core/config/schema.js";
import { ConfigError } from "../../core/errors.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { fixturePath } from "../support/fixtures.js";
import { tempDir } from "../support/weir.js";
import { cli, configText, makePackage, publisher, routeThrough, startMarketWeir, tamperOneByte, type Publisher } from "./support.js";

const dir = tempDir("weir-market-policy-");
let acme: Publisher, mallory: Publisher, upstream: TestUpstream;

const trusting = (p: Publisher = acme): Partial<WeirConfig> => ({ requireSigned: true, trustedPublishers: { [p.name]: p.publicPem } });

/** Validates `config` with the real `weir validate` code; returns what it printed. */
async function validate(config: WeirConfig): Promise<{ code: number; stderr: string; stdout: string; file: string }> {
  const file = join(tempDir("weir-market-validate-"), "weir.yaml");
  writeFileSync(file, configText(config));
  return { ...(await cli(["validate", "-c", file])), file };
}

/** Asserts that validate refuses the entry at routes[0].plugins[0] with `reason`, and that start does too. */
async function assertRefused(config: WeirConfig, path: string, reason: RegExp): Promise<string> {
  const r = await validate(config);
  assert.is(r.code, 1, `validate should exit 1; stdout: ${r.stdout} stderr: ${r.stderr}`);
  const line = r.stderr.split("\n").find((l) => l.startsWith(`${r.file}: routes[0].plugins[0].${path}: `));
  assert.ok(line, `no line for routes[0].plugins[0].${path} in:\n${r.stderr}`);
  assert.match(line!, reason);
  const seen = upstream.seen.length;
  try {
    const w = await startMarketWeir(config);
    await w.stop();
    assert.unreachable("start should refuse the package");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    assert.match(err.problems.map((p) => p.message).join("\n"), reason);
  }
  assert.is(upstream.seen.length, seen, "nothing reached the upstream");
  return line!;
}

const Setup = suite("marketplace fixtures");
Setup("two publishers with their own keys, and an upstream", async () => {
  acme = await publisher("acme", dir);
  mallory = await publisher("mallory", dir);
  upstream = await startUpstream();
});
Setup.run();

const Serve = suite("a package signed by a trusted publisher");
Serve("loads under requireSigned and the upstream sees the header its plugin sets", async () => {
  const pkg = await makePackage(dir, { by: acme });
  const config = routeThrough(upstream.url, { use: pkg }, trusting());
  const v = await validate(config);
  assert.is(v.code, 0, v.stderr);
  assert.is(v.stdout, "ok\n");
  const w = await startMarketWeir(config);
  try {
    const res = await request(`${w.url}/hello`);
    assert.is(res.statusCode, 200);
    assert.is(res.headers["x-greeter-served"], "yes");
    const echoed = (await res.body.json()) as { headers: Record<string, string> };
    assert.is(echoed.headers["x-greeter"], "1.0.0");
    assert.is(upstream.seen.at(-1)!.headers["x-greeter"], "1.0.0");
  } finally { await w.stop(); }
});
Serve("gets the store when its entry grants it", async () => {
  const pkg = await makePackage(dir, { fixture: "store-counter", by: acme });
  const w = await startMarketWeir(routeThrough(upstream.url, { use: pkg, permissions: { store: true } }, trusting()));
  try {
    for (const n of ["1", "2"]) {
      const res = await request(`${w.url}/count`);
      await res.body.dump();
      assert.is(res.statusCode, 200);
      assert.is(upstream.seen.at(-1)!.headers["x-hits"], n);
    }
  } finally { await w.stop(); }
});
Serve("an unsigned package still loads when requireSigned is off", async () => {
  const pkg = await makePackage(dir, { by: acme, unsigned: true, out: join(dir, "unsigned-ok.weirpkg") });
  const v = await validate(routeThrough(upstream.url, { use: pkg }));
  assert.is(v.code, 0, v.stderr);
});
Serve.run();

const Refused = suite("packages refused under requireSigned");
Refused("one byte of the bundle changed: refused as a digest mismatch", async () => {
  const good = await makePackage(dir, { by: acme, out: join(dir, "good-for-tamper.weirpkg") });
  const bad = tamperOneByte(good, join(dir, "tampered.weirpkg"));
  const line = await assertRefused(routeThrough(upstream.url, { use: bad }, trusting()), "use", /refused package \(digest-mismatch\): .*bundleSha256/);
  assert.match(line, /altered/);
});
Refused("a valid signature by a key that is not the trusted publisher's: refused as a bad signature", async () => {
  const pkg = await makePackage(dir, { by: acme, signWith: mallory, out: join(dir, "acme-signed-by-mallory.weirpkg") });
  await assertRefused(routeThrough(upstream.url, { use: pkg }, trusting()), "use", /refused package \(bad-signature\): .*does not verify/);
});
Refused("a publisher missing from trustedPublishers: refused as unknown", async () => {
  const pkg = await makePackage(dir, { by: mallory, out: join(dir, "by-mallory.weirpkg") });
  await assertRefused(routeThrough(upstream.url, { use: pkg }, trusting()), "use", /refused package \(unknown-publisher\): .*"mallory" is not in trustedPublishers/);
});
Refused("an unsigned package: refused, and the message says to sign it", async () => {
  const pkg = await makePackage(dir, { by: acme, unsigned: true, out: join(dir, "unsigned.weirpkg") });
  await assertRefused(routeThrough(upstream.url, { use: pkg }, trusting()), "use", /refused package \(unsigned\): requireSigned is on and the package is not signed/);
});
Refused("a TypeScript source under requireSigned: refused, only built-ins and packages load", async () => {
  const src = fixturePath("marketplace", "greeter.ts");
  const r = await validate(routeThrough(upstream.url, { use: src }, trusting()));
  assert.is(r.code, 1);
  assert.match(r.stderr, /routes\[0\]\.plugins\[0\]\.use: requireSigned is on: a plugin must be a built-in or a signed \.weirpkg/);
});
Refused("a plugin that asks for the store its entry does not grant: refused naming the missing grant", async () => {
  const pkg = await makePackage(dir, { fixture: "store-counter", by: acme, out: join(dir, "escalating.weirpkg") });
  const r = await validate(routeThrough(upstream.url, { use: pkg, permissions: { fetch: ["http://127.0.0.1:1"] } }, trusting()));
  assert.is(r.code, 1);
  assert.match(r.stderr, new RegExp(`${r.file.replace(/[.]/g, "\\.")}: routes\\[0\\]\\.plugins\\[0\\]: .*"store-counter" asks for permissions this entry does not grant; add permissions: \\{ store: true \\}`));
  try {
    await (await startMarketWeir(routeThrough(upstream.url, { use: pkg }, trusting()))).stop();
    assert.unreachable("start should refuse the escalation");
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    assert.match(err.problems[0]!.message, /store: true/);
  }
});
Refused("a manifest that hides the store permission its bundle asks for: refused as a mismatch", async () => {
  const pkg = await makePackage(dir, { fixture: "store-counter", by: acme, out: join(dir, "lying-permissions.weirpkg"), editManifest: (m) => { m.permissions = {}; } });
  // Signed by the trusted key, and the entry grants nothing: only the bundle check catches it.
  const v = await cli(["plugin", "verify", pkg, "--key", acme.pubFile]);
  assert.is(v.code, 0, "the signature itself is valid");
  const r = await validate(routeThrough(upstream.url, { use: pkg }, trusting()));
  assert.is(r.code, 1);
  assert.match(r.stderr, /routes\[0\]\.plugins\[0\]: refused package \(manifest-mismatch\): the package's manifest does not list the permissions its bundle asks for/);
});
Refused("a manifest that hides a hook its bundle defines: refused as a mismatch", async () => {
  const pkg = await makePackage(dir, { by: acme, out: join(dir, "lying-hooks.weirpkg"), editManifest: (m) => { m.hooks = ["onRequest"]; } });
  const r = await validate(routeThrough(upstream.url, { use: pkg }, trusting()));
  assert.is(r.code, 1);
  assert.match(r.stderr, /refused package \(manifest-mismatch\): the package's manifest does not list the hooks its bundle defines/);
});
Refused("a manifest that names another plugin than its bundle: refused as a mismatch", async () => {
  const pkg = await makePackage(dir, { by: acme, out: join(dir, "lying-name.weirpkg"), editManifest: (m) => { m.name = "key-auth"; } });
  const r = await validate(routeThrough(upstream.url, { use: pkg }, trusting()));
  assert.is(r.code, 1);
  assert.match(r.stderr, /refused package \(manifest-mismatch\): the package says key-auth@1\.0\.0 but its bundle is greeter@1\.0\.0/);
});
Refused("an sdk range that excludes this Weir's SDK: refused naming both", async () => {
  const pkg = await makePackage(dir, { by: acme, sdk: ">=99.0.0", out: join(dir, "future-sdk.weirpkg") });
  await assertRefused(routeThrough(upstream.url, { use: pkg }, trusting()), "use", /refused package \(sdk-mismatch\): the package needs SDK >=99\.0\.0; this Weir provides SDK \d+\.\d+\.\d+/);
});
Refused("a package bigger than maxPackageBytes: refused with its size and the limit", async () => {
  const pkg = await makePackage(dir, { by: acme, out: join(dir, "big.weirpkg") });
  await assertRefused(routeThrough(upstream.url, { use: pkg }, { ...trusting(), maxPackageBytes: 1024 }), "use", /refused package \(too-large\): the package is \d+ bytes, over the limit of 1024 \(maxPackageBytes\)/);
});
Refused("a truncated file: refused as not a Weir plugin package", async () => {
  const good = await makePackage(dir, { by: acme, out: join(dir, "to-truncate.weirpkg") });
  const bytes = readFileSync(good);
  const cut = join(dir, "truncated.weirpkg");
  writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await assertRefused(routeThrough(upstream.url, { use: cut }, trusting()), "use", /refused package \(malformed\): the file is not a Weir plugin package/);
});
Refused("a garbage file and a JSON file of another kind: refused as not a Weir plugin package", async () => {
  const garbage = join(dir, "garbage.weirpkg");
  writeFileSync(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
  await assertRefused(routeThrough(upstream.url, { use: garbage }, trusting()), "use", /not a Weir plugin package/);
  const other = join(dir, "other.weirpkg");
  writeFileSync(other, JSON.stringify({ name: "greeter", version: "1.0.0" }));
  await assertRefused(routeThrough(upstream.url, { use: other }, trusting()), "use", /not a Weir plugin package \(format must be "weirpkg\/1"\)/);
});
Refused("a missing package file: refused naming the file", async () => {
  const r = await validate(routeThrough(upstream.url, { use: join(dir, "nowhere.weirpkg") }, trusting()));
  assert.is(r.code, 1);
  assert.match(r.stderr, /routes\[0\]\.plugins\[0\]\.use: refused package \(malformed\): cannot read the package .*nowhere\.weirpkg/);
});
Refused("a version pin refuses a replayed older version", async () => {
  const old = await makePackage(dir, { by: acme, version: "1.0.0", out: join(dir, "replayed.weirpkg") });
  await assertRefused(routeThrough(upstream.url, { use: old, version: "^2.0.0" }, trusting()), "version", /the package is version 1\.0\.0; this entry pins \^2\.0\.0/);
  const current = await makePackage(dir, { by: acme, version: "2.1.0", out: join(dir, "current.weirpkg") });
  const v = await validate(routeThrough(upstream.url, { use: current, version: "^2.0.0" }, trusting()));
  assert.is(v.code, 0, v.stderr);
});
Refused("a refused package leaves the other entries' problems reported too, one line each", async () => {
  const bad = tamperOneByte(await makePackage(dir, { by: acme, out: join(dir, "second-good.weirpkg") }), join(dir, "second-bad.weirpkg"));
  const unsigned = await makePackage(dir, { by: acme, unsigned: true, out: join(dir, "second-unsigned.weirpkg") });
  const config: WeirConfig = { ...trusting(), routes: [{ name: "a", match: { path: "/" }, upstream: upstream.url, plugins: [{ use: bad }, { use: unsigned }] }] } as WeirConfig;
  const r = await validate(config);
  assert.is(r.code, 1);
  assert.match(r.stderr, /routes\[0\]\.plugins\[0\]\.use: refused package \(digest-mismatch\)/);
  assert.match(r.stderr, /routes\[0\]\.plugins\[1\]\.use: refused package \(unsigned\)/);
});
Refused.after(async () => { await upstream.close(); });
Refused.run();
