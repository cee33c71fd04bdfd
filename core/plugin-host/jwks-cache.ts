/**
 * A JWKS (RFC 7517) fetched from `jwksUri` and kept for jwt.verify. jose's createRemoteJWKSet
 * drops its keys when a refresh fails after cacheMaxAge; a gateway must keep verifying with the
 * keys it has while the identity provider is unreachable, so the cache is ours:
 *
 * - cold start: the first verify fetches; if that fails the error is coded
 *   WEIR_ERR_JWKS_UNAVAILABLE (the jwt-auth plugin answers 503, not 401), and further attempts are
 *   spaced by FAILED_RETRY_MS so a down JWKS does not make every request wait for a timeout;
 * - unknown `kid`: one refetch, at most once per cooldown counted from the last such refetch (a
 *   rotated-in key is picked up at once; tokens with random kids cannot make Weir hammer the JWKS
 *   server);
 * - older than maxAge: refreshed; on failure the stale keys stay in use (and the failure is kept
 *   for the next refresh attempt after the cooldown).
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput, type CryptoKey, type KeyObject } from "jose";
import { request } from "undici";

export const JWKS_UNAVAILABLE = "WEIR_ERR_JWKS_UNAVAILABLE";

const COOLDOWN_MS = 30_000;
const MAX_AGE_MS = 600_000;
const TIMEOUT_MS = 2000;
const FAILED_RETRY_MS = 1000;
const MAX_BYTES = 512 * 1024;

type Resolver = (header: JWTHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey | KeyObject | Uint8Array>;

export class JwksUnavailableError extends Error {
  readonly code = JWKS_UNAVAILABLE;
}

export class JwksCache {
  private local: ReturnType<typeof createLocalJWKSet> | null = null;
  private fetchedAt = 0;
  private lastAttempt = 0;
  private lastKidRefetch = 0;
  private lastError = "";
  private inflight: Promise<void> | null = null;

  constructor(readonly uri: string, private readonly o = { cooldownMs: COOLDOWN_MS, maxAgeMs: MAX_AGE_MS, timeoutMs: TIMEOUT_MS, failedRetryMs: FAILED_RETRY_MS }) {}

  /** The key resolver handed to jose's jwtVerify. */
  readonly resolve: Resolver = async (header, token) => {
    const now = Date.now();
    if (this.local === null) {
      if (now - this.lastAttempt < this.o.failedRetryMs && this.lastError) throw new JwksUnavailableError(`the JWKS at ${this.uri} is unavailable: ${this.lastError}`);
      await this.refresh(true);
    } else if (now - this.fetchedAt > this.o.maxAgeMs && now - this.lastAttempt > this.o.cooldownMs) {
      await this.refresh(false); // stale keys stay when this fails
    }
    try {
      return await this.local!(header, token);
    } catch (err) {
      if ((err as { code?: string }).code !== "ERR_JWKS_NO_MATCHING_KEY" || Date.now() - this.lastKidRefetch < this.o.cooldownMs) throw err;
      this.lastKidRefetch = Date.now();
      await this.refresh(false);
      return this.local!(header, token);
    }
  };

  /** Fetches the set (one fetch at a time). With `required`, a failure throws JwksUnavailableError. */
  private async refresh(required: boolean): Promise<void> {
    this.inflight ??= this.fetch().finally(() => { this.inflight = null; });
    try {
      await this.inflight;
    } catch (err) {
      if (required || this.local === null) throw new JwksUnavailableError(`the JWKS at ${this.uri} is unavailable: ${(err as Error).message}`);
    }
  }

  private async fetch(): Promise<void> {
    this.lastAttempt = Date.now();
    try {
      const res = await request(this.uri, { method: "GET", headers: { accept: "application/json" }, headersTimeout: this.o.timeoutMs, bodyTimeout: this.o.timeoutMs, signal: AbortSignal.timeout(this.o.timeoutMs) });
      if (res.statusCode !== 200) { await res.body.dump(); throw new Error(`HTTP ${res.statusCode}`); }
      const text = await res.body.text();
      if (text.length > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
      const jwks = JSON.parse(text) as JSONWebKeySet;
      if (!jwks || !Array.isArray(jwks.keys)) throw new Error("not a JWK set (no keys array)");
      this.local = createLocalJWKSet(jwks);
      this.fetchedAt = Date.now();
      this.lastError = "";
    } catch (err) {
      this.lastError = (err as Error).name === "TimeoutError" ? `no answer within ${this.o.timeoutMs} ms` : (err as Error).message;
      throw new Error(this.lastError);
    }
  }
}

const caches = new Map<string, JwksCache>();

/** One cache per URI, shared by every plugin instance of the process. */
export function jwksFor(uri: string): JwksCache {
  let c = caches.get(uri);
  if (!c) caches.set(uri, (c = new JwksCache(uri)));
  return c;
}
