/**
 * Editing a plugin's source while traffic flows: the new version is swapped in without a failed
 * request; a version that fails to compile, throws at load or has a bad manifest leaves the old
 * one serving and shows in GET /plugins; fixing it swaps the fix in. Waits are polls, not sleeps.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Pool } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, type TestWeir } from "../support/weir.js";
import { adminPlugins, pluginFixture, poll } from "./support.js";

const source = readFileSync(pluginFixture("versioned.ts"), "utf8");
const version = (v: string) => source.replace('const VERSION = "1.0.0";', `const VERSION = "${v}";`);

const Reload = suite<{ up: TestUpstream; weir: TestWeir; file: string; pool: Pool }>("plugin hot reload");

Reload.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.file = join(tempDir(), "versioned.ts");
  writeFileSync(ctx.file, version("1.0.0"));
  ctx.weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: ctx.up.url, plugins: [{ use: ctx.file }] }] });
  ctx.pool = new Pool(ctx.weir.url, { connections: 10 });
});
Reload.after(async (ctx) => { await ctx.pool.close(); await ctx.weir.stop(); await ctx.up.close(); });

async function versionNow(pool: Pool): Promise<string> {
  const res = await pool.request({ path: "/now", method: "GET" });
  await res.body.text();
  assert.is(res.statusCode, 200);
  return String(res.headers["x-plugin-version"]);
}

Reload("a changed plugin is swapped in under load with zero failed requests", async ({ pool, file, up }) => {
  const seen: string[] = [];
  const failures: string[] = [];
  let switched = false;
  const deadline = Date.now() + 2500;
  const worker = async () => {
    while (Date.now() < deadline) {
      try {
        const res = await pool.request({ path: "/load", method: "GET" });
        await res.body.text();
        if (res.statusCode !== 200) failures.push(`status ${res.statusCode}`);
        seen.push(String(res.headers["x-plugin-version"]));
      } catch (err) {
        failures.push(String((err as Error).message));
      }
    }
  };
  const load = Promise.all(Array.from({ length: 10 }, worker));
  // Let v1 serve under load for a while, then edit the file.
  await poll("v1 traffic", () => (seen.length >= 50 ? true : undefined));
  writeFileSync(file, version("2.0.0"));
  await poll("the swap to 2.0.0", () => (seen.includes("2.0.0") ? (switched = true) : undefined), 8000);
  await load;
  assert.ok(switched);
  assert.equal(failures, []);
  assert.ok(seen.length > 100, `only ${seen.length} requests in 2.5 s`);
  const first2 = seen.indexOf("2.0.0");
  assert.ok(first2 > 0, "v1 served first");
  // Requests that started on v1 may finish on it; once they drained, only v2 answers.
  assert.ok(seen.slice(-50).every((v) => v === "2.0.0"), seen.slice(-50).join());
  assert.ok(seen.every((v) => v === "1.0.0" || v === "2.0.0"), "a request went through without the plugin");
  // What reached the upstream matches what came back.
  assert.ok(up.seen.slice(-50).every((s) => s.headers["x-plugin-version"] === "2.0.0"));
});

const broken: [string, (text: string) => string, RegExp][] = [
  ["a syntax error", (t) => t + "\nexport const oops = {;\n", /cannot compile the plugin: .*versioned\.ts:\d+:\d+: /],
  ["a throw at load", (t) => t.replace("export default", 'throw new Error("boom at load");\nexport default'), /boom at load/],
  ["a bad manifest", (t) => t.replace('name: "versioned"', 'name: "Not A Name"'), /the plugin's name must be lower-case letters, digits and dashes/],
];

for (const [what, breakIt, message] of broken) {
  Reload(`a version with ${what} leaves the old one serving and shows in GET /plugins`, async ({ pool, file, weir }) => {
    const before = await versionNow(pool);
    writeFileSync(file, breakIt(version("9.9.9")));
    const view = await poll(`the reload error for ${what}`, async () => {
      const v = (await adminPlugins(weir.admin)).find((p) => p.source === file);
      return v && v.state === "reload-failed" && message.test(v.errors[0]?.message ?? "") ? v : undefined;
    });
    assert.is(view.errors[0]!.hook, "reload");
    assert.is(view.version, before);
    for (let i = 0; i < 20; i++) assert.is(await versionNow(pool), before);
  });
}

Reload("fixing the plugin again swaps the fix in and clears the error", async ({ pool, file, weir }) => {
  writeFileSync(file, version("3.0.0"));
  await poll("the swap to 3.0.0", async () => ((await versionNow(pool)) === "3.0.0" ? true : undefined));
  const view = (await adminPlugins(weir.admin)).find((p) => p.source === file)!;
  assert.is(view.state, "active");
  assert.is(view.version, "3.0.0");
  assert.ok(!view.errors.some((e) => e.hook === "reload"), JSON.stringify(view.errors));
});

Reload.run();
