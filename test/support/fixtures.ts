/**
 * Paths of committed test fixtures (test/fixtures/). Tests run from dist/, so the path is found
 * from the project root (the nearest directory with package.json) rather than from this file.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the project root (no package.json above the tests)");
    dir = parent;
  }
  return dir;
}

export const ROOT = projectRoot();

export function fixturePath(...parts: string[]): string {
  return join(ROOT, "test", "fixtures", ...parts);
}
