/**
 * Requests by route and status, and their duration, counted on the request path. One series
 * object per route name, found with one Map lookup; statuses are a small Map of plain numbers.
 * Nothing is allocated per request once a (route, status) pair has been seen.
 */
import { LatencyHistogram } from "./latency-histogram.js";

/** The route label of requests refused before routing (400, 404, 405...). */
export const NO_ROUTE = "";

export class RouteSeries {
  readonly statuses = new Map<number, number>();
  readonly duration = new LatencyHistogram();
  constructor(readonly route: string) {}
}

export class RequestMetrics {
  readonly routes = new Map<string, RouteSeries>();

  series(route: string): RouteSeries {
    let s = this.routes.get(route);
    if (s === undefined) {
      s = new RouteSeries(route);
      this.routes.set(route, s);
    }
    return s;
  }

  /** A request refused before routing: counted, not timed (it never reached a route). */
  count(route: string, status: number): void {
    const s = this.series(route);
    s.statuses.set(status, (s.statuses.get(status) ?? 0) + 1);
  }

  record(route: string, status: number, seconds: number): void {
    const s = this.series(route);
    s.statuses.set(status, (s.statuses.get(status) ?? 0) + 1);
    s.duration.observe(seconds);
  }
}
