/**
 * A generation: one config, compiled once into everything the request path reads (router, routes,
 * upstreams, limits). Immutable once built; a request holds the generation it started on for its
 * whole life, and a reload swaps the runtime's pointer to a new one.
 */
import type { Router } from "../router/router.js";
import type { TrustedProxies } from "../net/client-address.js";
import type { Target } from "../upstream/target.js";
import type { Upstream } from "../upstream/upstream.js";
import type { WeirConfig } from "./schema.js";
import type { PluginChain } from "../plugin-host/plugin-chain.js";

export interface CompiledRoute {
  readonly index: number;
  readonly name: string;
  readonly match: { path: string; hosts: string[]; methods: string[]; headers: Record<string, string> };
  readonly upstream: Upstream;
  readonly stripPrefix: boolean;
  readonly preserveHost: boolean;
  /** Time to wait for the upstream's response headers, and between body chunks. */
  readonly responseTimeoutMs: number;
  /** Global plugins then the route's own, built once per generation. */
  readonly chain: PluginChain;
}

export interface Limits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export interface Generation {
  readonly id: number;
  readonly file: string;
  readonly config: WeirConfig;
  readonly createdAt: Date;
  readonly router: Router<CompiledRoute>;
  readonly routes: readonly CompiledRoute[];
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly limits: Limits;
  readonly trustedProxies: TrustedProxies;
  readonly shutdownTimeoutMs: number;
  /** Every target this generation may send to (to know which pools a retired generation holds). */
  readonly targets: ReadonlySet<Target>;
  /** Requests that started on this generation and have not finished. */
  inflight: number;
  /** Where lines a plugin wrote with ctx.log go. */
  pluginLog(plugin: string, requestId: string, lines: unknown): void;
}
