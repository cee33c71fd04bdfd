/**
 * Turns a `.weirpkg` named in a config into a compiled plugin, applying the config's trust policy
 * (requireSigned, trustedPublishers, the size limit). What a package claims about itself is
 * checked again once its bundle is loaded (`checkBundleMatches`): a manifest that lies about the
 * plugin's permissions or hooks is refused.
 */
import type { CompiledPlugin } from "../plugin-host/compile-plugin.js";
import type { PluginManifest } from "../plugin-host/plugin-instance.js";
import { PackageError, readPackage, type PackageManifest } from "./package-format.js";
import { checkPackagePolicy, type TrustPolicy } from "./signing.js";

export interface LoadPolicy extends TrustPolicy {
  maxPackageBytes: number;
}

export async function loadPackagedPlugin(file: string, policy: LoadPolicy): Promise<CompiledPlugin & { package: PackageManifest }> {
  const pkg = readPackage(file, policy.maxPackageBytes);
  await checkPackagePolicy(pkg, policy);
  return { file, code: pkg.bundle, hash: pkg.manifest.bundleSha256, inputs: [file], package: pkg.manifest };
}

/** The manifest the bundle itself declares must be the one the package (and its signature) states. */
export function checkBundleMatches(declared: PackageManifest, actual: PluginManifest): void {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const perms = (p: PluginManifest["permissions"]) => ({ store: !!p.store, jwt: !!p.jwt, fetch: [...(p.fetch ?? [])].sort() });
  if (declared.name !== actual.name || declared.version !== actual.version)
    throw new PackageError("manifest-mismatch", `the package says ${declared.name}@${declared.version} but its bundle is ${actual.name}@${actual.version}`);
  if (!same(perms(declared.permissions), perms(actual.permissions)))
    throw new PackageError("manifest-mismatch", "the package's manifest does not list the permissions its bundle asks for");
  if (!same([...declared.hooks].sort(), [...actual.hooks].sort()))
    throw new PackageError("manifest-mismatch", "the package's manifest does not list the hooks its bundle defines");
}
