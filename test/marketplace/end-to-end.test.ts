/**
 * Plugin packages end to end with the real `weir` binary: the example script takes a plugin from
 * `weir plugin new` to a signed package serving traffic; a real `weir start` refuses an untrusted
 * package, and a running one refuses a reload (POST /reload) to an escalating package while the
 * old version keeps serving.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { runWeir } from "../support/cli.js";
import { ROOT } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";
import { configText, makePackage, publisher, replaceFile, routeThrough, type Publisher } from "./support.js";

const dir = tempDir("weir-market-e2e-");
let acme: Publisher, mallory: Publisher, upstream: TestUpstream;

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

const Script = suite("examples/marketplace/run.sh");
Script("takes a plugin from weir plugin new to a signed package serving traffic, refuses a tampered copy, and stops what it started", async () => {
  const child = spawn("bash", ["examples/marketplace/run.sh"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  assert.is(code, 0, out);
  for (const expected of [
    /created .*hello-header/,
    /type-checked and bundled .*src\/plugin\.ts/,
    /# pass 2\n# fail 0/,
    /packed hello-header@0\.1\.0 by acme into hello-header\.weirpkg \(unsigned/,
    /wrote .*keys\/publisher\.key \(private/,
    /signed hello-header@0\.1\.0 as acme/,
    /ok: hello-header@0\.1\.0 by acme, bundle sha256 [0-9a-f]{64}/,
    /installed hello-header@0\.1\.0 by acme[^]*permissions requested: none/,
    /\{"path":"\/hello","greeting":"hello from a signed package"\}/,
    /x-plugin: hello-header/i,
    /weir plugin verify: refused \(digest-mismatch\)/,
    /weir\.yaml: routes\[0\]\.plugins\[0\]\.use: refused package \(digest-mismatch\)/,
    /config reload failed; the previous config keeps serving/,
    /weir: stopped/,
    /marketplace example: ok/,
  ]) assert.match(out, expected);
  // Still served after the refused reload: the greeting appears twice.
  assert.is(out.match(/"greeting":"hello from a signed package"/g)?.length, 2);
  for (const m of out.matchAll(/\(pid (\d+)\)/g)) assert.ok(!alive(Number(m[1])), `process ${m[1]} was left running`);
});
Script.run();

const Binary = suite("the weir binary with packages");
Binary.before(async () => {
  acme = await publisher("acme", dir);
  mallory = await publisher("mallory", dir);
  upstream = await startUpstream();
});
Binary.after(async () => { await upstream.close(); });
Binary("weir start refuses a package signed by an untrusted key: exit 1 naming the key path and the reason", async () => {
  const pkg = await makePackage(dir, { by: acme, signWith: mallory, out: join(dir, "untrusted.weirpkg") });
  const config = join(dir, "untrusted.yaml");
  writeFileSync(config, configText(routeThrough(upstream.url, { use: pkg }, { requireSigned: true, trustedPublishers: { acme: acme.publicPem } })));
  const weir = runWeir(["start", "-c", config]);
  const { code } = await weir.exited;
  assert.is(code, 1, weir.output());
  assert.match(weir.output(), new RegExp(`${config.replace(/[.]/g, "\\.")}: routes\\[0\\]\\.plugins\\[0\\]\\.use: refused package \\(bad-signature\\)`));
  assert.not.match(weir.output(), /listening on/);
});
Binary("a running weir refuses POST /reload to an escalating package and the old version keeps serving", async () => {
  const live = join(dir, "live.weirpkg");
  replaceFile(live, await makePackage(dir, { by: acme }));
  const config = join(dir, "running.yaml");
  const base = routeThrough(upstream.url, { use: live }, { requireSigned: true, trustedPublishers: { acme: acme.publicPem } });
  writeFileSync(config, configText({ ...base, admin: { port: 0, host: "127.0.0.1" } }));
  const weir = runWeir(["start", "-c", config]);
  try {
    const url = (await weir.waitFor(/listening on (http:\/\/\S+)/))[1]!;
    const admin = (await weir.waitFor(/admin API on (http:\/\/\S+)/))[1]!;
    const get = async () => { const r = await request(`${url}/e2e`); await r.body.dump(); return { status: r.statusCode, greeter: upstream.seen.at(-1)?.headers["x-greeter"] }; };
    assert.equal(await get(), { status: 200, greeter: "1.0.0" });

    // The publisher's next release asks for the store; this entry does not grant it.
    await makePackage(dir, { fixture: "store-counter", by: acme, out: join(dir, "next.weirpkg") });
    replaceFile(live, join(dir, "next.weirpkg"));
    const res = await request(`${admin}/reload`, { method: "POST" });
    const body = (await res.body.json()) as { errors?: string[] };
    assert.is(res.statusCode, 400, JSON.stringify(body));
    assert.match(JSON.stringify(body.errors), /routes\[0\]\.plugins\[0\]: .*add permissions: \{ store: true \}/);
    assert.equal(await get(), { status: 200, greeter: "1.0.0" });
  } finally {
    weir.child.kill("SIGTERM");
    await weir.exited;
  }
});
Binary.run();
