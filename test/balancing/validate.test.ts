/**
 * `weir validate` on bad load-balancing input: each problem is one line naming its key path.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Writable } from "node:stream";
import { stringify } from "yaml";
import { main } from "../../core/cli/main.js";
import { tempDir, writeConfig } from "../support/weir.js";

async function validate(upstream: Record<string, unknown>): Promise<{ code: number; lines: string[] }> {
  const file = writeConfig(tempDir(), stringify({ upstreams: { api: upstream }, routes: [{ upstream: "api" }] }));
  let out = "";
  const sink = new Writable({ write(c, _e, cb) { out += String(c); cb(); } });
  const stream = sink as unknown as typeof process.stdout;
  const code = await main(["validate", "-c", file], stream, sink as unknown as typeof process.stderr);
  return { code, lines: out.trim().split("\n").map((l) => l.slice(file.length + 2)) };
}

const Validate = suite("validate: load-balancing keys");
const T = ["http://127.0.0.1:9001", "http://127.0.0.1:9002"];

const cases: [string, Record<string, unknown>, string, RegExp][] = [
  ["an unknown balance lists the valid ones", { targets: T, balance: "fastest" }, "upstreams.api.balance", /round-robin, least-conn, p2c-ewma, hash, random/],
  ["hashOn without balance: hash", { targets: T, hashOn: "ip" }, "upstreams.api.hashOn", /only applies with balance: hash/],
  ["a bad hashOn", { targets: T, balance: "hash", hashOn: "query:x" }, "upstreams.api.hashOn", /header:NAME/],
  ["a negative weight", { targets: [{ url: T[0], weight: -1 }] }, "upstreams.api.targets[0].weight", /1/],
  ["a target that is not an http(s) URL", { targets: ["ftp://127.0.0.1:21"] }, "upstreams.api.targets[0]", /http/],
  ["unhealthyAfter: 0", { targets: T, healthCheck: { unhealthyAfter: 0 } }, "upstreams.api.healthCheck.unhealthyAfter", /1/],
  ["healthyAfter: 0", { targets: T, healthCheck: { healthyAfter: 0 } }, "upstreams.api.healthCheck.healthyAfter", /1/],
  ["a zero interval", { targets: T, healthCheck: { interval: 0 } }, "upstreams.api.healthCheck.interval", /more than 0/],
  ["consecutiveFailures: 0", { targets: T, outlier: { consecutiveFailures: 0 } }, "upstreams.api.outlier.consecutiveFailures", /1/],
  ["maxEjectedPercent over 100", { targets: T, outlier: { maxEjectedPercent: 150 } }, "upstreams.api.outlier.maxEjectedPercent", /100/],
  ["maxConnections: 0", { targets: T, maxConnections: 0 }, "upstreams.api.maxConnections", /1/],
  ["maxPending without maxConnections", { targets: T, maxPending: 5 }, "upstreams.api.maxPending", /only applies with maxConnections/],
  ["a health check timeout longer than its interval", { targets: T, healthCheck: { interval: "1s", timeout: "2s" } }, "upstreams.api.healthCheck.timeout", /interval/],
  ["the same target twice", { targets: [T[0], T[0]] }, "upstreams.api.targets[1]", /already targets\[0\]/],
];

for (const [name, upstream, path, message] of cases) {
  Validate(`${name} is an error at ${path}`, async () => {
    const { code, lines } = await validate(upstream);
    assert.is(code, 1);
    const line = lines.find((l) => l.startsWith(path + ":"));
    assert.ok(line, `no line for ${path} in:\n${lines.join("\n")}`);
    assert.match(line!, message);
  });
}

Validate("a full load-balancing block is ok", async () => {
  const { code, lines } = await validate({
    targets: [T[0], { url: T[1], weight: 3 }], balance: "hash", hashOn: "cookie:sid",
    healthCheck: { path: "/health", interval: "1s", timeout: "500ms", healthyAfter: 2, unhealthyAfter: 2 },
    outlier: { consecutiveFailures: 5, ejectFor: "30s", maxEjectedPercent: 50 },
    retries: { attempts: 2, budgetPercent: 20 }, timeouts: { connect: "2s", response: "30s", idle: "60s" },
    maxConnections: 100, maxPending: 50,
  });
  assert.is(code, 0, lines.join("\n"));
});

Validate.run();
