/** The targets of issue 2: Weir's throughput relative to its peers, measured in the same run. */
export interface Target {
  scenario: string;
  baseline: string;
  /** Minimum ratio of req/s, scenario / baseline. */
  min: number;
}

export const targets: Target[] = [
  { scenario: "weir", baseline: "fastify", min: 1.6 },
  { scenario: "weir", baseline: "nginx", min: 0.25 },
  // Issues 4 and 5: four sandboxed plugins keep at least 0.80x of the plugin-free route.
  { scenario: "weir-plugins", baseline: "weir", min: 0.8 },
  // Issue 3: balancing over three targets stays within 5% of a single target.
  { scenario: "weir-3-targets", baseline: "weir", min: 0.95 },
];

/** The scenarios every other one is compared with, in the report's "x NAME" columns. */
export const baselines = ["nginx", "fastify"];
