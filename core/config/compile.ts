/**
 * Compiles a validated config into a Generation, after the checks that need the whole config:
 * names that must resolve, URLs that must be origins, files that must be readable. Problems are
 * reported in the same `FILE: path.to.key: message` form as schema errors.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { ConfigError, type ConfigProblem } from "../errors.js";
import { TrustedProxies, parseCidr } from "../net/client-address.js";
import { normalizePath, PathRejection } from "../router/normalize-path.js";
import { Router } from "../router/router.js";
import { PluginChain } from "../plugin-host/plugin-chain.js";
import type { PluginSlot } from "../plugin-host/plugin-slot.js";
import { balancerFactory, balancers } from "../upstream/balancers/index.js";
import { checkUpstreamPolicies, compileUpstreamPolicies } from "../upstream/policies.js";
import type { Target } from "../upstream/target.js";
import type { TargetRegistry } from "../upstream/target-registry.js";
import { Upstream, type UpstreamTimeouts } from "../upstream/upstream.js";
import type { Logger } from "../log/logger.js";
import { toMs } from "./duration.js";
import type { CompiledRoute, Generation, Limits } from "./generation.js";
import type { BalanceName, TimeoutsConfig, UpstreamConfig, WeirConfig } from "./schema.js";

export const DEFAULTS = {
  maxHeaderBytes: 16384,
  maxBodyBytes: 10 * 1024 * 1024,
  requestTimeoutMs: 60_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  shutdownTimeoutMs: 10_000,
  connectTimeoutMs: 2_000,
  responseTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
} as const;

/** Semantic checks; an empty list means `compileGeneration` will succeed. */
export function checkConfig(config: WeirConfig, file: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (path: string, message: string) => problems.push({ file, path, message });

  const listeners = config.listen === undefined ? [] : Array.isArray(config.listen) ? config.listen : [config.listen];
  listeners.forEach((l, i) => {
    const at = Array.isArray(config.listen) ? `listen[${i}]` : "listen";
    let bothReadable = l.tls !== undefined;
    for (const k of ["cert", "key"] as const) {
      const f = l.tls?.[k];
      if (f && !readable(f)) { add(`${at}.tls.${k}`, `cannot read the file "${f}"`); bothReadable = false; }
    }
    // A file that is readable but not PEM, or a key that does not belong to the certificate,
    // would otherwise pass validate and crash start.
    if (bothReadable) {
      try {
        createSecureContext({ cert: readFileSync(l.tls!.cert), key: readFileSync(l.tls!.key) });
      } catch (e) {
        add(`${at}.tls`, `cannot use this certificate and key: ${(e as Error).message}`);
      }
    }
  });
  (config.trustedProxies ?? []).forEach((c, i) => {
    const p = parseCidr(c);
    if (typeof p === "string") add(`trustedProxies[${i}]`, p);
  });
  const l = config.limits ?? {};
  if (l.headersTimeout !== undefined && l.requestTimeout !== undefined && toMs(l.headersTimeout) > toMs(l.requestTimeout))
    add("limits.headersTimeout", "must not be longer than limits.requestTimeout");

  for (const [name, u] of Object.entries(config.upstreams ?? {})) {
    const at = `upstreams.${name}`;
    u.targets.forEach((t, i) => {
      const url = typeof t === "string" ? t : t.url;
      const problem = targetUrlProblem(url);
      if (problem) add(`${at}.targets[${i}]${typeof t === "string" ? "" : ".url"}`, problem);
    });
    const balance = u.balance ?? "round-robin";
    if (!balancers[balance]) add(`${at}.balance`, `"${balance}" is not available in this build; available: ${Object.keys(balancers).join(", ")}`);
    if (u.hashOn !== undefined && balance !== "hash") add(`${at}.hashOn`, 'only applies with balance: hash');
    checkUpstreamPolicies(u, at, add);
  }

  const names = new Map<string, number>();
  (config.routes ?? []).forEach((r, i) => {
    const at = `routes[${i}]`;
    if (r.name !== undefined) {
      if (names.has(r.name)) add(`${at}.name`, `"${r.name}" is already the name of routes[${names.get(r.name)}]`);
      else names.set(r.name, i);
    }
    const path = r.match?.path;
    if (path !== undefined) {
      // Requests are matched by their canonical path, so a pattern in any other spelling
      // (`/a//b`, `/a/../b`, `/%7Euser`) would silently never match.
      const canonical = normalizePath(path);
      if (canonical instanceof PathRejection) add(`${at}.match.path`, `cannot match any request: ${canonical.message}`);
      else if (canonical !== path) add(`${at}.match.path`, `is not in canonical form and would never match; write "${canonical}"`);
    }
    const hosts = r.match?.host === undefined ? [] : Array.isArray(r.match.host) ? r.match.host : [r.match.host];
    hosts.forEach((h, j) => {
      const hostAt = `${at}.match.host${Array.isArray(r.match?.host) ? `[${j}]` : ""}`;
      const problem = hostPatternProblem(h);
      if (problem) add(hostAt, problem);
    });
    if (!config.upstreams?.[r.upstream]) {
      if (/^[a-z]+:\/\//i.test(r.upstream)) {
        const problem = targetUrlProblem(r.upstream);
        if (problem) add(`${at}.upstream`, problem);
      } else {
        const known = Object.keys(config.upstreams ?? {});
        add(`${at}.upstream`, `unknown upstream "${r.upstream}"; define it under upstreams${known.length ? ` (defined: ${known.join(", ")})` : ""} or give a URL such as http://127.0.0.1:9001`);
      }
    }
  });
  return problems;
}

