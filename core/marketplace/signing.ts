/**
 * Publisher keys and package signatures: Ed25519 (EdDSA) JWS through jose. Keys are PEM files:
 * publisher.key (PKCS#8, private) and publisher.pub (SPKI, public); a config's trustedPublishers
 * holds the .pub text.
 */
import { CompactSign, compactVerify, exportPKCS8, exportSPKI, generateKeyPair, importPKCS8, importSPKI } from "jose";
import semver from "semver";
import { SDK_VERSION } from "../../sdk/index.js";
import { canonicalManifest, PackageError, type PluginPackage } from "./package-format.js";

export async function generatePublisherKeys(): Promise<{ privatePem: string; publicPem: string }> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return { privatePem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey) };
}

/** Returns the package with a signature over its manifest. */
export async function signPackage(pkg: PluginPackage, privatePem: string): Promise<PluginPackage> {
  let key;
  try { key = await importPKCS8(privatePem.trim(), "EdDSA"); } catch (err) { throw new Error(`not an Ed25519 private key (publisher.key from weir plugin keygen): ${(err as Error).message}`); }
  const signature = await new CompactSign(new TextEncoder().encode(canonicalManifest(pkg.manifest)))
    .setProtectedHeader({ alg: "EdDSA", typ: "weirpkg+jws", kid: pkg.manifest.publisher })
    .sign(key);
  return { ...pkg, signature };
}

/** Checks the signature against one public key; throws PackageError with the reason. */
export async function verifySignature(pkg: PluginPackage, publicPem: string): Promise<void> {
  if (!pkg.signature) throw new PackageError("unsigned", "the package is not signed (weir plugin sign FILE --key publisher.key)");
  let key;
  try { key = await importSPKI(publicPem.trim(), "EdDSA"); } catch (err) { throw new PackageError("bad-signature", `the public key is not an Ed25519 SPKI PEM: ${(err as Error).message}`); }
  let payload: Uint8Array;
  let typ: string | undefined;
  try {
    let protectedHeader;
    ({ payload, protectedHeader } = await compactVerify(pkg.signature, key, { algorithms: ["EdDSA"] }));
    typ = protectedHeader.typ;
  } catch {
    throw new PackageError("bad-signature", "the signature does not verify with this publisher's key (wrong key, or the package was altered)");
  }
  // A signature made for something else by the same key (another JWS of the publisher's) is not
  // a package signature, even if its payload happened to match.
  if (typ !== "weirpkg+jws") throw new PackageError("bad-signature", `the signature is not a package signature (typ ${JSON.stringify(typ ?? null)}, expected "weirpkg+jws")`);
  if (new TextDecoder().decode(payload) !== canonicalManifest(pkg.manifest))
    throw new PackageError("manifest-mismatch", "the manifest differs from the one that was signed (the package was altered)");
}

export interface TrustPolicy {
  requireSigned: boolean;
  trustedPublishers: Record<string, string>;
  /** A version or range the config pins the package to. */
  version?: string;
}

/** Everything a package must satisfy to be loaded under a config's policy. */
export async function checkPackagePolicy(pkg: PluginPackage, policy: TrustPolicy): Promise<void> {
  const m = pkg.manifest;
  if (!semver.validRange(m.sdk) || !semver.satisfies(SDK_VERSION, m.sdk))
    throw new PackageError("sdk-mismatch", `the package needs SDK ${m.sdk}; this Weir provides SDK ${SDK_VERSION}`);
  if (policy.version !== undefined && !semver.satisfies(m.version, policy.version))
    throw new PackageError("version-mismatch", `the package is version ${m.version}; the config pins ${policy.version}`);
  const key = policy.trustedPublishers[m.publisher];
  if (pkg.signature || policy.requireSigned) {
    if (policy.requireSigned && !pkg.signature) throw new PackageError("unsigned", "requireSigned is on and the package is not signed");
    if (!key) {
      if (policy.requireSigned) throw new PackageError("unknown-publisher", `the publisher "${m.publisher}" is not in trustedPublishers`);
      return; // signed by someone we do not know, and signatures are not required: treat as unsigned
    }
    await verifySignature(pkg, key);
  }
}
