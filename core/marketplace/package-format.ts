/**
 * The `.weirpkg` plugin package: one JSON file holding a manifest, the compiled bundle and, once
 * signed, a compact Ed25519 JWS whose (attached) payload is the canonical manifest. The manifest
 * pins the bundle by its SHA-256, so signing the manifest signs the code.
 * docs/plugin-packages.md is the spec.
 *
 * {
 *   "format": "weirpkg/1",
 *   "manifest": { name, version, publisher, description, permissions, hooks, configSchema,
 *                 sdk, bundleSha256, createdAt },
 *   "bundle": "<JavaScript>",
 *   "signature": "<compact JWS whose payload is the canonical manifest>" | null
 * }
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

export const PACKAGE_FORMAT = "weirpkg/1";
export const DEFAULT_MAX_PACKAGE_BYTES = 5 * 1024 * 1024;

export interface PackageManifest {
  name: string;
  version: string;
  publisher: string;
  description: string;
  permissions: { store?: boolean; fetch?: string[]; jwt?: boolean };
  hooks: string[];
  configSchema: Record<string, unknown> | null;
  /** The range of SDK versions the plugin supports, e.g. "^1.0.0". */
  sdk: string;
  /** Hex SHA-256 of `bundle`. */
  bundleSha256: string;
  createdAt: string;
}

export interface PluginPackage {
  format: typeof PACKAGE_FORMAT;
  manifest: PackageManifest;
  bundle: string;
  signature: string | null;
}

/** Why a package is refused; `reason` is a stable word for scripts, `message` says what to do. */
export class PackageError extends Error {
  constructor(readonly reason: "malformed" | "too-large" | "digest-mismatch" | "unsigned" | "bad-signature" | "unknown-publisher" | "sdk-mismatch" | "version-mismatch" | "manifest-mismatch", message: string) {
    super(message);
  }
}

export function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** The bytes that are signed: the manifest with sorted keys, no whitespace. */
export function canonicalManifest(m: PackageManifest): string {
  return canonical(m);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Reads and structurally checks a package file (size, JSON, fields, bundle digest). */
export function readPackage(file: string, maxBytes = DEFAULT_MAX_PACKAGE_BYTES): PluginPackage {
  let size: number;
  try { size = statSync(file).size; } catch (err) { throw new PackageError("malformed", `cannot read the package ${file}: ${(err as Error).message}`); }
  if (size > maxBytes) throw new PackageError("too-large", `the package is ${size} bytes, over the limit of ${maxBytes} (maxPackageBytes)`);
  return parsePackage(readFileSync(file, "utf8"));
}

export function parsePackage(text: string): PluginPackage {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch { throw new PackageError("malformed", "the file is not a Weir plugin package (not JSON; truncated or corrupted?)"); }
  const p = raw as Partial<PluginPackage>;
  if (!p || typeof p !== "object" || p.format !== PACKAGE_FORMAT) throw new PackageError("malformed", `the file is not a Weir plugin package (format must be "${PACKAGE_FORMAT}")`);
  const m = p.manifest as Partial<PackageManifest> | undefined;
  const fields: [keyof PackageManifest, string][] = [["name", "string"], ["version", "string"], ["publisher", "string"], ["sdk", "string"], ["bundleSha256", "string"], ["hooks", "object"], ["permissions", "object"]];
  if (!m || typeof m !== "object") throw new PackageError("malformed", "the package has no manifest");
  for (const [k, t] of fields) if (typeof m[k] !== t || m[k] === null) throw new PackageError("malformed", `the manifest's ${k} is missing or not a ${t}`);
  if (typeof p.bundle !== "string") throw new PackageError("malformed", "the package has no bundle");
  if (p.signature !== null && p.signature !== undefined && typeof p.signature !== "string") throw new PackageError("malformed", "the signature must be a string");
  if (sha256(p.bundle) !== m.bundleSha256) throw new PackageError("digest-mismatch", "the bundle does not match the manifest's bundleSha256 (the package was altered)");
  return { format: PACKAGE_FORMAT, manifest: m as PackageManifest, bundle: p.bundle, signature: p.signature ?? null };
}

export function serializePackage(p: PluginPackage): string {
  return JSON.stringify(p, null, 1) + "\n";
}
