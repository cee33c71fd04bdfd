/**
 * The proxies `npm run bench` can measure, as a list of named configurations. Each starts its
 * proxy as its own process in front of the shared upstream and says where it listens. To add a
 * scenario (Weir with plugins, Weir with three targets, ...), append an entry; select with
 * `BENCH_ONLY=name,name`. Entries with `default: false` run only when selected.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { WeirConfig } from "../core/config/schema.js";
import type { ChildSet } from "./lib/children.js";
import { proxyConfig, startNginx } from "./lib/nginx.js";
import { freePort } from "./lib/ports.js";
import type { Tools } from "./lib/tools.js";

export interface BenchContext {
  /** The repository root (where bin/weir.js is). */
  root: string;
  /** dist/bench, where the transpiled helper scripts are. */
  distBench: string;
  /** The shared upstream, e.g. http://127.0.0.1:41234 */
  upstreamUrl: string;
  tools: Tools;
  children: ChildSet;
  /** Command prefix that pins a proxy to its core (["taskset", "-c", "1"]), or []. */
  pin: string[];
  /** A fresh directory of the run's temp dir for this scenario's files. */
  dir(name: string): string;
}

export interface RunningProxy {
  url: string;
  /** Headers every request of the load must carry (e.g. an API key). */
  headers?: Record<string, string>;
  /** The process whose CPU time (with its descendants) is the proxy's. */
  pid: number;
}

export interface Scenario {
  name: string;
  /** Shown in the report. */
  label: string;
  description: string;
  default: boolean;
  /** Why it cannot run on this machine, or null. */
  unavailable(ctx: BenchContext): string | null;
  start(ctx: BenchContext): Promise<RunningProxy>;
}

/** Weir through its real CLI, with the config `build` makes for the shared upstream. */
export function weirScenario(s: { name: string; label: string; description: string; default: boolean; build(upstreamUrl: string): WeirConfig; headers?: Record<string, string>; env?: Record<string, string> }): Scenario {
  return {
    ...s,
    unavailable: () => null,
    async start(ctx) {
      const dir = ctx.dir(s.name);
      const config: WeirConfig = { listen: { port: 0, host: "127.0.0.1" }, admin: false, log: { level: "warn", access: false }, ...s.build(ctx.upstreamUrl) };
      const file = join(dir, "weir.yaml");
      writeFileSync(file, stringify(config));
      const child = ctx.children.start(s.name, process.execPath, ["--no-node-snapshot", join(ctx.root, "bin", "weir.js"), "start", "-c", file], {
        pin: ctx.pin, cwd: dir, env: { ...process.env, WEIR_LOG_LEVEL: "warn", ...s.env },
      });
      const m = await child.waitFor(/weir: listening on (\S+)/);
      return { url: m[1]!, pid: child.pid, headers: s.headers };
    },
  };
}

/** The same upstream under three names (127.0.0.1-3 all reach the loopback listener). */
function threeTargets(upstreamUrl: string): string[] {
  const u = new URL(upstreamUrl);
  return ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map((h) => `${u.protocol}//${h}:${u.port}`);
}

/** A Node script of dist/bench that takes the upstream URL and prints "listening on URL". */
function nodeScriptScenario(s: { name: string; label: string; description: string; default: boolean; script: string }): Scenario {
  return {
    name: s.name, label: s.label, description: s.description, default: s.default,
    unavailable: () => null,
    async start(ctx) {
      const child = ctx.children.start(s.name, process.execPath, [join(ctx.distBench, s.script), ctx.upstreamUrl], { pin: ctx.pin, cwd: ctx.root });
      const m = await child.waitFor(/listening on (\S+)/);
      return { url: m[1]!, pid: child.pid };
    },
  };
}

export const scenarios: Scenario[] = [
  weirScenario({
    name: "weir",
    label: "Weir",
    description: "Weir, one process, one route `/` to the upstream, no plugins, admin off",
    default: true,
    build: (upstreamUrl) => ({
      upstreams: { hello: { targets: [upstreamUrl] } },
      routes: [{ name: "all", match: { path: "/" }, upstream: "hello" }],
    }),
  }),
  weirScenario({
    name: "weir-node-http",
    label: "Weir, node:http only",
    description: "the `weir` scenario with the lean listener off (WEIR_LEAN_LISTENER=0): every request through node:http",
    default: false,
    env: { WEIR_LEAN_LISTENER: "0" },
    build: (upstreamUrl) => ({
      upstreams: { hello: { targets: [upstreamUrl] } },
      routes: [{ name: "all", match: { path: "/" }, upstream: "hello" }],
    }),
  }),
  {
    name: "nginx",
    label: "nginx",
    description: "nginx proxy_pass, one worker, upstream keepalive 64, HTTP/1.1 to the upstream",
    default: true,
    unavailable: (ctx) => (ctx.tools.nginx ? null : "nginx is not installed"),
    async start(ctx) {
      const dir = ctx.dir("nginx");
      const port = await freePort();
      const child = await startNginx(ctx.children, "nginx", ctx.tools.nginx!, dir, port, proxyConfig(dir, port, new URL(ctx.upstreamUrl).host), ctx.pin);
      return { url: `http://127.0.0.1:${port}`, pid: child.pid };
    },
  },
  nodeScriptScenario({
    name: "fastify",
    label: "@fastify/http-proxy",
    description: "@fastify/http-proxy with its defaults (undici), one process",
    default: true,
    script: "proxies/fastify-proxy.js",
  }),
  weirScenario({
    name: "weir-plugins",
    label: "Weir + 4 plugins",
    description: "Weir with four sandboxed built-ins on the route: key-auth, rate-limit (in-process), transform, analytics",
    default: true,
    headers: { "x-api-key": "bench-key" },
    build: (upstreamUrl) => ({
      upstreams: { hello: { targets: [upstreamUrl] } },
      routes: [{
        name: "all", match: { path: "/" }, upstream: "hello",
        plugins: [
          { use: "key-auth", config: { keys: { "bench-key": "bench" } } },
          { use: "rate-limit", config: { limit: 100000000, window: "1s", by: "consumer" } },
          { use: "transform", config: { request: { setHeaders: { "x-consumer": "${consumer}" } }, response: { removeHeaders: ["server"] } } },
          { use: "analytics", config: {} },
        ],
      }],
    }),
  }),
  weirScenario({
    name: "weir-3-targets",
    label: "Weir, 3 targets",
    description: "Weir balancing round-robin over three targets (the shared upstream under 127.0.0.1-3)",
    default: false,
    build: (upstreamUrl) => ({
      upstreams: { hello: { targets: threeTargets(upstreamUrl), balance: "round-robin" } },
      routes: [{ name: "all", match: { path: "/" }, upstream: "hello" }],
    }),
  }),
  nodeScriptScenario({
    name: "lean-front",
    label: "lean net front (experiment)",
    description: "net + node's llhttp binding in front, undici dispatch behind, GET only, no hygiene: what dropping node:http's server side would save",
    default: false,
    script: "proxies/lean-front.js",
  }),
  nodeScriptScenario({
    name: "undici-dispatch",
    label: "bare undici dispatch",
    description: "node:http + undici Pool dispatch, no routing or hygiene: the floor of a Node proxy",
    default: false,
    script: "proxies/undici-dispatch.js",
  }),
];

