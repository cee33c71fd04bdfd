/** Weir's operational log: JSON lines through pino, to stderr so stdout stays for access logs. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string = process.env.WEIR_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { name: "weir" } }, pino.destination({ fd: 2, sync: false }));
}
