/**
 * Watches the config file and asks for one reload per burst of changes.
 *
 * We watch the file's directory (only the file passes the filter), not the file itself: editors
 * and deploy tools write a temporary file and rename it over the config, which replaces the inode
 * a file watch would follow, and a config that is deleted then created again must be noticed too.
 * Writes come in bursts (truncate, write, write, rename): the reload waits until the file has been
 * quiet for `debounceMs`. A deleted file triggers nothing (the running config keeps serving) but
 * is logged; its re-creation reloads.
 */
import { existsSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "../log/logger.js";

export interface ConfigWatcherOptions {
  /** Quiet time after the last change before reloading. Default 150 ms. */
  debounceMs?: number;
}

export class ConfigWatcher {
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly file: string;
  private readonly debounceMs: number;
  private closed = false;

  constructor(file: string, private readonly onChange: () => void, private readonly log: Logger, options: ConfigWatcherOptions = {}) {
    this.file = resolve(file);
    this.debounceMs = options.debounceMs ?? 150;
  }

  /** Resolves once the watcher is ready (changes after this are seen). */
  start(): Promise<void> {
    const dir = dirname(this.file);
    const name = basename(this.file);
    const w = watch(dir, {
      ignoreInitial: true,
      depth: 0,
      // chokidar's own rename handling (atomic) would hide an unlink+add pair; we debounce instead.
      atomic: false,
      ignored: (path: string) => path !== dir && basename(path) !== name,
    });
    this.watcher = w;
    w.on("all", (event, path) => {
      if (resolve(path) !== this.file) return;
      if (event === "unlink") {
        this.log.warn({ configFile: this.file }, "config file deleted; the running config keeps serving until it is created again");
        return;
      }
      if (event === "add" || event === "change") this.schedule();
    });
    w.on("error", (err) => this.log.warn({ err, configFile: this.file }, "config watcher error"));
    return new Promise((r) => w.once("ready", () => r()));
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      // A rename-over may leave a moment with no file; the next event brings it back.
      if (!this.closed && existsSync(this.file)) this.onChange();
    }, this.debounceMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.watcher?.close();
  }
}
