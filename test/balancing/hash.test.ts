/**
 * Consistent hashing: the same key keeps its target, a target that leaves moves only its own
 * keys (about 1/N of them), and a request without a key is balanced round-robin.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { HashBalancer } from "../../core/upstream/balancers/hash.js";
import { cookieValue } from "../../core/upstream/balancers/hash-key.js";
import { closeTargets, countPicks, makeTargets, pickContext } from "./targets.js";

const Hash = suite("hash balancer");
const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
const byHeader = (k: string) => pickContext({ "x-user": k });

Hash("the same key always lands on the same target", async () => {
  const ts = makeTargets([1, 1, 1, 1, 1]);
  const b = new HashBalancer(ts, "header:x-user");
  for (const k of keys.slice(0, 500)) {
    const first = b.pick(byHeader(k));
    for (let i = 0; i < 3; i++) assert.is(b.pick(byHeader(k)), first);
  }
  await closeTargets(ts);
});

Hash("removing one of 10 targets from the config remaps only its keys, about 1/10", async () => {
  const ts = makeTargets(Array(10).fill(1));
  const before = new HashBalancer(ts, "header:x-user");
  const after = new HashBalancer(ts.slice(0, 9), "header:x-user");
  const gone = ts[9]!;
  let moved = 0;
  for (const k of keys) {
    const a = before.pick(byHeader(k));
    const b = after.pick(byHeader(k));
    if (a !== b) {
      moved++;
      assert.is(a, gone, `key ${k} moved though its target stayed`);
    }
  }
  const fraction = moved / keys.length;
  assert.ok(fraction > 0.06 && fraction < 0.14, `remapped fraction ${fraction}`);
  await closeTargets(ts);
});

Hash("an unhealthy target's keys move to the others and come back when it recovers", async () => {
  const ts = makeTargets([1, 1, 1, 1]);
  const b = new HashBalancer(ts, "header:x-user");
  const home = keys.slice(0, 2000).map((k) => b.pick(byHeader(k)));
  ts[1]!.healthy = false;
  keys.slice(0, 2000).forEach((k, i) => {
    const now = b.pick(byHeader(k));
    if (home[i] === ts[1]) assert.is.not(now, ts[1]);
    else assert.is(now, home[i], "a key of a healthy target moved");
  });
  ts[1]!.healthy = true;
  keys.slice(0, 2000).forEach((k, i) => assert.is(b.pick(byHeader(k)), home[i]));
  await closeTargets(ts);
});

Hash("keys spread evenly over equal targets (each within 25% of its share)", async () => {
  const ts = makeTargets([1, 1, 1, 1, 1]);
  const b = new HashBalancer(ts, "header:x-user");
  const counts = countPicks(ts, keys.map((k) => b.pick(byHeader(k))));
  for (const c of counts) assert.ok(c > 1500 && c < 2500, `counts ${counts}`);
  await closeTargets(ts);
});

Hash("a request without the key is balanced round-robin", async () => {
  const ts = makeTargets([1, 1, 1]);
  const b = new HashBalancer(ts, "header:x-user");
  const counts = countPicks(ts, Array.from({ length: 300 }, () => b.pick(pickContext())));
  assert.equal(counts, [100, 100, 100]);
  await closeTargets(ts);
});

Hash("hashOn cookie, ip and path read their keys", async () => {
  const ts = makeTargets([1, 1, 1, 1, 1, 1]);
  const byCookie = new HashBalancer(ts, "cookie:sid");
  const a = byCookie.pick(pickContext({ cookie: "theme=dark; sid=abc123; x=1" }));
  assert.is(byCookie.pick(pickContext({ cookie: "sid=abc123" })), a);
  const byIp = new HashBalancer(ts, "ip");
  const ipPicks = new Set(Array.from({ length: 50 }, (_, i) => byIp.pick(pickContext({}, `10.0.0.${i}`))));
  assert.ok(ipPicks.size > 2, "different addresses spread");
  assert.is(byIp.pick(pickContext({}, "10.0.0.7")), byIp.pick(pickContext({}, "10.0.0.7")));
  const byPath = new HashBalancer(ts, "path");
  assert.is(byPath.pick(pickContext({}, "1.1.1.1", "/a/b")), byPath.pick(pickContext({}, "2.2.2.2", "/a/b")));
  await closeTargets(ts);
});

Hash("cookieValue finds a cookie among others and not a prefix of another name", () => {
  assert.is(cookieValue("a=1; sid=xyz; b=2", "sid"), "xyz");
  assert.is(cookieValue("sidx=1; sid=2", "sid"), "2");
  assert.is(cookieValue("sidx=1", "sid"), undefined);
  assert.is(cookieValue("sid=", "sid"), "");
});

Hash.run();
