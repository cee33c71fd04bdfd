/**
 * `hash`: consistent hashing on a ring with virtual nodes (ketama). Each target owns
 * `POINTS_PER_WEIGHT x weight` points placed by hashing its URL, so a target's points do not
 * depend on the other targets: when one leaves (removed from the config, unhealthy or ejected),
 * only the keys that mapped to it move — about 1/N of them — and every other key stays put.
 * A key lands on the first point at or after its hash; an unavailable owner passes the key on
 * to the next point's owner. A request without a key (no such header or cookie) is balanced
 * round-robin.
 */
import type { Balancer, BalancerFactory, PickContext } from "./balancer.js";
import type { Target } from "../target.js";
import { hash32, keyReader, type KeyReader } from "./hash-key.js";
import { RoundRobinBalancer } from "./round-robin.js";

/** 160 points per unit of weight, as ketama: load within a few percent of even for 10+ targets. */
const POINTS_PER_WEIGHT = 160;
/** Ring size cap (large weights are scaled down to fit); 100k points is a 400 KB ring. */
const MAX_POINTS = 100_000;

export class HashBalancer implements Balancer {
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;
  private readonly key: KeyReader;
  private readonly fallback: RoundRobinBalancer;

  constructor(private readonly targets: readonly Target[], hashOn?: string) {
    this.key = keyReader(hashOn);
    this.fallback = new RoundRobinBalancer(targets);
    let want = 0;
    for (const t of targets) want += POINTS_PER_WEIGHT * t.weight;
    const scale = want > MAX_POINTS ? MAX_POINTS / want : 1;
    const ring: { h: number; i: number }[] = [];
    targets.forEach((t, i) => {
      const n = Math.max(1, Math.round(POINTS_PER_WEIGHT * t.weight * scale));
      for (let v = 0; v < n; v++) ring.push({ h: hash32(`${t.url}#${v}`), i });
    });
    // Ties between two targets' points are broken by URL so the ring does not depend on list order.
    ring.sort((a, b) => a.h - b.h || (targets[a.i]!.url < targets[b.i]!.url ? -1 : 1));
    this.points = Uint32Array.from(ring, (p) => p.h);
    this.owners = Uint16Array.from(ring, (p) => p.i);
  }

  pick(ctx: PickContext, exclude?: Target | null): Target | null {
    const key = this.key(ctx);
    if (key === undefined || key === "") return this.fallback.pick(ctx, exclude);
    return this.pickByHash(hash32(key), exclude);
  }

  /** The owner of the first point at or after `h` that may take traffic now. */
  pickByHash(h: number, exclude?: Target | null): Target | null {
    const pts = this.points;
    const n = pts.length;
    if (n === 0) return null;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pts[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const now = Date.now();
    const first = this.targets[this.owners[lo % n]!]!;
    if (first !== exclude && first.available(now)) return first;
    if (!this.anyAvailable(now, exclude)) return null;
    for (let k = 1; k < n; k++) {
      const t = this.targets[this.owners[(lo + k) % n]!]!;
      if (t !== exclude && t.available(now)) return t;
    }
    return null;
  }

  // Checked before walking the ring so that "all down" costs N checks, not a walk of every point.
  private anyAvailable(now: number, exclude: Target | null | undefined): boolean {
    for (const t of this.targets) if (t !== exclude && t.available(now)) return true;
    return false;
  }
}

export const hash: BalancerFactory = (targets, options) => new HashBalancer(targets, options.hashOn);
