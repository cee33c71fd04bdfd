/**
 * `weir plugin pack`: compiles a plugin's TypeScript, loads the bundle once in a real isolate to
 * read what it declares (name, version, hooks, permissions, config schema), and writes an
 * unsigned package whose manifest pins the bundle's SHA-256.
 */
import { writeFileSync } from "node:fs";
import { SDK_VERSION } from "../../sdk/index.js";
import { compilePlugin } from "../plugin-host/compile-plugin.js";
import { SandboxIsolate } from "../plugin-host/sandbox-isolate.js";
import { PACKAGE_FORMAT, serializePackage, sha256, type PackageManifest, type PluginPackage } from "./package-format.js";

export interface PackOptions {
  publisher: string;
  description?: string;
  /** Default: "^<major>.0.0" of this SDK. */
  sdk?: string;
}

export async function packPlugin(source: string, out: string, o: PackOptions): Promise<PluginPackage> {
  const compiled = await compilePlugin(source);
  // WebAssembly is there so that a plugin that uses it can be packed (its manifest says whether it asks for it).
  const sandbox = await SandboxIsolate.create({ memoryMb: 64, wasm: true, code: compiled.code, filename: compiled.file });
  let declared: { name?: string; version?: string; hooks?: string[]; permissions?: PackageManifest["permissions"]; configSchema?: Record<string, unknown> | null; error?: string };
  try {
    declared = JSON.parse(sandbox.manifestJson);
  } finally {
    sandbox.dispose();
  }
  if (declared.error) throw new Error(declared.error);
  if (!declared.name || !declared.version) throw new Error("the plugin must declare a name and a version in definePlugin");
  const manifest: PackageManifest = {
    name: declared.name,
    version: declared.version,
    publisher: o.publisher,
    description: o.description ?? "",
    permissions: declared.permissions ?? {},
    hooks: declared.hooks ?? [],
    configSchema: declared.configSchema ?? null,
    sdk: o.sdk ?? `^${SDK_VERSION.split(".")[0]}.0.0`,
    bundleSha256: sha256(compiled.code),
    createdAt: new Date().toISOString(),
  };
  const pkg: PluginPackage = { format: PACKAGE_FORMAT, manifest, bundle: compiled.code, signature: null };
  writeFileSync(out, serializePackage(pkg));
  return pkg;
}
