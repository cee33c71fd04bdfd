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
];

/** The scenarios every other one is compared with, in the report's "x NAME" columns. */
export const baselines = ["nginx", "fastify"];
