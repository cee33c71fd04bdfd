/**
 * The host side of the capabilities a plugin may ask for (`ctx.store`, `ctx.fetch`, `ctx.jwt`,
 * `ctx.rateLimit`).
 * Each instance gets its own HostCall bound to its granted permissions and its store namespace;
 * the sandbox checks permissions too, but this is the check that counts.
 * Results cross back as JSON strings: `{ok: value}` or `{error: message}`.
 */
import { ErrorCodes } from "../errors.js";
import { createPublicKey, type KeyObject } from "node:crypto";
import { jwtVerify, type JWTVerifyOptions } from "jose";
import { request } from "undici";
import type { KeyValueStore } from "../store/key-value-store.js";
import { recordStoreError, storeDownDecision } from "../store/gcra.js";
import { jwksFor } from "./jwks-cache.js";
import type { HostCall } from "./plugin-instance.js";

export interface Granted { store?: boolean; fetch?: string[]; jwt?: boolean; wasm?: boolean }

const FETCH_MAX_BYTES = 1024 * 1024;
const FETCH_DEFAULT_TIMEOUT_MS = 2000;
const FETCH_MAX_TIMEOUT_MS = 10_000;
const ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];
const SYMMETRIC = ["HS256", "HS384", "HS512"];

export function createHostCall(pluginName: string, granted: Granted, store: () => KeyValueStore): HostCall {
  const ns = `weir:${pluginName}:`;
  const origins = new Set((granted.fetch ?? []).map((o) => new URL(o).origin));
  const asyncCall = async (name: string, argsJson: string): Promise<string> => {
    try {
      const args = JSON.parse(argsJson) as unknown[];
      let ok: unknown;
      switch (name) {
        case "store.get": need(granted.store, "store"); ok = await storeOp(() => store().get(ns + str(args[0]))); break;
        case "store.set": need(granted.store, "store"); await storeOp(() => store().set(ns + str(args[0]), str(args[1]), num(args[2]))); ok = null; break;
        case "store.incr": need(granted.store, "store"); ok = await storeOp(() => store().incr(ns + str(args[0]), num(args[1]), num(args[2]))); break;
        case "store.delete": need(granted.store, "store"); await storeOp(() => store().delete(ns + str(args[0]))); ok = null; break;
        case "fetch": ok = await hostFetch(origins, str(args[0]), (args[1] ?? {}) as FetchInit); break;
        case "jwt.verify": need(granted.jwt, "jwt"); ok = await verifyJwt(str(args[0]), (args[1] ?? {}) as JwtOptions); break;
        case "rateLimit.async": {
          need(granted.store, "rateLimit");
          const a = rateLimitArgs(args);
          try {
            ok = await store().rateLimit(ns + "rl:" + a.key, a.limit, a.windowMs);
          } catch (err) {
            // The Redis client is bounded (no offline queue, 100 ms command timeout): an outage
            // costs this request at most that, and the entry's onStoreError decides.
            const message = String((err as Error)?.message ?? err);
            recordStoreError(a.policy, message);
            ok = storeDownDecision(a.limit, a.windowMs, a.policy, message);
          }
          break;
        }
        default: throw new Error(`unknown capability ${name}`);
      }
      return JSON.stringify({ ok });
    } catch (err) {
      // A stable code crosses with the message (WEIR_ERR_* of ours, ERR_JWT_* of jose), so the
      // plugin can tell "the JWKS is down" (503) from "the token is bad" (401).
      const code = (err as { code?: unknown })?.code;
      return JSON.stringify(typeof code === "string" ? { error: String((err as Error)?.message ?? err), code } : { error: String((err as Error)?.message ?? err) });
    }
  };
  /**
   * `ctx.rateLimit` against the in-process store is answered at once (a few µs; the answer goes
   * back to the plugin in the next crossing); against Redis or the workers' shared store it is
   * the async count above.
   */
  const rateLimit = (argsJson: string): string | Promise<string> => {
    try {
      need(granted.store, "rateLimit");
      const s = store();
      if (s.kind !== "memory") return asyncCall("rateLimit.async", argsJson);
      const a = rateLimitArgs(JSON.parse(argsJson) as unknown[]);
      return JSON.stringify({ ok: s.rateLimit(ns + "rl:" + a.key, a.limit, a.windowMs) });
    } catch (err) {
      return JSON.stringify({ error: String((err as Error)?.message ?? err) });
    }
  };
  return (name: string, argsJson: string) => (name === "rateLimit" ? rateLimit(argsJson) : asyncCall(name, argsJson));
}

