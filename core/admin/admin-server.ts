/**
 * The admin API (docs/operations.md), on its own listener, 127.0.0.1 by default. With `admin.token` set,
 * every call needs `Authorization: Bearer TOKEN` (compared in constant time).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { once } from "node:events";
import type { AdminConfig } from "../config/schema.js";
import { ConfigError, ErrorCodes, WeirError } from "../errors.js";
import { newRequestId } from "../lifecycle/request-id.js";
import type { Logger } from "../log/logger.js";
import type { WeirRuntime } from "../server/runtime.js";
import { VERSION } from "../server/runtime.js";
import { analyticsHandler } from "./analytics-endpoint.js";

type Handler = (rt: WeirRuntime) => Promise<[number, unknown]> | [number, unknown];

/** A body sent as it is (e.g. Prometheus text), not as JSON. */
export class TextBody {
  constructor(readonly text: string, readonly contentType: string) {}
}

/**
 * Answers one admin call: [status, body], or null when there is no such endpoint. The admin
 * server of a single process answers from its runtime (`runtimeAdmin`); the primary of a cluster
 * answers from its workers (core/cluster/primary.ts).
 */
export type AdminDispatch = (method: string, path: string) => Promise<[number, unknown] | null> | [number, unknown] | null;

/** The admin API of one runtime. */
export function runtimeAdmin(rt: WeirRuntime): AdminDispatch {
  return (method, path) => routes[`${method} ${path}`]?.(rt) ?? null;
}

const routes: Record<string, Handler> = {
  "GET /health": () => [200, { status: "ok" }],
  "GET /status": (rt) => [200, {
    version: VERSION,
    generation: rt.generation.id,
    startedAt: rt.startedAt.toISOString(),
    configFile: rt.configFile,
    listen: rt.addresses().listen,
    // How many requests the listeners served on their fast path, and how many
    // connections they gave to node:http (docs/operations.md, "The lean listener").
    leanListener: rt.leanListenerStats(),
  }],
  "GET /routes": (rt) => [200, rt.generation.routes.map((r) => ({
    name: r.name, match: r.match, upstream: r.upstream.name, stripPrefix: r.stripPrefix, preserveHost: r.preserveHost,
  }))],
  "GET /upstreams": (rt) => {
    const out: Record<string, unknown> = {};
    for (const [name, u] of rt.generation.upstreams) {
      out[name] = {
        balance: u.balance,
        targets: u.targets.map((t) => ({ url: t.url, healthy: t.healthy, ejected: t.ejected, inflight: t.inflight, weight: t.weight })),
      };
    }
    return [200, out];
  },
  "GET /metrics": async (rt) => [200, new TextBody(await rt.metrics.text(), rt.metrics.registry.contentType)],
  // The analytics built-in's totals: cluster-wide with store.redis (analytics-endpoint.ts).
  "GET /analytics": analyticsHandler,
  "GET /plugins": (rt) => [200, rt.plugins.all().map((slot) => {
    const i = slot.current;
    return {
      name: i.name,
      version: i.manifest.version,
      source: slot.entry.file,
      use: slot.entry.use,
      at: slot.entry.at,
      hooks: i.manifest.hooks,
      state: slot.reloadError ? "reload-failed" : i.state,
      errors: [...(slot.reloadError ? [{ at: null, hook: "reload", message: slot.reloadError }] : []), ...i.errors],
      calls: i.calls,
      failures: i.failures,
      skipped: i.skipped,
      ...(i.quarantined !== null ? { quarantined: i.quarantined } : {}),
      logDropped: i.logDropped,
      memory: { heapUsedBytes: i.heapUsed(), limitMb: i.limits.memoryMb },
      limits: i.limits,
    };
  })],
  "POST /reload": async (rt) => {
    try {
      const gen = await rt.reload();
      return [200, { generation: gen.id }];
    } catch (err) {
      if (err instanceof ConfigError) return [400, { errors: err.problems.map((p) => `${p.file}: ${p.path || "(root)"}: ${p.message}`) }];
      throw err;
    }
  },
};

export class AdminServer {
  readonly server: Server;
  private tokenDigest: Buffer | null = null;

  constructor(private readonly dispatch: AdminDispatch, private readonly config: AdminConfig, private readonly log: Logger) {
    this.setToken(config.token);
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  setToken(token: string | undefined): void {
    this.tokenDigest = token ? createHash("sha256").update(token).digest() : null;
  }

  async listen(): Promise<void> {
    const port = this.config.port ?? 9901;
    const host = this.config.host ?? "127.0.0.1";
    this.server.listen(port, host);
    try {
      await Promise.race([once(this.server, "listening"), once(this.server, "error").then(([e]) => { throw e; })]);
    } catch (err) {
      throw new WeirError(ErrorCodes.LISTEN_FAILED, `cannot listen for the admin API on ${host}:${port}: ${(err as Error).message}`, 500, { cause: err });
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => { this.server.close(() => r()); this.server.closeAllConnections(); });
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.tokenDigest) return true;
    const auth = req.headers.authorization ?? "";
    const given = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    // Hash both sides so the comparison takes the same time whatever the lengths.
    return timingSafeEqual(createHash("sha256").update(given).digest(), this.tokenDigest);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newRequestId();
    const send = (status: number, body: unknown) => {
      const text = body instanceof TextBody ? body.text : JSON.stringify(body);
      const type = body instanceof TextBody ? body.contentType : "application/json; charset=utf-8";
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text), "x-request-id": requestId });
      res.end(text);
    };
    try {
      if (!this.authorized(req)) return send(401, { error: "missing or wrong admin token (Authorization: Bearer TOKEN)", code: ErrorCodes.UNAUTHORIZED, requestId });
      const path = (req.url ?? "/").split("?")[0];
      const answer = await this.dispatch(req.method ?? "GET", path ?? "/");
      if (!answer) return send(404, { error: `no admin endpoint ${req.method} ${path}`, code: ErrorCodes.NOT_FOUND, requestId });
      send(answer[0], answer[1]);
    } catch (err) {
      this.log.error({ err }, "admin request failed");
      send(500, { error: (err as Error).message, code: (err as WeirError).code ?? "WEIR_ERR_INTERNAL", requestId });
    }
  }
}
