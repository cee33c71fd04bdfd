/**
 * A route entry's `config:` is validated against the plugin's configSchema by the real
 * `weir validate` (exit 1, one `FILE: key.path: message` line per problem), at start, and
 * defaults from the schema reach the plugin.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { runWeir } from "../support/cli.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, withTestDefaults, writeConfig } from "../support/weir.js";
import type { PluginEntryConfig } from "../../core/config/schema.js";
import { pluginFixture } from "./support.js";

const greeter = (config: Record<string, unknown>): PluginEntryConfig => ({ use: pluginFixture("typed-greeter.ts"), config });

async function validate(plugins: PluginEntryConfig[], global: PluginEntryConfig[] = []): Promise<{ code: number | null; file: string; lines: string[] }> {
  const file = writeConfig(tempDir(), withTestDefaults({
    ...(global.length ? { plugins: global } : {}),
    routes: [{ match: { path: "/" }, upstream: "http://127.0.0.1:1", plugins }],
  }));
  const cli = runWeir(["validate", "-c", file]);
  const { code } = await cli.exited;
  return { code, file, lines: cli.output().trim().split("\n") };
}

const Schema = suite<{ up: TestUpstream }>("plugin config schema");
Schema.before(async (ctx) => { ctx.up = await startUpstream(); });
Schema.after(async (ctx) => { await ctx.up.close(); });

Schema("a config of the wrong type is a validate error at its key path, exit 1", async () => {
  const { code, file, lines } = await validate([greeter({ greeting: "hi", times: "twice" })]);
  assert.is(code, 1);
  assert.equal(lines, [`${file}: routes[0].plugins[0].config.times: must be integer`]);
});

Schema("a missing required key, an unknown key and a bad array item are each reported", async () => {
  const { code, file, lines } = await validate([greeter({ times: 0, colour: "red", tags: ["a", 2] })]);
  assert.is(code, 1);
  assert.equal(lines.sort(), [
    `${file}: routes[0].plugins[0].config.colour: unknown key; expected one of: greeting, times, tags`,
    `${file}: routes[0].plugins[0].config.greeting: is required`,
    `${file}: routes[0].plugins[0].config.tags[1]: must be string`,
    `${file}: routes[0].plugins[0].config.times: must be >= 1`,
  ].sort());
});

Schema("entries are named by their own position, global and per route", async () => {
  const { code, file, lines } = await validate([greeter({ greeting: "ok" }), greeter({ greeting: 5 })], [greeter({ greeting: "" })]);
  assert.is(code, 1);
  assert.equal(lines.sort(), [
    `${file}: plugins[0].config.greeting: must NOT have fewer than 1 characters`,
    `${file}: routes[0].plugins[1].config.greeting: must be string`,
  ].sort());
});

Schema("a valid config passes validate with ok and exit 0", async () => {
  const { code, lines } = await validate([greeter({ greeting: "hi", times: 2, tags: ["a"] })]);
  assert.is(code, 0, lines.join("\n"));
  assert.equal(lines, ["ok"]);
});

Schema("start refuses a wrong config with the same key path", async ({ up }) => {
  try {
    const w = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [greeter({ greeting: 1 })] }] });
    await w.stop();
    assert.unreachable("Weir must refuse to start");
  } catch (err) {
    assert.match((err as Error).message, /routes\[0\]\.plugins\[0\]\.config\.greeting: must be string/);
  }
});

Schema("schema defaults reach the plugin", async ({ up }) => {
  const weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [greeter({ greeting: "hello" })] }] });
  try {
    const res = await request(`${weir.url}/x`);
    await res.body.text();
    assert.is(res.statusCode, 200);
    assert.is(res.headers["x-greeted"], "200");
    assert.is(up.seen.at(-1)!.headers["x-greeting"], "hello");
  } finally { await weir.stop(); }
});

Schema.run();
