/**
 * transform: changes the request before the upstream (set/remove headers, rewrite the path) and
 * the response before the client (set/remove headers). Values are templates (template.ts) with
 * `${consumer}`, `${route}`, `${requestId}`, `${clientIp}` and `${params.NAME}`, compiled once per
 * route entry. Only the hooks a config needs do anything: a config without `response` costs no
 * response-phase work beyond the call itself.
 */
import { definePlugin, type Context, type Headers } from "weir/sdk";
import { compileTemplate, TEMPLATE_PATTERN, type Template } from "./template.js";

interface Side { setHeaders?: Record<string, string>; removeHeaders?: string[] }
interface Config { request?: Side & { rewritePath?: string }; response?: Side }

interface CompiledSide { set: [string, Template][]; remove: string[]; rewritePath: Template | null; empty: boolean }

const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const headerMap = { type: "object", propertyNames: { pattern: TOKEN }, additionalProperties: { type: "string", pattern: TEMPLATE_PATTERN } };
const headerList = { type: "array", items: { type: "string", pattern: TOKEN } };

function compileSide(side: (Side & { rewritePath?: string }) | undefined): CompiledSide {
  const set = Object.entries(side?.setHeaders ?? {}).map(([n, v]) => [n, compileTemplate(v)] as [string, Template]);
  const remove = side?.removeHeaders ?? [];
  const rewritePath = side?.rewritePath !== undefined ? compileTemplate(side.rewritePath) : null;
  return { set, remove, rewritePath, empty: set.length === 0 && remove.length === 0 && rewritePath === null };
}

/** Removes, then sets (templates filled in for this request; an empty value sets nothing). */
function applySide(side: CompiledSide, h: Headers, ctx: Context<Config>): void {
  for (const name of side.remove) h.delete(name);
  for (const [name, t] of side.set) {
    const v = t(ctx as Context<unknown>);
    if (v !== "") h.set(name, v);
  }
}

// Compiled on the first request of this isolate (one isolate per route entry, config fixed).
let req: CompiledSide | null = null;
let res: CompiledSide | null = null;
function compiled(ctx: Context<Config>): void {
  if (req === null) { req = compileSide(ctx.config.request); res = compileSide(ctx.config.response); }
}

export default definePlugin<Config>({
  name: "transform",
  version: "1.0.0",
  configSchema: {
    type: "object",
    properties: {
      request: {
        type: "object",
        properties: {
          setHeaders: headerMap,
          removeHeaders: headerList,
          rewritePath: { type: "string", pattern: TEMPLATE_PATTERN.replace("^", "^/"), description: "must start with /" },
        },
        additionalProperties: false,
      },
      response: {
        type: "object",
        properties: { setHeaders: headerMap, removeHeaders: headerList },
        additionalProperties: false,
      },
    },
    additionalProperties: false,
  },
  onRequest(ctx) {
    compiled(ctx);
    const c = req!;
    if (!c.empty) {
      applySide(c, ctx.request.headers, ctx);
      if (c.rewritePath !== null) ctx.request.path = c.rewritePath(ctx as Context<unknown>);
    }
    // The response side is queued here too: ctx.response.headers in onRequest is applied to the
    // response when it comes, so the plugin needs no onResponse hook (one crossing fewer).
    if (!res!.empty) applySide(res!, ctx.response.headers, ctx);
  },
});
