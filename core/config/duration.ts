/** A duration as written in config: "250ms", "2s", "1m", "1h" or a number of milliseconds. */
export type Duration = string | number;

export const DURATION_PATTERN = "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$";
const re = new RegExp(DURATION_PATTERN);
const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Converts a validated duration to milliseconds. */
export function toMs(d: Duration): number {
  if (typeof d === "number") return d;
  const m = re.exec(d);
  if (!m) throw new Error(`not a duration: ${d}`);
  return Math.round(parseFloat(d) * unit[m[2]!]!);
}
