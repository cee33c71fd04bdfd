/**
 * A running Weir: listeners, the current generation, retired generations still draining, the
 * target registry that outlives them, and the admin server. `reload` compiles a new generation and
 * swaps the pointer; a failed reload changes nothing.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import { resolve } from "node:path";
import { compileGeneration } from "../config/compile.js";
import type { Generation } from "../config/generation.js";
import { loadConfigFile } from "../config/loader.js";
import type { ListenConfig, WeirConfig } from "../config/schema.js";
import { ErrorCodes, WeirError } from "../errors.js";
import type { LifecycleHost } from "../lifecycle/handle-request.js";
import type { ProxyRequest } from "../lifecycle/prepare-request.js";
import { createLogger, type Logger } from "../log/logger.js";
import { TargetRegistry } from "../upstream/target-registry.js";
import { AdminServer } from "../admin/admin-server.js";
import { applyLimits, createListener } from "./listener.js";

export interface StartOptions {
  /** Path of the config file (YAML or JSON). */
  configFile: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export const VERSION = "0.1.0";

export class WeirRuntime implements LifecycleHost {
  generation!: Generation;
  draining = false;
  readonly startedAt = new Date();
  readonly registry = new TargetRegistry();
  readonly log: Logger;
  readonly configFile: string;
  private readonly env: NodeJS.ProcessEnv;
  private nextGenerationId = 1;
  private readonly retired = new Set<Generation>();
  private readonly listeners: { server: Server; spec: ListenConfig }[] = [];
  private admin: AdminServer | null = null;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];

  private constructor(options: StartOptions) {
    this.configFile = resolve(options.configFile);
    this.env = options.env ?? process.env;
    this.log = options.logger ?? createLogger();
  }

  /** Loads the config, starts every listener and the admin server. Throws ConfigError or WeirError. */
  static async start(options: StartOptions): Promise<WeirRuntime> {
    const rt = new WeirRuntime(options);
    const config = loadConfigFile(rt.configFile, rt.env);
    rt.generation = compileGeneration(config, rt.configFile, rt.nextGenerationId++, rt.registry);
    try {
      for (const spec of listenSpecs(config)) {
        const server = createListener(spec, rt.generation.limits, rt);
        await listen(server, spec.port, spec.host ?? "0.0.0.0");
        rt.listeners.push({ server, spec });
      }
      if (config.admin !== false) {
        rt.admin = new AdminServer(rt, config.admin ?? {});
        await rt.admin.listen();
      }
    } catch (err) {
      await rt.stop(0);
      throw err;
    }
    return rt;
  }

  /** Re-reads the config file; on success the new generation serves every new request. */
  async reload(): Promise<Generation> {
    const config = loadConfigFile(this.configFile, this.env);
    const next = compileGeneration(config, this.configFile, this.nextGenerationId++, this.registry);
    const previous = this.generation;
    this.generation = next;
    for (const { server } of this.listeners) applyLimits(server, next.limits);
    this.admin?.setToken(config.admin === false ? undefined : config.admin?.token);
    this.retired.add(previous);
    this.releaseDrained();
    this.log.info({ generation: next.id, routes: next.routes.length }, "config reloaded");
    return next;
  }

  requestStarted(gen: Generation): void {
    gen.inflight++;
    this.inflight++;
  }

  requestFinished(gen: Generation, _pr: ProxyRequest | null, _status: number, _error: unknown): void {
    gen.inflight--;
    this.inflight--;
    if (gen !== this.generation && gen.inflight === 0) this.releaseDrained();
    if (this.inflight === 0 && this.idleWaiters.length) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Closes pools that only drained generations used. */
  private releaseDrained(): void {
    let released = false;
    for (const g of this.retired) if (g.inflight === 0) { this.retired.delete(g); released = true; }
    if (!released) return;
    const inUse = new Set(this.generation.targets);
    for (const g of this.retired) for (const t of g.targets) inUse.add(t);
    void this.registry.release(inUse);
  }

  /** Where the listeners and the admin server are, as URLs. */
  addresses(): { listen: string[]; admin: string | null } {
    return {
      listen: this.listeners.map(({ server, spec }) => urlOf(server, spec.tls ? "https" : "http")),
      admin: this.admin ? urlOf(this.admin.server, "http") : null,
    };
  }

  /**
   * Graceful stop: stop accepting, let in-flight requests finish for up to `graceMs` (default the
   * config's shutdownTimeout), then close whatever is left.
   */
  async stop(graceMs = this.generation?.shutdownTimeoutMs ?? 0): Promise<void> {
    this.draining = true;
    const closed = this.listeners.map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    for (const { server } of this.listeners) server.closeIdleConnections();
    if (this.inflight > 0 && graceMs > 0) {
      await new Promise<void>((r) => {
        const timer = setTimeout(r, graceMs);
        this.idleWaiters.push(() => { clearTimeout(timer); r(); });
      });
    }
    for (const { server } of this.listeners) server.closeAllConnections();
    await Promise.all(closed);
    await this.admin?.close();
    await this.registry.closeAll();
  }
}

function listenSpecs(config: WeirConfig): ListenConfig[] {
  if (config.listen === undefined) return [{ port: 8080, host: "0.0.0.0" }];
  return Array.isArray(config.listen) ? config.listen : [config.listen];
}

async function listen(server: Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  try {
    await Promise.race([once(server, "listening"), once(server, "error").then(([e]) => { throw e; })]);
  } catch (err) {
    throw new WeirError(ErrorCodes.LISTEN_FAILED, `cannot listen on ${host}:${port}: ${(err as Error).message}`, 500, { cause: err });
  }
}

function urlOf(server: Server, scheme: string): string {
  const a = server.address() as AddressInfo;
  const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
  return `${scheme}://${host}:${a.port}`;
}
