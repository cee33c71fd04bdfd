/**
 * What the primary and its workers say to each other over the cluster IPC channel. Every request
 * carries an id; the answer carries the same id.
 */
import type { MetricObjectWithValues, MetricValue } from "prom-client";

export type ToWorker =
  | { weir: "reload"; id: number }
  | { weir: "metrics"; id: number }
  | { weir: "admin"; id: number; method: string; path: string };

export type FromWorker =
  | { weir: "ready"; listen: string[] }
  | { weir: "reloaded"; id: number; generation: number }
  | { weir: "reload-failed"; id: number; errors: string[] | null; message: string }
  | { weir: "metrics"; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] }
  | { weir: "admin"; id: number; status: number; body: unknown };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === "object" && m !== null && typeof (m as { weir?: unknown }).weir === "string";
}
