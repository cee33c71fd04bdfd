/** The listeners a config asks for. */
import type { ListenConfig, WeirConfig } from "./schema.js";

/** The `listen:` entries of a config, in order (one on :8080 when there is none). */
export function listenSpecs(config: WeirConfig): ListenConfig[] {
  if (config.listen === undefined) return [{ port: 8080, host: "0.0.0.0" }];
  return Array.isArray(config.listen) ? config.listen : [config.listen];
}
