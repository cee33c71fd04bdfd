/**
 * Which isolated-vm this Node runs plugins on. No isolated-vm release builds on every Node line
 * Weir supports: 5.0.x compiles against Node 20's and 22's V8 but not Node 24's (its headers need
 * C++20), and 6.x needs V8 APIs that Node 20 lacks (`v8::SourceLocation`) while shipping prebuilt
 * binaries for Node 22 and 24. So the package carries both lines as optional dependencies under
 * aliases, and npm keeps the ones that install on the running Node: `isolated-vm-6` is skipped
 * below Node 22 (its engines field), `isolated-vm-5` fails to build on Node 24 and is dropped.
 * Both lines have the same JavaScript API and the same type declarations.
 *
 * We load the line made for this Node's native ABI (`process.versions.modules`) first, then any
 * other that loads, then a plain `isolated-vm` the application may have installed itself (the
 * way to run a Node line Weir does not list, at the user's risk).
 */
import { createRequire } from "node:module";
import type IsolatedVm from "isolated-vm";
import { ErrorCodes, WeirError } from "../errors.js";

/** Node 22 is ABI 127, Node 24 is 137: from Node 22 on, the prebuilt 6.x line comes first. */
const FIRST_ABI_OF_LINE_6 = 127;

/** The packages tried, in order, for a Node with this native ABI. */
export function isolatedVmCandidates(abi: number): string[] {
  const lines = abi >= FIRST_ABI_OF_LINE_6 ? ["isolated-vm-6", "isolated-vm-5"] : ["isolated-vm-5", "isolated-vm-6"];
  return [...lines, "isolated-vm"];
}

let loaded: { module: typeof IsolatedVm; name: string } | null = null;

/** The isolated-vm module for this process, loaded once; throws WEIR_ERR_SANDBOX_UNAVAILABLE if none loads. */
export function isolatedVm(): typeof IsolatedVm {
  return loadIsolatedVm().module;
}

/** Which package isolatedVm() loaded, e.g. `isolated-vm-6` (for diagnostics and tests). */
export function isolatedVmPackage(): string {
  return loadIsolatedVm().name;
}

function loadIsolatedVm(): { module: typeof IsolatedVm; name: string } {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const abi = Number(process.versions.modules);
  const tried: string[] = [];
  for (const name of isolatedVmCandidates(abi)) {
    try {
      loaded = { module: require(name) as typeof IsolatedVm, name };
      return loaded;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const missing = e.code === "MODULE_NOT_FOUND" && String(e.message).includes(`'${name}'`);
      tried.push(`${name}: ${missing ? "not installed" : firstLine(e.message)}`);
    }
  }
  throw new WeirError(
    ErrorCodes.SANDBOX_UNAVAILABLE,
    `no isolated-vm build loads on Node ${process.version} (native ABI ${abi}), so plugins cannot run. ` +
      `Tried ${tried.join("; ")}. Weir runs on Node 20, 22 and 24. If this is one of them, isolated-vm's ` +
      `install script was probably blocked or failed: allow it (\`"allowScripts": { "isolated-vm": true }\` in ` +
      `your package.json, or \`npm install-scripts approve isolated-vm\`), have a C++ compiler for Node 20, ` +
      `then run \`npm rebuild isolated-vm-5 isolated-vm-6\`.`,
  );
}

function firstLine(message: string): string {
  return String(message).split("\n")[0]!;
}
