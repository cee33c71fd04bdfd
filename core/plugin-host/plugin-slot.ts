/**
 * A plugin entry's place in the running config. The slot outlives hot reloads of the plugin's
 * source: a reload builds a new instance and swaps `current`; requests that already hold the old
 * instance finish on it, and it is disposed once they have drained.
 */
import type { PluginInstance } from "./plugin-instance.js";

export interface EntryInfo {
  /** `use:` as written. */
  use: string;
  /** The resolved source file. */
  file: string;
  /** Where the entry is in the config, e.g. "routes[0].plugins[1]". */
  at: string;
  builtin: boolean;
  onError: "closed" | "open";
}

export class PluginSlot {
  /** The last hot reload that failed (the previous version keeps serving), or null. */
  reloadError: string | null = null;
  constructor(public current: PluginInstance, readonly entry: EntryInfo, readonly key: string) {}

  /** Swaps in a new instance; the old one is disposed when no request holds it. */
  swap(next: PluginInstance): void {
    const old = this.current;
    next.timing ??= old.timing;
    this.current = next;
    this.reloadError = null;
    old.retired = true;
    if (old.inflight === 0) old.dispose();
  }
}

/** Called when a request lets go of an instance it held. */
export function releaseInstance(instance: PluginInstance): void {
  instance.inflight--;
  if (instance.retired && instance.inflight === 0) instance.dispose();
}
