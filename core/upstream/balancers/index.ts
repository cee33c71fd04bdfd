/** Balancers by their config name (`upstreams.NAME.balance`). */
import type { BalanceName } from "../../config/schema.js";
import type { BalancerFactory } from "./balancer.js";
import { hash } from "./hash.js";
import { leastConn } from "./least-conn.js";
import { p2cEwma } from "./p2c-ewma.js";
import { random } from "./random.js";
import { roundRobin } from "./round-robin.js";

export const balancers: Partial<Record<BalanceName, BalancerFactory>> = {
  "round-robin": roundRobin,
  "least-conn": leastConn,
  "p2c-ewma": p2cEwma,
  hash,
  random,
};

export function balancerFactory(name: BalanceName): BalancerFactory {
  const f = balancers[name];
  if (!f) throw new Error(`unknown balancer "${name}"; valid ones are: ${Object.keys(balancers).join(", ")}`);
  return f;
}