function rateLimitArgs(args: unknown[]): { key: string; limit: number; windowMs: number; policy: "open" | "closed" } {
  const limit = args[1], windowMs = args[2];
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1) throw new Error("ctx.rateLimit: limit must be an integer >= 1");
  if (typeof windowMs !== "number" || !Number.isFinite(windowMs) || windowMs <= 0) throw new Error("ctx.rateLimit: windowMs must be a number > 0");
  return { key: str(args[0]), limit, windowMs, policy: args[3] === "closed" ? "closed" : "open" };
}

/**
 * A store call whose failure reaches the plugin as WEIR_ERR_STORE_UNAVAILABLE with a message that
 * says what happened, not ioredis' own wording ("Stream isn't writeable and enableOfflineQueue
 * options is false").
 */
async function storeOp<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    const e = new Error(`ctx.store: the store is unavailable (${String((err as Error)?.message ?? err)}); the call failed fast, handle it or let the plugin fail`) as Error & { code: string };
    e.code = ErrorCodes.STORE_UNAVAILABLE;
    throw e;
  }
}

function need(flag: boolean | undefined, what: string): void {
  if (!flag) throw new Error(`ctx.${what} was not granted to this plugin`);
}
const str = (v: unknown): string => String(v ?? "");
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

interface FetchInit { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }

async function hostFetch(origins: Set<string>, url: string, init: FetchInit) {
  let u: URL;
  try { u = new URL(url); } catch { throw new Error(`ctx.fetch: "${url}" is not a URL`); }
  if (!origins.has(u.origin)) throw new Error(`ctx.fetch: ${u.origin} is not in this plugin's permissions.fetch`);
  const timeout = Math.min(Math.max(1, num(init.timeoutMs) || FETCH_DEFAULT_TIMEOUT_MS), FETCH_MAX_TIMEOUT_MS);
  const res = await request(u, {
    method: (init.method ?? "GET").toUpperCase() as "GET",
    headers: init.headers ?? {},
    body: init.body,
    headersTimeout: timeout,
    bodyTimeout: timeout,
    signal: AbortSignal.timeout(timeout),
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > FETCH_MAX_BYTES) { res.body.destroy(); throw new Error(`ctx.fetch: the response is larger than ${FETCH_MAX_BYTES} bytes`); }
    chunks.push(chunk as Buffer);
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  return { status: res.statusCode, headers, body: Buffer.concat(chunks).toString("utf8") };
}

interface JwtOptions {
  secret?: string; publicKey?: string; jwksUri?: string;
  issuer?: string | string[]; audience?: string | string[]; algorithms?: string[]; clockTolerance?: number;
}

const publicKeys = new Map<string, KeyObject>();

/**
 * jose does the cryptography; we add the policy: `exp` is required (jose accepts a token without
 * one otherwise), `none` is never accepted, and the algorithm list follows the key type so an HS
 * token can never be checked against a public key.
 */
export async function verifyJwt(token: string, o: JwtOptions): Promise<Record<string, unknown>> {
  const given = [o.secret, o.publicKey, o.jwksUri].filter((v) => v !== undefined).length;
  if (given !== 1) throw new Error("jwt.verify needs exactly one of secret, publicKey or jwksUri");
  const allowed = o.secret !== undefined ? SYMMETRIC : ASYMMETRIC;
  const algorithms = (o.algorithms ?? allowed).filter((a) => allowed.includes(a));
  if (algorithms.length === 0) throw new Error(`none of the algorithms fits this key type (allowed: ${allowed.join(", ")})`);
  const options: JWTVerifyOptions = { algorithms, requiredClaims: ["exp"], clockTolerance: o.clockTolerance ?? 0 };
  if (o.issuer !== undefined) options.issuer = o.issuer;
  if (o.audience !== undefined) options.audience = o.audience;
  let result;
  if (o.secret !== undefined) result = await jwtVerify(token, new TextEncoder().encode(o.secret), options);
  else if (o.publicKey !== undefined) {
    let key = publicKeys.get(o.publicKey);
    if (!key) publicKeys.set(o.publicKey, (key = createPublicKey(o.publicKey)));
    result = await jwtVerify(token, key, options);
  } else {
    // Our cache, not jose's createRemoteJWKSet: stale keys are kept while the JWKS is unreachable
    // and a cold-start failure is coded WEIR_ERR_JWKS_UNAVAILABLE (jwks-cache.ts).
    result = await jwtVerify(token, jwksFor(o.jwksUri!).resolve, options);
  }
  return result.payload as Record<string, unknown>;
}
