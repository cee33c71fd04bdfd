/**
 * Value templates of the transform plugin: text with `${consumer}`, `${route}`, `${requestId}`,
 * `${clientIp}` and `${params.NAME}`. A template is compiled once into a list of parts; expanding
 * it is a loop over that list, with no parsing per request.
 *
 * In a config file, `${NAME}` is environment expansion (docs/configuration.md) and runs first: a plain
 * `${consumer}` there would be read as the environment variable `consumer`. The `ctx.` spellings
 * (`${ctx.consumer}`, `${ctx.route}`, `${ctx.requestId}`, `${ctx.clientIp}`) and `${params.NAME}`
 * contain a dot, which no environment variable name has, so they reach the plugin untouched.
 */
import type { Context } from "weir/sdk";

/** What the schema accepts: every `${...}` must name a known variable. */
export const TEMPLATE_PATTERN = "^(?:[^$]|\\$(?!\\{)|\\$\\{(?:(?:ctx\\.)?(?:consumer|route|requestId|clientIp)|params\\.[A-Za-z0-9_]+)\\})*$";

type Part = string | ((ctx: Context<unknown>) => string);

export type Template = (ctx: Context<unknown>) => string;

const VARIABLE = /\$\{([^}]+)\}/g;

export function compileTemplate(text: string): Template {
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(VARIABLE)) {
    if (m.index! > last) parts.push(text.slice(last, m.index));
    parts.push(variable(m[1]!));
    last = m.index! + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  if (parts.length === 0) return () => "";
  if (parts.length === 1 && typeof parts[0] === "string") { const s = parts[0]; return () => s; }
  return (ctx) => {
    let out = "";
    for (const p of parts) out += typeof p === "string" ? p : p(ctx);
    return out;
  };
}

function variable(name: string): (ctx: Context<unknown>) => string {
  switch (name.startsWith("ctx.") ? name.slice(4) : name) {
    case "consumer": return (ctx) => ctx.consumer ?? "";
    case "route": return (ctx) => ctx.route.name;
    case "requestId": return (ctx) => ctx.requestId;
    case "clientIp": return (ctx) => ctx.client.ip;
  }
  if (name.startsWith("params.")) {
    const p = name.slice(7);
    return (ctx) => ctx.route.params[p] ?? "";
  }
  // The schema refuses unknown variables; this is only reached by a config that bypassed it.
  throw new Error(`unknown template variable \${${name}}`);
}
