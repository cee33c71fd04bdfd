/**
 * Real Target objects for balancer tests that do not send traffic (a Target's pool connects
 * lazily, so nothing is opened). Call `closeTargets` when done.
 */
import { Target } from "../../core/upstream/target.js";
import type { PickContext } from "../../core/upstream/balancers/balancer.js";

export function makeTargets(weights: number[], basePort = 20000): Target[] {
  return weights.map((w, i) => {
    const t = new Target("test", `http://127.0.0.1:${basePort + i}`, { connectTimeoutMs: 1000, idleTimeoutMs: 1000, maxConnections: null });
    t.weight = w;
    return t;
  });
}

export async function closeTargets(ts: Target[]): Promise<void> {
  await Promise.all(ts.map((t) => t.pool.close()));
}

/** A pick context with the given headers, client address and path. */
export function pickContext(headers: Record<string, string> = {}, clientIp = "127.0.0.1", path = "/"): PickContext {
  return { path, clientIp, header: (name) => headers[name] };
}

/** How many of `picks` went to each target, by index. */
export function countPicks(ts: Target[], picks: (Target | null)[]): number[] {
  const counts = ts.map(() => 0);
  for (const p of picks) if (p) counts[ts.indexOf(p)]!++;
  return counts;
}
