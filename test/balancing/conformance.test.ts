/**
 * The contract every balancer keeps, run against each registered algorithm (as Hono runs one
 * suite against every router): skip unavailable targets, honour weights, never return the
 * excluded target, answer null when nothing is available.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { balancers } from "../../core/upstream/balancers/index.js";
import type { BalanceName } from "../../core/config/schema.js";
import { BALANCERS } from "../../core/config/schema.js";
import { closeTargets, countPicks, makeTargets, pickContext } from "./targets.js";

// hash needs a key that varies per request to spread; the others ignore the context.
let n = 0;
const ctx = () => pickContext({ "x-user": `user-${n++}` });
const options = { hashOn: "header:x-user" };

const Registry = suite("balancer registry");
Registry("every balance name of the schema has a balancer", () => {
  for (const name of BALANCERS) assert.ok(balancers[name], `no balancer for ${name}`);
});
Registry.run();

for (const name of Object.keys(balancers) as BalanceName[]) {
  const make = balancers[name]!;
  const Conformance = suite(`balancer conformance: ${name}`);

  Conformance("never picks an unhealthy or ejected target", async () => {
    const ts = makeTargets([1, 1, 1, 1]);
    ts[0]!.healthy = false;
    ts[2]!.ejectedUntil = Date.now() + 60_000;
    const b = make(ts, options);
    const picks = Array.from({ length: 400 }, () => b.pick(ctx()));
    const counts = countPicks(ts, picks);
    assert.is(counts[0], 0);
    assert.is(counts[2], 0);
    assert.ok(counts[1]! > 100 && counts[3]! > 100, `both available targets used: ${counts}`);
    await closeTargets(ts);
  });

  Conformance("answers null when no target is available, and with no targets at all", async () => {
    const ts = makeTargets([1, 2]);
    ts[0]!.healthy = false;
    ts[1]!.ejectedUntil = Date.now() + 60_000;
    assert.is(make(ts, options).pick(ctx()), null);
    assert.is(make([], options).pick(ctx()), null);
    await closeTargets(ts);
  });

  Conformance("a target whose ejection has expired is picked again", async () => {
    const ts = makeTargets([1, 1]);
    ts[0]!.ejectedUntil = Date.now() - 1;
    const counts = countPicks(ts, Array.from({ length: 200 }, () => make(ts, options).pick(ctx())));
    assert.ok(counts[0]! > 40, `expired ejection ignored: ${counts}`);
    await closeTargets(ts);
  });

  Conformance("never returns the excluded target, and null when it is the only one available", async () => {
    const ts = makeTargets([1, 5, 1]);
    const b = make(ts, options);
    for (let i = 0; i < 300; i++) assert.is.not(b.pick(ctx(), ts[1]), ts[1]);
    ts[0]!.healthy = false;
    ts[2]!.healthy = false;
    assert.is(b.pick(ctx(), ts[1]), null);
    await closeTargets(ts);
  });

  Conformance("spreads sequential picks in proportion to weight (1:2:3 within 20%)", async () => {
    const ts = makeTargets([1, 2, 3]);
    const b = make(ts, options);
    const total = 6000;
    const counts = countPicks(ts, Array.from({ length: total }, () => b.pick(ctx())));
    [1, 2, 3].forEach((w, i) => {
      const expected = (total * w) / 6;
      const ratio = counts[i]! / expected;
      assert.ok(ratio > 0.8 && ratio < 1.2, `target ${i} (weight ${w}) got ${counts[i]} of ${total}, expected ~${expected}`);
    });
    await closeTargets(ts);
  });

  Conformance.run();
}
