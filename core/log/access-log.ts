/**
 * The access log: one JSON line per request, to stdout by default (the operational log goes to
 * stderr, see logger.ts), written by pino through an asynchronous destination so that the request
 * path only formats a line. `log.access: false` turns it off.
 *
 * A line: {"log":"access", "time", "requestId", "traceId", "method", "path", "status", "route", "upstream",
 * "target", "bytesSent", "durationMs", "upstreamMs", "pluginsMs", "clientIp", "consumer"} plus
 * "error" and "failedPlugins" when something failed. Requests refused before routing (400, 404,
 * 405...) have no route, upstream or traceId.
 */
import type { InboundRequest } from "../lifecycle/client-messages.js";
import { pino, type DestinationStream, type Logger } from "pino";
import type { ProxyRequest } from "../lifecycle/prepare-request.js";
import { unmapIPv4 } from "../net/client-address.js";
import { LOG_TIME } from "./logger.js";

export function createAccessLogger(destination: DestinationStream = pino.destination({ fd: 1, sync: false })): Logger {
  const worker = process.env.WEIR_WORKER_INDEX;
  return pino({
    // With `workers: N`, which worker served the request (lines of every worker share stdout).
    base: worker === undefined ? undefined : { worker: Number(worker) },
    timestamp: LOG_TIME, // the operational log's format (logger.ts)
    // Every line is an access record: "log":"access" instead of a level, so that a collector
    // reading stdout and stderr together can tell access lines from the operational log.
    formatters: { level: () => ({ log: "access" }) },
  }, destination);
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

export class AccessLog {
  constructor(readonly logger: Logger) {}

  /** A request that reached a route (proxied, answered by a plugin, or failed upstream). */
  routed(pr: ProxyRequest, status: number, error: unknown, now: number): void {
    const socket = pr.req.socket;
    this.logger.info({
      requestId: pr.requestId,
      traceId: pr.traceId,
      method: pr.method,
      path: pr.path + pr.query,
      status,
      route: pr.route.name,
      upstream: pr.route.upstream.name,
      target: pr.target?.url ?? null,
      bytesSent: socket ? socket.bytesWritten - pr.bytesBefore : 0,
      durationMs: round(now - pr.startedAt),
      upstreamMs: pr.upstreamStartedAt > 0 ? round(now - pr.upstreamStartedAt) : 0,
      pluginsMs: round(pr.pluginMs),
      clientIp: pr.clientIp,
      consumer: pr.consumer,
      error: error == null ? undefined : String((error as Error).message ?? error),
      failedPlugins: pr.failedPlugins ?? undefined,
    });
  }

  /** A request refused before routing (malformed, no route, method not allowed). */
  refused(req: InboundRequest, requestId: string, status: number, message: string): void {
    this.logger.info({
      requestId,
      method: req.method,
      path: req.url,
      status,
      route: null,
      clientIp: unmapIPv4(req.socket.remoteAddress ?? ""),
      error: message,
    });
  }

  /** A request node:http could not parse, or that was too slow or too large to read (400/408/431). */
  unparsed(peer: string, requestId: string, status: number, message: string): void {
    this.logger.info({ requestId, method: null, path: null, status, route: null, clientIp: peer, error: message });
  }

  flush(): void {
    try { this.logger.flush(); } catch { /* the destination may not be ready yet */ }
  }
}
