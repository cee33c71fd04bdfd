/**
 * Plugin hook durations and failures by plugin and hook. A plugin instance is handed its
 * HookTimer once, when it is created (PluginHost), so a hook run costs two `performance.now()`
 * calls and one histogram observe.
 */
import { LatencyHistogram } from "./latency-histogram.js";

/** Hooks run in well under a millisecond when they do not await: finer buckets at the bottom. */
export const HOOK_BUCKETS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5];

export class HookTimer {
  readonly onRequest = new LatencyHistogram(HOOK_BUCKETS);
  readonly onResponse = new LatencyHistogram(HOOK_BUCKETS);
  readonly onLog = new LatencyHistogram(HOOK_BUCKETS);
  readonly errors = new Map<string, number>();
  constructor(readonly plugin: string) {}

  /** One hook run took `ms` milliseconds (sync part, or until an async hook settled). */
  observe(hook: string, ms: number): void {
    const h = hook === "onRequest" ? this.onRequest : hook === "onResponse" ? this.onResponse : hook === "onLog" ? this.onLog : null;
    h?.observe(ms / 1000);
  }
}

export class PluginMetrics {
  /** By plugin name: every entry and version of a plugin shares its series. */
  readonly timers = new Map<string, HookTimer>();

  timer(plugin: string): HookTimer {
    let t = this.timers.get(plugin);
    if (t === undefined) {
      t = new HookTimer(plugin);
      this.timers.set(plugin, t);
    }
    return t;
  }

  failed(plugin: string, hook: string): void {
    const t = this.timer(plugin);
    t.errors.set(hook, (t.errors.get(hook) ?? 0) + 1);
  }
}
