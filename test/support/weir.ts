/**
 * Starts a real Weir runtime in the test process from a config object or YAML text written to a
 * real temporary file. Listeners default to 127.0.0.1 on ephemeral ports, so tests can run side
 * by side.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { pino } from "pino";
import { WeirRuntime } from "../../core/server/runtime.js";
import type { Logger } from "../../core/log/logger.js";
import type { WeirConfig } from "../../core/config/schema.js";

export interface TestWeir {
  rt: WeirRuntime;
  /** Base URL of the first listener, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  /** Base URL of the admin API. */
  admin: string;
  configFile: string;
  dir: string;
  /** Rewrites the config file (for reload tests). */
  write(config: WeirConfig | string): void;
  stop(graceMs?: number): Promise<void>;
}

export function tempDir(prefix = "weir-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeConfig(dir: string, config: WeirConfig | string, name = "weir.yaml"): string {
  const file = join(dir, name);
  writeFileSync(file, typeof config === "string" ? config : stringify(config));
  return file;
}

/** Fills in test defaults: listen and admin on 127.0.0.1 port 0. */
export function withTestDefaults(config: WeirConfig): WeirConfig {
  return { listen: { port: 0, host: "127.0.0.1" }, admin: { port: 0, host: "127.0.0.1" }, ...config };
}

/** Discards access log lines (tests that read them pass their own destination). */
const discard = { write: (_line: string) => undefined };

export interface StartWeirOptions {
  env?: NodeJS.ProcessEnv;
  /** Reload when the config file changes (default false: tests call rt.reload() themselves). */
  watchConfig?: boolean;
  /** Hot-reload plugin sources when they change (default true). */
  watchPlugins?: boolean;
  /** Where access log lines go (default: nowhere, or stdout with WEIR_TEST_LOG set). */
  accessLog?: { write(line: string): unknown };
  logger?: Logger;
}

export async function startWeir(config: WeirConfig | string, options: StartWeirOptions = {}): Promise<TestWeir> {
  const dir = tempDir();
  const configFile = writeConfig(dir, typeof config === "string" ? config : withTestDefaults(config));
  const rt = await WeirRuntime.start({
    configFile,
    env: options.env,
    logger: options.logger ?? pino({ level: process.env.WEIR_TEST_LOG ?? "silent" }),
    watchConfig: options.watchConfig ?? false,
    watchPlugins: options.watchPlugins,
    accessLog: options.accessLog ?? (process.env.WEIR_TEST_LOG ? undefined : discard),
  });
  const { listen, admin } = rt.addresses();
  const url = listen[0]!;
  return {
    rt,
    url,
    port: Number(new URL(url).port),
    admin: admin ?? "",
    configFile,
    dir,
    write: (c) => writeConfig(dir, typeof c === "string" ? c : withTestDefaults(c)),
    stop: (graceMs = 0) => rt.stop(graceMs),
  };
}
