/**
 * CPU time (user + system) of a process and all its descendants, from /proc (Linux only), so that
 * the report can show what each proxy spends per request independently of how loaded the machine
 * is. nginx does its work in a worker process, hence the descendants.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICK_US = 1_000_000 / 100; // USER_HZ is 100 on every Linux we run on

function stat(pid: number): { ppid: number; ticks: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

/** Microseconds of CPU used so far by `pid` and its descendants, or null where /proc is missing. */
export function treeCpuMicros(pid: number): number | null {
  if (process.platform !== "linux") return null;
  const root = stat(pid);
  if (root === null) return null;
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const p = Number(name);
    if (!Number.isInteger(p) || p === pid) continue;
    const s = stat(p);
    if (s === null) continue;
    const list = byParent.get(s.ppid);
    if (list) list.push(p); else byParent.set(s.ppid, [p]);
  }
  let ticks = root.ticks;
  const queue = [...(byParent.get(pid) ?? [])];
  while (queue.length) {
    const p = queue.pop()!;
    ticks += stat(p)?.ticks ?? 0;
    queue.push(...(byParent.get(p) ?? []));
  }
  return ticks * TICK_US;
}
