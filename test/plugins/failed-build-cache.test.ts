/**
 * A version that failed is never kept around once the file is fixed: after a plugin whose
 * top-level code never returns, POST /reload with the fix on disk serves the fix (it used to
 * fail again with the old error, a load time-out each time), and saving back the version that is
 * running clears `state: reload-failed` (it used to stay). Real files, real isolates, the real
 * admin API.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, type TestWeir } from "../support/weir.js";
import { adminPlugins, pluginFixture, poll } from "./support.js";

const source = readFileSync(pluginFixture("versioned.ts"), "utf8");
const version = (v: string) => source.replace('const VERSION = "1.0.0";', `const VERSION = "${v}";`);
const looping = (v: string) => version(v).replace("export default", "while (true) { /* never returns */ }\nexport default");
const LOAD_LIMIT_MS = 300;

async function served(weir: TestWeir): Promise<string> {
  const res = await request(`${weir.url}/x`);
  await res.body.text();
  return String(res.headers["x-plugin-version"]);
}

async function reload(weir: TestWeir): Promise<{ status: number; body: { generation?: number; errors?: string[] } }> {
  const res = await request(`${weir.admin}/reload`, { method: "POST" });
  return { status: res.statusCode, body: (await res.body.json()) as { generation?: number; errors?: string[] } };
}

function start(up: TestUpstream, watchPlugins: boolean): Promise<{ weir: TestWeir; file: string }> {
  const file = join(tempDir(), "versioned.ts");
  writeFileSync(file, version("1.0.0"));
  return startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: file, limits: { loadTimeoutMs: LOAD_LIMIT_MS } }] }] }, { watchPlugins })
    .then((weir) => ({ weir, file }));
}

const Cache = suite<{ up: TestUpstream }>("a failing plugin build is not kept once the file is fixed");
Cache.before(async (ctx) => { ctx.up = await startUpstream(); });
Cache.after(({ up }) => up.close());

Cache("POST /reload with a fixed file on disk serves the fix after a version that failed at load", async ({ up }) => {
  const { weir, file } = await start(up, false);
  try {
    assert.is(await served(weir), "1.0.0");
    writeFileSync(file, looping("2.0.0"));
    const failed = await reload(weir);
    assert.is(failed.status, 400);
    assert.match(failed.body.errors!.join("\n"), /top-level code ran past the load limit of 300 ms \(limits.loadTimeoutMs/);
    assert.is(await served(weir), "1.0.0", "the old version keeps serving");
    writeFileSync(file, version("3.0.0"));
    const started = Date.now();
    const fixed = await reload(weir);
    assert.is(fixed.status, 200, JSON.stringify(fixed.body));
    assert.ok(Date.now() - started < LOAD_LIMIT_MS * 5, "the fix did not wait for the old version's load limit");
    assert.is(await served(weir), "3.0.0");
    const view = (await adminPlugins(weir.admin)).find((p) => p.source === file)!;
    assert.is(view.state, "active");
  } finally {
    await weir.stop();
  }
});

Cache("saving back the running version after a failed hot reload clears reload-failed", async ({ up }) => {
  const { weir, file } = await start(up, true);
  try {
    assert.is(await served(weir), "1.0.0");
    writeFileSync(file, looping("2.0.0"));
    await poll("the failed hot reload", async () => ((await adminPlugins(weir.admin)).find((p) => p.source === file)?.state === "reload-failed" ? true : undefined));
    writeFileSync(file, version("1.0.0"));
    const view = await poll("the error to clear", async () => {
      const v = (await adminPlugins(weir.admin)).find((p) => p.source === file);
      return v?.state === "active" ? v : undefined;
    });
    assert.ok(!view.errors.some((e) => e.hook === "reload"), JSON.stringify(view.errors));
    assert.is(await served(weir), "1.0.0");
  } finally {
    await weir.stop();
  }
});

Cache("a config reload while the failed version is still on disk says so, and a fix saved then is served", async ({ up }) => {
  const { weir, file } = await start(up, true);
  try {
    writeFileSync(file, looping("2.0.0"));
    await poll("the failed hot reload", async () => ((await adminPlugins(weir.admin)).find((p) => p.source === file)?.state === "reload-failed" ? true : undefined));
    const failed = await reload(weir);
    assert.is(failed.status, 400);
    writeFileSync(file, version("4.0.0"));
    // The config reload right after the save reads the file, whether or not the watcher saw it yet.
    const fixed = await reload(weir);
    assert.is(fixed.status, 200, JSON.stringify(fixed.body));
    assert.is(await served(weir), "4.0.0");
    await poll("no reload error", async () => ((await adminPlugins(weir.admin)).find((p) => p.source === file)?.state === "active" ? true : undefined));
  } finally {
    await weir.stop();
  }
});

Cache.run();