/**
 * Routes match the Host header's name, without its port (prepare-request strips it), so a port, a
 * scheme or a `*` anywhere but a leading `*.` would make a route that never matches.
 */
function hostPatternProblem(h: string): string | null {
  if (h.startsWith("[") && h.endsWith("]")) return null; // an IPv6 literal
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(h)) return `"${h}" must be a host name, not a URL`;
  if (h.includes(":")) return `"${h}" must be a host name without a port (routes match the Host header's name only)`;
  if (!/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*$/.test(h))
    return `"${h}" must be a host name such as api.example.com, or *.example.com for every sub-domain`;
  return null;
}

function readable(f: string): boolean {
  try { accessSync(f, constants.R_OK); return true; } catch { return false; }
}

function targetUrlProblem(url: string): string | null {
  let u: URL;
  try { u = new URL(url); } catch { return `"${url}" is not a URL; write it like http://127.0.0.1:9001`; }
  if (u.protocol !== "http:" && u.protocol !== "https:") return `"${url}" must be an http:// or https:// URL`;
  if (u.username || u.password) return `"${url}" must not contain credentials`;
  if ((u.pathname !== "/" && u.pathname !== "") || u.search || u.hash)
    return `"${url}" must be an origin without a path or query (use stripPrefix or a transform to rewrite paths)`;
  return null;
}

/** Builds a generation; throws ConfigError when checkConfig finds problems. */
export interface CompileExtras {
  /** Plugin slots by key path ("plugins[0]", "routes[1].plugins[0]"), from PluginHost.prepare. */
  slots?: ReadonlyMap<string, PluginSlot>;
  pluginLog?: Generation["pluginLog"];
  /** Where upstream policies log (ejections). */
  log?: Logger;
}

