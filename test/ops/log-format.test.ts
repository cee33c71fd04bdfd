/**
 * One time format on every log line: the operational log (stderr) and the access log (stdout) of a
 * real `weir start` both write `"time"` as ISO 8601 UTC with milliseconds (the operational lines
 * used to carry epoch milliseconds).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { killGroup, runWeir } from "../support/cli.js";
import { fixturePath } from "../support/fixtures.js";
import { startUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const Format = suite("log time format");

Format("operational and access lines carry the same ISO 8601 UTC time", async () => {
  const up = await startUpstream();
  const config = join(tempDir("weir-log-format-"), "weir.yaml");
  writeFileSync(config, [
    "listen: { port: 0, host: 127.0.0.1 }",
    "admin: false",
    "log: { level: info }",
    "routes:",
    `  - { match: { path: / }, upstream: "${up.url}", plugins: [{ use: "${fixturePath("plugins", "log-lines.ts")}" }] }`,
    "",
  ].join("\n"));
  const weir = runWeir(["start", "-c", config]);
  try {
    const url = (await weir.waitFor(/listening on (http:\/\/\S+)/))[1]!;
    const res = await request(`${url}/x`);
    await res.body.text();
    appendFileSync(config, "# touched: a reload writes an operational line\n");
    await weir.waitFor(/"msg":"config reloaded"/);
    await weir.waitFor(/"log":"access"/);
    await weir.waitFor(/"msg":"from onLog"/);
    const lines = weir.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    const access = lines.filter((l) => l.log === "access");
    const operational = lines.filter((l) => l.log !== "access");
    assert.ok(access.length >= 1, "an access line");
    assert.ok(operational.some((l) => l.msg === "config reloaded"), "an operational line of the runtime");
    assert.ok(operational.some((l) => l.plugin === "log-lines"), "an operational line a plugin wrote");
    for (const l of lines) assert.match(String(l.time), ISO_UTC, JSON.stringify(l));
    for (const l of lines) assert.type(l.time, "string");
  } finally {
    killGroup(weir.child);
    await up.close();
  }
});

Format.run();
