/**
 * The smallest useful plugin: stamps a header on the request the upstream receives and on the
 * response the client receives. Config: { name: "x-served-by", value: "weir" }.
 */
import { definePlugin } from "weir/sdk";

interface Config { name: string; value: string }

export default definePlugin<Config>({
  name: "add-header",
  version: "1.0.0",
  configSchema: {
    type: "object",
    properties: { name: { type: "string", pattern: "^[A-Za-z0-9-]+$" }, value: { type: "string" } },
    required: ["name", "value"],
    additionalProperties: false,
  },
  onRequest(ctx) {
    ctx.request.headers.set(ctx.config.name, ctx.config.value);
  },
  onResponse(ctx) {
    ctx.response.headers.set(ctx.config.name, ctx.config.value);
  },
});
