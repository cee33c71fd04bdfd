/**
 * Watches a set of files for any way they can be written, and calls back once per burst.
 *
 * A file is watched through its directory, never through its own inode: an editor's safe write
 * (write a temporary file, rename it over), `sed -i`, a delete then a create all replace the
 * inode, and a watch on the old one goes silent for good. The directory's name filter lets only
 * the watched names through, so a busy neighbour (a log next to the config) costs one string
 * comparison per event. Names starting with ".." count as a change to every file of the directory:
 * a Kubernetes ConfigMap volume swaps its `..data` symlink and never touches the file's own name.
 *
 * The directory itself can be removed or replaced (the timestamped directory behind `..data` is,
 * on every ConfigMap update): its watch is then re-armed on whatever has that path now, or retried
 * until the directory is back, and its files count as changed.
 *
 * Writes come in bursts (truncate, write, write, rename): the callback runs once the file has been
 * quiet for `debounceMs`, whether it exists then or not (the caller decides what a missing file means).
 */
import { statSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Logger } from "../log/logger.js";

export interface FileWatcherOptions {
  /** Quiet time after the last event for a file before calling back. */
  debounceMs: number;
  /** How often a directory that is gone is looked for again. Default 500 ms. */
  retryMs?: number;
  /** For log lines: what the files are ("config file", "plugin source"). */
  what: string;
}

interface WatchedDir {
  path: string;
  names: Set<string>;
  watcher: FSWatcher | null;
  /** The directory's identity when its watch was armed (dev:ino), to notice a replacement. */
  identity: string | null;
}

export class FileWatcher {
  private readonly dirs = new Map<string, WatchedDir>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly onChange: (file: string) => void, private readonly log: Logger, private readonly options: FileWatcherOptions) {}

  /** Makes `files` (absolute or relative to the working directory) the watched set. */
  set(files: Iterable<string>): void {
    if (this.closed) return;
    const wanted = new Map<string, Set<string>>();
    for (const f of files) {
      const abs = resolve(f);
      const dir = dirname(abs);
      if (!wanted.has(dir)) wanted.set(dir, new Set());
      wanted.get(dir)!.add(basename(abs));
    }
    for (const [path, d] of this.dirs) {
      if (wanted.has(path)) continue;
      d.watcher?.close();
      this.dirs.delete(path);
    }
    for (const [path, names] of wanted) {
      const d = this.dirs.get(path);
      if (d) { d.names = names; continue; }
      const fresh: WatchedDir = { path, names, watcher: null, identity: null };
      this.dirs.set(path, fresh);
      this.arm(fresh);
    }
  }

  /** The files watched now (for tests and diagnostics). */
  files(): string[] {
    return [...this.dirs.values()].flatMap((d) => [...d.names].map((n) => join(d.path, n)));
  }

  private arm(d: WatchedDir): boolean {
    d.watcher?.close();
    d.watcher = null;
    try {
      const st = statSync(d.path);
      d.identity = `${st.dev}:${st.ino}`;
      const w = watch(d.path, { persistent: false }, (event, filename) => this.event(d, event, filename === null ? null : filename.toString()));
      w.on("error", (err) => {
        // The directory went away under the watch (or the watch broke): arm again or retry.
        if (this.dirs.get(d.path) !== d) return;
        this.log.debug({ err, dir: d.path }, `${this.options.what} watch lost; re-arming`);
        this.rearm(d);
      });
      d.watcher = w;
      return true;
    } catch {
      d.identity = null;
      this.retryLater();
      return false;
    }
  }

  private event(d: WatchedDir, event: string, name: string | null): void {
    if (this.closed || this.dirs.get(d.path) !== d) return;
    if (name === null || name.startsWith("..")) for (const n of d.names) this.changed(join(d.path, n));
    else if (d.names.has(name)) this.changed(join(d.path, name));
    // A rename may be the directory itself moving away or being replaced: the watch follows the
    // old inode, so look at what the path holds now.
    if (event === "rename" && this.identityOf(d.path) !== d.identity) this.rearm(d);
  }

  private identityOf(path: string): string | null {
    try {
      const st = statSync(path);
      return `${st.dev}:${st.ino}`;
    } catch {
      return null;
    }
  }

  /** Arms the watch again on what the path holds now; its files count as changed. */
  private rearm(d: WatchedDir): void {
    if (this.arm(d)) for (const n of d.names) this.changed(join(d.path, n));
  }

  private retryLater(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      for (const d of this.dirs.values()) if (d.watcher === null) this.rearm(d);
    }, this.options.retryMs ?? 500);
    this.retryTimer.unref();
  }

  private changed(file: string): void {
    clearTimeout(this.timers.get(file));
    const t = setTimeout(() => {
      this.timers.delete(file);
      if (!this.closed) this.onChange(file);
    }, this.options.debounceMs);
    t.unref();
    this.timers.set(file, t);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const d of this.dirs.values()) d.watcher?.close();
    this.dirs.clear();
  }
}
