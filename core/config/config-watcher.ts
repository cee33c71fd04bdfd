/**
 * Watches the config file and asks for one reload per burst of changes (core/watch/file-watcher.ts
 * has how every write style is seen: in place, rename over, delete and create, a ConfigMap's
 * symlink swap). The reload waits until the file has been quiet for `debounceMs`. A deleted file
 * triggers nothing (the running config keeps serving) but is logged; its re-creation reloads.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Logger } from "../log/logger.js";
import { FileWatcher } from "../watch/file-watcher.js";

export interface ConfigWatcherOptions {
  /** Quiet time after the last change before reloading. Default 150 ms. */
  debounceMs?: number;
}

export class ConfigWatcher {
  private watcher: FileWatcher | null = null;
  private readonly file: string;
  private readonly debounceMs: number;
  private missing = false;

  constructor(file: string, private readonly onChange: () => void, private readonly log: Logger, options: ConfigWatcherOptions = {}) {
    this.file = resolve(file);
    this.debounceMs = options.debounceMs ?? 150;
  }

  /** Resolves once the watcher is ready (changes after this are seen). */
  start(): Promise<void> {
    this.watcher = new FileWatcher(() => this.changed(), this.log, { debounceMs: this.debounceMs, what: "config file" });
    this.watcher.set([this.file]);
    return Promise.resolve();
  }

  private changed(): void {
    if (!existsSync(this.file)) {
      if (!this.missing) this.log.warn({ configFile: this.file }, "config file deleted; the running config keeps serving until it is created again");
      this.missing = true;
      return;
    }
    this.missing = false;
    this.onChange();
  }

  async close(): Promise<void> {
    this.watcher?.close();
  }
}
