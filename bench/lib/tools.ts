/** Which outside programs the benchmark can use. Nothing is installed from here. */
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";

export interface Tools {
  nginx: string | null;
  wrk: string | null;
  taskset: string | null;
  /** Only used when wrk is missing, and only if it is already installed. */
  autocannon: string | null;
}

export const INSTALL_HINT = "apt-get update && apt-get install -y nginx wrk";

export function which(name: string, extraDirs: string[] = []): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/sbin", ...extraDirs];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* not here */ }
  }
  return null;
}

/** `without` (from BENCH_WITHOUT=nginx,wrk) pretends tools are missing, to exercise the fallbacks. */
export function findTools(root: string, without: readonly string[] = []): Tools {
  const localBin = join(root, "node_modules", ".bin");
  const find = (name: string, extra: string[] = []) => (without.includes(name) ? null : which(name, extra));
  return {
    nginx: find("nginx"),
    wrk: find("wrk"),
    // taskset exists only on Linux; without it the OS places every process.
    taskset: process.platform === "linux" ? find("taskset") : null,
    autocannon: find("autocannon", existsSync(localBin) ? [localBin] : []),
  };
}
