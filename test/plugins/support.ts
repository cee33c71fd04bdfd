/**
 * Helpers shared by the plugin suites: fixture plugins copied into a temp dir (with a placeholder
 * origin replaced, since a plugin's permissions are static text), polling instead of fixed
 * sleeps, and the admin API's view of the plugins.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { fixturePath } from "../support/fixtures.js";

export const pluginFixture = (name: string): string => fixturePath("plugins", name);

/** The origin fixture plugins use as a placeholder for a test server's real one. */
export const PLACEHOLDER_ORIGIN = "http://127.0.0.1:9";

/** Writes a copy of fixture `name` into `dir`, every placeholder origin replaced by `origin`. */
export function fixtureWithOrigin(name: string, dir: string, origin: string, as = name): string {
  const text = readFileSync(pluginFixture(name), "utf8").split(PLACEHOLDER_ORIGIN).join(origin);
  const file = join(dir, as);
  writeFileSync(file, text);
  return file;
}

/** Calls `check` every `everyMs` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function poll<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface PluginView {
  name: string; version: string; source: string; at: string; state: string;
  errors: { at: string | null; hook: string; message: string }[];
  calls: number; failures: number;
  memory: { heapUsedBytes: number; limitMb: number };
}

/** GET /plugins on the admin API. */
export async function adminPlugins(admin: string): Promise<PluginView[]> {
  const res = await request(`${admin}/plugins`);
  return (await res.body.json()) as PluginView[];
}
