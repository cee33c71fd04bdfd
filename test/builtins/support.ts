/**
 * Shared helpers for the built-in plugin suites: where a built-in's source is, the config problems
 * `weir validate` would print for an entry, and a running Weir with one route in front of a real
 * upstream that records what reached it.
 */
import { fileURLToPath } from "node:url";
import { request } from "undici";
import type { PluginEntryConfig, WeirConfig } from "../../core/config/schema.js";
import { createLogger } from "../../core/log/logger.js";
import { PluginHost } from "../../core/plugin-host/plugin-host.js";
import { MemoryStore } from "../../core/store/memory-store.js";
import { startUpstream, type TestUpstream, type UpstreamHandler } from "../support/upstream.js";
import { startWeir, tempDir, writeConfig, type TestWeir } from "../support/weir.js";

/** The source of a built-in, as `use: NAME` resolves it. */
export function builtin(name: string): string {
  return fileURLToPath(new URL(`../../../plugins/${name}/plugin.ts`, import.meta.url));
}

/**
 * The problems validate/start/reload report for one route entry `{use, config}`, as
 * "path: message" lines (the path starts at the entry, e.g. "routes[0].plugins[0].config.keys").
 */
export async function configProblems(entry: PluginEntryConfig): Promise<string[]> {
  const dir = tempDir("weir-builtin-schema-");
  const config: WeirConfig = { routes: [{ name: "r", match: { path: "/" }, upstream: "http://127.0.0.1:9", plugins: [entry] }] } as WeirConfig;
  const file = writeConfig(dir, config);
  const store = new MemoryStore();
  const host = new PluginHost(createLogger("silent"), () => store, { watch: false });
  try {
    const r = await host.prepare(config, file);
    for (const slot of r.slots.values()) slot.current.dispose();
    return r.problems.map((p) => `${p.path}: ${p.message}`);
  } finally {
    await host.close();
    await store.close();
  }
}

export interface Gateway {
  weir: TestWeir;
  upstream: TestUpstream;
  /** A request through Weir; headers lower-cased, body as text. */
  get(path: string, headers?: Record<string, string | string[]>, method?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string; json: () => any }>;
  close(): Promise<void>;
}

/**
 * One route `name: r` on `path` (default "/") with the given plugin entries, over a real upstream.
 * `extra` is merged into the config (store, trustedProxies, global plugins...).
 */
export async function startGateway(plugins: PluginEntryConfig[], extra: Partial<WeirConfig> & { path?: string; handler?: UpstreamHandler } = {}): Promise<Gateway> {
  const { path = "/", handler, ...rest } = extra;
  const upstream = await startUpstream(handler);
  let weir: TestWeir;
  try {
    weir = await startWeir({ routes: [{ name: "r", match: { path }, upstream: upstream.url, plugins }], ...rest } as WeirConfig);
  } catch (err) {
    await upstream.close();
    throw err;
  }
  return {
    weir,
    upstream,
    async get(p, headers = {}, method = "GET") {
      const res = await request(weir.url + p, { method: method as "GET", headers });
      const body = await res.body.text();
      return { status: res.statusCode, headers: res.headers as Record<string, string | string[] | undefined>, body, json: () => JSON.parse(body) };
    },
    async close() {
      await weir.stop();
      await upstream.close();
    },
  };
}

/** Redis must be there for the suites that use it: they fail, never skip, without it. */
export async function requireRedis(url = "redis://127.0.0.1:6379"): Promise<void> {
  const { Redis } = await import("ioredis");
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1000, retryStrategy: () => null });
  try {
    await client.connect();
    const pong = await client.ping();
    if (pong !== "PONG") throw new Error(`unexpected PING answer ${pong}`);
  } catch (err) {
    throw new Error(`these tests need Redis at ${url} (start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no): ${(err as Error).message}`);
  } finally {
    client.disconnect();
  }
}

/**
 * Asserts that one problem line names `key` (a path inside the entry, e.g. "config.keys" or
 * "config.deny[1]") — an unknown key is reported either at its own path or by name.
 */
export function assertNamesKey(lines: string[], key: string): void {
  const at = `routes[0].plugins[0].${key}`;
  const name = key.slice(key.lastIndexOf(".") + 1);
  const ok = lines.some((l) => l.startsWith(at + ":") || l.startsWith(at + ".") || l.startsWith(at + "[") || (l.includes("unknown key") && l.includes(`"${name}"`)));
  if (!ok) throw new Error(`expected a problem naming ${at}, got:\n${lines.join("\n") || "(none)"}`);
}
