/** How many worker processes `workers:` asks for (`auto`: one per core Node may use). */
import { availableParallelism } from "node:os";
import { loadConfigFile } from "../config/loader.js";
import type { WeirConfig } from "../config/schema.js";

export function workersFor(config: WeirConfig): number {
  if (config.workers === "auto") return availableParallelism();
  return typeof config.workers === "number" && config.workers > 0 ? config.workers : 1;
}

/**
 * The worker count of a config file, or 1 when the file cannot be read (the single-process start
 * then reports the problems exactly as it always does).
 */
export function workersInFile(file: string): number {
  try {
    return workersFor(loadConfigFile(file));
  } catch {
    return 1;
  }
}
