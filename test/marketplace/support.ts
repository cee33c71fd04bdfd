/**
 * Helpers for the marketplace suites: the `weir` CLI called in-process through `main()` (same
 * code, same exit codes and output, without a process per call), publishers with real Ed25519
 * keys on disk, and packages packed from the fixtures in test/fixtures/marketplace/.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { stringify } from "yaml";
import { main } from "../../core/cli/main.js";
import { packPlugin } from "../../core/marketplace/pack.js";
import { serializePackage, type PackageManifest, type PluginPackage } from "../../core/marketplace/package-format.js";
import { generatePublisherKeys, signPackage } from "../../core/marketplace/signing.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { WeirRuntime } from "../../core/server/runtime.js";
import { fixturePath } from "../support/fixtures.js";
import { tempDir } from "../support/weir.js";

export interface CliRun { code: number; stdout: string; stderr: string }

/** `weir ARGS` in this process; paths in ARGS should be absolute. */
export async function cli(args: string[]): Promise<CliRun> {
  let stdout = "", stderr = "";
  const sink = (onText: (t: string) => void) => new Writable({ write(chunk, _enc, done) { onText(String(chunk)); done(); } });
  const code = await main(args, sink((t) => (stdout += t)) as unknown as typeof process.stdout, sink((t) => (stderr += t)) as unknown as typeof process.stderr);
  return { code, stdout, stderr };
}

export interface Publisher { name: string; dir: string; keyFile: string; pubFile: string; publicPem: string; privatePem: string }

/** A publisher with keys written the way `weir plugin keygen` writes them. */
export async function publisher(name: string, root: string): Promise<Publisher> {
  const dir = join(root, `keys-${name}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir, { recursive: true });
  const { privatePem, publicPem } = await generatePublisherKeys();
  const keyFile = join(dir, "publisher.key");
  const pubFile = join(dir, "publisher.pub");
  writeFileSync(keyFile, privatePem, { mode: 0o600 });
  writeFileSync(pubFile, publicPem);
  return { name, dir, keyFile, pubFile, publicPem, privatePem };
}

export interface PackOptions {
  fixture?: "greeter" | "store-counter";
  /** Replaces the fixture's "1.0.0" (its declared version, and what greeter stamps on requests). */
  version?: string;
  /** The publisher named in the manifest; signs with its key unless `unsigned`. */
  by: Publisher;
  /** Sign with another publisher's key (a valid signature by the wrong key). */
  signWith?: Publisher;
  unsigned?: boolean;
  sdk?: string;
  /** Edits the manifest before signing (a publisher that lies about its bundle). */
  editManifest?: (m: PackageManifest) => void;
  out?: string;
}

/** Packs (and signs) a fixture into `dir`; returns the file path. */
export async function makePackage(dir: string, o: PackOptions): Promise<string> {
  const fixture = o.fixture ?? "greeter";
  const version = o.version ?? "1.0.0";
  const src = join(dir, `${fixture}-${version}-${Math.random().toString(36).slice(2, 8)}.ts`);
  writeFileSync(src, readFileSync(fixturePath("marketplace", `${fixture}.ts`), "utf8").replaceAll("1.0.0", version));
  const out = o.out ?? join(dir, `${fixture}-${version}.weirpkg`);
  let pkg: PluginPackage = await packPlugin(src, out, { publisher: o.by.name, sdk: o.sdk });
  if (o.editManifest) { o.editManifest(pkg.manifest); writeFileSync(out, serializePackage(pkg)); }
  if (!o.unsigned) pkg = await signPackage(pkg, (o.signWith ?? o.by).privatePem);
  writeFileSync(out, serializePackage(pkg));
  return out;
}

/** Copies `from` over `to` in one rename-free write (what a careless deploy does). */
export function replaceFile(to: string, from: string): void {
  writeFileSync(to, readFileSync(from));
}

/** The same file with one byte of the bundle changed (a letter of a header name in the code). */
export function tamperOneByte(file: string, out: string): string {
  const bytes = readFileSync(file);
  const i = bytes.indexOf("x-greeter-served");
  if (i < 0) throw new Error(`no bundle text to tamper with in ${file}`);
  bytes[i + 2] = "h".charCodeAt(0); // x-greeter -> x-hreeter
  writeFileSync(out, bytes);
  return out;
}

export interface MarketWeir {
  rt: WeirRuntime;
  url: string;
  configFile: string;
  dir: string;
  write(config: WeirConfig): void;
  stop(): Promise<void>;
}

/** A config with listen/admin on 127.0.0.1:0 as YAML text. */
export function configText(config: WeirConfig): string {
  return stringify({ listen: { port: 0, host: "127.0.0.1" }, admin: false, log: { access: false }, ...config });
}

/** An in-process Weir from a real config file; `watchPlugins: false` makes reloads explicit. */
export async function startMarketWeir(config: WeirConfig, options: { watchPlugins?: boolean; dir?: string } = {}): Promise<MarketWeir> {
  const dir = options.dir ?? tempDir("weir-market-");
  const configFile = join(dir, "weir.yaml");
  writeFileSync(configFile, configText(config));
  const rt = await WeirRuntime.start({ configFile, watchPlugins: options.watchPlugins ?? false, logger: pino({ level: process.env.WEIR_TEST_LOG ?? "silent" }) });
  return {
    rt,
    url: rt.addresses().listen[0]!,
    configFile,
    dir,
    write: (c) => writeFileSync(configFile, configText(c)),
    stop: () => rt.stop(0),
  };
}

/** A route to `upstream` through one plugin entry. */
export function routeThrough(upstream: string, entry: Record<string, unknown>, policy: Partial<WeirConfig> = {}): WeirConfig {
  return { ...policy, routes: [{ name: "market", match: { path: "/" }, upstream, plugins: [entry as never] }] } as WeirConfig;
}

/** Polls until `check` returns true (for the file watcher). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5000, what = "the condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
