/**
 * What the primary and its workers say to each other over the cluster IPC channel. Every request
 * carries an id; the answer carries the same id.
 */
import type { MetricObjectWithValues, MetricValue } from "prom-client";

/**
 * The store a worker uses without `store.redis` lives in the primary (store-host.ts): a worker
 * asks with one of these, the primary answers with a StoreReply of the same id. These ids are counted
 * by each worker, a sequence apart from the ids of the primary's own requests (below).
 */
export type StoreOp = "get" | "set" | "incr" | "delete" | "rateLimit";
export type StoreRequest = { weir: "store"; id: number; op: StoreOp; args: (string | number)[] };
export type StoreReply = { weir: "store"; id: number; ok?: unknown; error?: string };

export type ToWorker =
  | { weir: "reload"; id: number }
  | { weir: "metrics"; id: number }
  | { weir: "admin"; id: number; method: string; path: string }
  | StoreReply;

export type FromWorker =
  | { weir: "ready"; listen: string[] }
  | { weir: "reloaded"; id: number; generation: number }
  | { weir: "reload-failed"; id: number; errors: string[] | null; message: string }
  | { weir: "metrics"; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] }
  | { weir: "admin"; id: number; status: number; body: unknown }
  | StoreRequest;

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === "object" && m !== null && typeof (m as { weir?: unknown }).weir === "string";
}
