/**
 * A custom auth policy: the request must carry `Authorization: Bearer <token>` with one of the
 * configured tokens; the token's owner becomes ctx.consumer (later plugins and the access log see
 * it) and the token itself never reaches the upstream. Config: { tokens: { "<token>": "<consumer>" } }.
 */
import { definePlugin } from "weir/sdk";

interface Config { tokens: Record<string, string> }

export default definePlugin<Config>({
  name: "bearer-auth",
  version: "1.0.0",
  configSchema: {
    type: "object",
    properties: { tokens: { type: "object", additionalProperties: { type: "string" }, minProperties: 1 } },
    required: ["tokens"],
    additionalProperties: false,
  },
  onRequest(ctx) {
    const auth = ctx.request.headers.get("authorization") ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7).trim() : "";
    const consumer = token ? ctx.config.tokens[token] : undefined;
    if (!consumer) {
      return ctx.respond(401, { error: token ? "invalid token" : "missing bearer token" }, { "www-authenticate": 'Bearer realm="weir"' });
    }
    ctx.consumer = consumer;
    ctx.request.headers.delete("authorization");
    ctx.request.headers.set("x-consumer", consumer);
  },
});