export function compileGeneration(config: WeirConfig, file: string, id: number, registry: TargetRegistry, extras: CompileExtras = {}): Generation {
  const problems = checkConfig(config, file);
  if (problems.length) throw new ConfigError(problems);

  const allTargets = new Set<Target>();
  const upstreams = new Map<string, Upstream>();
  const build = (name: string, u: UpstreamConfig): Upstream => {
    const timeouts = upstreamTimeouts(u.timeouts);
    const poolOptions = { connectTimeoutMs: timeouts.connectMs, idleTimeoutMs: timeouts.idleMs, maxConnections: u.maxConnections ?? null };
    const targets = u.targets.map((t) => {
      const spec = typeof t === "string" ? { url: t, weight: 1 } : { url: t.url, weight: t.weight ?? 1 };
      const origin = new URL(spec.url).origin;
      const known = registry.has(name, origin, poolOptions);
      const target = registry.acquire(name, origin, poolOptions);
      // A target seen for the first time starts healthy, unless the health check says it must
      // first pass `healthyAfter` checks (a target already known keeps its verdict across reloads).
      if (!known && u.healthCheck?.startHealthy === false) target.healthy = false;
      target.weight = spec.weight;
      allTargets.add(target);
      return target;
    });
    const balance: BalanceName = u.balance ?? "round-robin";
    const balancer = balancerFactory(balance)(targets, { hashOn: u.hashOn });
    return new Upstream(name, balance, targets, balancer, timeouts, compileUpstreamPolicies(u, targets, timeouts, extras.log));
  };
  for (const [name, u] of Object.entries(config.upstreams ?? {})) upstreams.set(name, build(name, u));

  const routes: CompiledRoute[] = (config.routes ?? []).map((r, index) => {
    let upstream = upstreams.get(r.upstream);
    if (!upstream) {
      // A route may name a single URL instead of an upstream: an upstream of one target.
      const origin = new URL(r.upstream).origin;
      upstream = upstreams.get(origin) ?? build(origin, { targets: [origin] });
      upstreams.set(origin, upstream);
    }
    const m = r.match ?? {};
    const slotAt = (at: string) => {
      const slot = extras.slots?.get(at);
      if (!slot) throw new Error(`internal: no plugin slot prepared for ${at}`);
      return slot;
    };
    const chain = new PluginChain([
      ...(config.plugins ?? []).map((_p, i) => slotAt(`plugins[${i}]`)),
      ...(r.plugins ?? []).map((_p, j) => slotAt(`routes[${index}].plugins[${j}]`)),
    ]);
    return {
      chain,
      index,
      name: r.name ?? `route-${index}`,
      match: {
        path: m.path ?? "/",
        hosts: m.host === undefined ? [] : Array.isArray(m.host) ? m.host : [m.host],
        methods: m.methods ?? [],
        headers: m.headers ?? {},
      },
      upstream,
      stripPrefix: r.stripPrefix ?? false,
      preserveHost: r.preserveHost ?? false,
      responseTimeoutMs: r.timeouts?.response !== undefined ? toMs(r.timeouts.response) : upstream.timeouts.responseMs,
    };
  });

  const l = config.limits ?? {};
  const requestTimeoutMs = l.requestTimeout !== undefined ? toMs(l.requestTimeout) : DEFAULTS.requestTimeoutMs;
  const limits: Limits = {
    maxHeaderBytes: l.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
    maxBodyBytes: l.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    requestTimeoutMs,
    headersTimeoutMs: Math.min(requestTimeoutMs, l.headersTimeout !== undefined ? toMs(l.headersTimeout) : DEFAULTS.headersTimeoutMs),
    keepAliveTimeoutMs: l.keepAliveTimeout !== undefined ? toMs(l.keepAliveTimeout) : DEFAULTS.keepAliveTimeoutMs,
  };

  return {
    id,
    file,
    config,
    createdAt: new Date(),
    router: new Router(routes),
    routes,
    upstreams,
    limits,
    trustedProxies: new TrustedProxies(config.trustedProxies ?? []),
    shutdownTimeoutMs: config.shutdownTimeout !== undefined ? toMs(config.shutdownTimeout) : DEFAULTS.shutdownTimeoutMs,
    targets: allTargets,
    inflight: 0,
    pluginLog: extras.pluginLog ?? (() => undefined),
  };
}

function upstreamTimeouts(t: TimeoutsConfig | undefined): UpstreamTimeouts {
  return {
    connectMs: t?.connect !== undefined ? toMs(t.connect) : DEFAULTS.connectTimeoutMs,
    responseMs: t?.response !== undefined ? toMs(t.response) : DEFAULTS.responseTimeoutMs,
    idleMs: t?.idle !== undefined ? toMs(t.idle) : DEFAULTS.idleTimeoutMs,
  };
}
