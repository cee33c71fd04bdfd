/**
 * An async plugin using the store: counts each client's requests in a window and tells the
 * upstream and the client the count. Needs `permissions: { store: true }` on its route entry.
 * With `store.redis` in the config the count is shared by every Weir instance.
 * Config: { windowMs: 60000 }.
 */
import { definePlugin } from "weir/sdk";

interface Config { windowMs: number }

export default definePlugin<Config>({
  name: "visit-counter",
  version: "1.0.0",
  permissions: { store: true },
  configSchema: {
    type: "object",
    properties: { windowMs: { type: "integer", minimum: 1, default: 60000 } },
    additionalProperties: false,
  },
  async onRequest(ctx) {
    const visits = await ctx.store.incr(`visits:${ctx.client.ip}`, 1, { ttlMs: ctx.config.windowMs });
    ctx.vars.visits = visits;
    ctx.request.headers.set("x-visits", String(visits));
  },
  onResponse(ctx) {
    ctx.response.headers.set("x-visits", String(ctx.vars.visits ?? 0));
  },
});
