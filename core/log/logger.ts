/** Weir's operational log: JSON lines through pino, to stderr so stdout stays for access logs. */
import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Every line Weir writes, operational and access alike, says when in one format: `"time"` in
 * ISO 8601, UTC, with milliseconds (`"2026-11-29T02:17:47.174Z"`), readable by people and by
 * every log collector without a parser rule.
 */
export const LOG_TIME = pino.stdTimeFunctions.isoTime;

export function createLogger(level: string = process.env.WEIR_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { name: "weir" }, timestamp: LOG_TIME }, pino.destination({ fd: 2, sync: false }));
}
