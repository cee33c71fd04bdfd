/** Weir's throughput targets, relative to its peers, measured in the same run (docs/benchmarks.md). */
export interface Target {
  scenario: string;
  baseline: string;
  /** Minimum ratio of req/s, scenario / baseline. */
  min: number;
}

export const targets: Target[] = [
  { scenario: "weir", baseline: "fastify", min: 1.6 },
  { scenario: "weir", baseline: "nginx", min: 0.25 },
  // Four sandboxed plugins keep at least 0.80x of the plugin-free route.
  { scenario: "weir-plugins", baseline: "weir", min: 0.8 },
  // Balancing over three targets stays within 5% of a single target.
  { scenario: "weir-3-targets", baseline: "weir", min: 0.95 },
];

/** The scenarios every other one is compared with, in the report's "x NAME" columns. */
export const baselines = ["nginx", "fastify"];
