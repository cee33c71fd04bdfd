/**
 * `weir plugin <verb>`: the plugin author's and the operator's tools (docs/plugin-packages.md).
 *   new NAME · build [DIR] · test [DIR] · pack SRC.ts --out FILE --publisher NAME · keygen --out DIR
 *   sign FILE --key publisher.key · verify FILE --key publisher.pub · install FILE|URL --dir DIR
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { PackageError, parsePackage, readPackage, serializePackage, sha256 } from "../marketplace/package-format.js";
import { generatePublisherKeys, signPackage, verifySignature } from "../marketplace/signing.js";

export const PLUGIN_USAGE = `Usage: weir plugin <verb> [options]

Verbs:
  new NAME [--dir DIR]                       scaffold a plugin project (TypeScript, a test, a README)
  build [DIR]                                type-check and bundle the project's src/plugin.ts
  test [DIR]                                 run the project's tests in the real sandbox
  pack SRC.ts --out FILE.weirpkg --publisher NAME [--description TEXT]
                                             compile and pack a plugin (unsigned)
  keygen --out DIR                           write DIR/publisher.key (private) and DIR/publisher.pub
  sign FILE.weirpkg --key DIR/publisher.key  sign a package in place
  verify FILE.weirpkg --key DIR/publisher.pub
                                             exit 0 if the package is intact and signed by that key
  install FILE|URL --dir DIR [--key PUB]     verify, show the permissions it asks for, copy it in
  install NAME[@RANGE] --index URL --dir DIR  the same from a package index (cached in DIR)
`;

type Out = NodeJS.WritableStream;

export async function pluginCommand(argv: string[], out: Out, err: Out): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: "string" }, publisher: { type: "string" }, description: { type: "string" }, key: { type: "string" },
        dir: { type: "string" }, index: { type: "string" }, help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    err.write(`weir plugin: ${(e as Error).message}\n\n${PLUGIN_USAGE}`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  const [verb, arg] = positionals;
  if (o.help || verb === undefined || verb === "help") { (verb === undefined && !o.help ? err : out).write(PLUGIN_USAGE); return verb === undefined && !o.help ? 2 : 0; }
  const need = (value: string | undefined, what: string): string => {
    if (!value) throw new UsageError(`weir plugin ${verb}: ${what} is required`);
    return value;
  };
  try {
    switch (verb) {
      case "keygen": {
        const dir = resolve(need(o.out, "--out DIR"));
        mkdirSync(dir, { recursive: true });
        const keyFile = join(dir, "publisher.key");
        if (existsSync(keyFile)) throw new UsageError(`weir plugin keygen: ${keyFile} already exists; refusing to overwrite a private key`);
        const { privatePem, publicPem } = await generatePublisherKeys();
        writeFileSync(keyFile, privatePem, { mode: 0o600 });
        writeFileSync(join(dir, "publisher.pub"), publicPem);
        out.write(`wrote ${keyFile} (private: keep it secret) and ${join(dir, "publisher.pub")} (share it: trustedPublishers)\n`);
        return 0;
      }
      case "pack": {
        const { packPlugin } = await import("../marketplace/pack.js");
        const pkg = await packPlugin(resolve(need(arg, "SRC.ts")), resolve(need(o.out, "--out FILE.weirpkg")), { publisher: need(o.publisher, "--publisher NAME"), description: o.description });
        out.write(`packed ${pkg.manifest.name}@${pkg.manifest.version} by ${pkg.manifest.publisher} into ${o.out} (unsigned; next: weir plugin sign ${o.out} --key publisher.key)\n`);
        describePermissions(pkg.manifest.permissions, out);
        return 0;
      }
      case "sign": {
        const file = resolve(need(arg, "FILE.weirpkg"));
        const pkg = readPackage(file);
        const signed = await signPackage(pkg, readFileSync(resolve(need(o.key, "--key publisher.key")), "utf8"));
        writeFileSync(file, serializePackage(signed));
        out.write(`signed ${pkg.manifest.name}@${pkg.manifest.version} as ${pkg.manifest.publisher}\n`);
        return 0;
      }
      case "verify": {
        const file = resolve(need(arg, "FILE.weirpkg"));
        const key = readFileSync(resolve(need(o.key, "--key publisher.pub")), "utf8");
        const pkg = readPackage(file);
        await verifySignature(pkg, key);
        out.write(`ok: ${pkg.manifest.name}@${pkg.manifest.version} by ${pkg.manifest.publisher}, bundle sha256 ${pkg.manifest.bundleSha256}\n`);
        return 0;
      }
      case "install": {
        const dir = resolve(need(o.dir, "--dir DIR"));
        const what = need(arg, "FILE, URL or NAME");
        const { text, source } = o.index ? await fromIndex(o.index, what, dir) : /^https?:\/\//.test(what) ? { text: await download(what), source: what } : { text: readFileSync(resolve(what), "utf8"), source: resolve(what) };
        const pkg = parsePackage(text);
        if (o.key) await verifySignature(pkg, readFileSync(resolve(o.key), "utf8"));
        mkdirSync(dir, { recursive: true });
        const target = join(dir, `${pkg.manifest.name}-${pkg.manifest.version}.weirpkg`);
        writeFileSync(target, text);
        out.write(`installed ${pkg.manifest.name}@${pkg.manifest.version} by ${pkg.manifest.publisher} from ${source}\n`);
        out.write(`  signature: ${pkg.signature ? (o.key ? "verified with the given key" : "present (verified at load against trustedPublishers)") : "none (refused when requireSigned is on)"}\n`);
        out.write(`  hooks: ${pkg.manifest.hooks.join(", ") || "none"}\n`);
        describePermissions(pkg.manifest.permissions, out);
        out.write(`  use it with:  use: ${target}\n`);
        return 0;
      }
      case "new": {
        const { scaffoldPlugin } = await import("./plugin-scaffold.js");
        const dir = scaffoldPlugin(need(arg, "NAME"), o.dir);
        out.write(`created ${dir}\n  next: cd ${dir} && weir plugin build && weir plugin test\n`);
        return 0;
      }
      case "build": {
        const { buildPluginProject } = await import("./plugin-scaffold.js");
        const r = await buildPluginProject(resolve(arg ?? "."));
        out.write(`type-checked and bundled ${r.source} -> ${r.output} (${r.bytes} bytes)\n`);
        return 0;
      }
      case "test": {
        const { testPluginProject } = await import("./plugin-scaffold.js");
        return await testPluginProject(resolve(arg ?? "."), out, err);
      }
      default:
        err.write(`weir plugin: unknown verb "${verb}"\n\n${PLUGIN_USAGE}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof UsageError) { err.write(`${e.message}\n\n${PLUGIN_USAGE}`); return 2; }
    if (e instanceof PackageError) { err.write(`weir plugin ${verb}: refused (${e.reason}): ${e.message}\n`); return 1; }
    err.write(`weir plugin ${verb}: ${(e as Error).message}\n`);
    return 1;
  }
}

class UsageError extends Error {}

function describePermissions(p: { store?: boolean; fetch?: string[]; jwt?: boolean }, out: Out): void {
  const items = [p.store ? "store (read and write shared state)" : "", ...(p.fetch ?? []).map((f) => `fetch ${f}`), p.jwt ? "jwt (verify tokens)" : ""].filter(Boolean);
  out.write(`  permissions requested: ${items.length ? items.join("; ") : "none"}\n`);
}

const MAX_DOWNLOAD = 16 * 1024 * 1024;

async function download(url: string): Promise<string> {
  const { request } = await import("undici");
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  if (res.statusCode !== 200) { await res.body.dump(); throw new Error(`GET ${url} answered ${res.statusCode}`); }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body) {
    size += (c as Buffer).length;
    if (size > MAX_DOWNLOAD) { res.body.destroy(); throw new Error(`${url} is larger than ${MAX_DOWNLOAD} bytes`); }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

interface IndexEntry { name: string; version: string; url: string; sha256: string }

/**
 * A package index is JSON `{ "packages": [{ name, version, url, sha256 }] }`. Downloads are
 * checked against the index's sha256 and cached in DIR/.weir-cache, so installing again, and
 * starting Weir, never needs the index.
 */
async function fromIndex(indexUrl: string, spec: string, dir: string): Promise<{ text: string; source: string }> {
  const semver = (await import("semver")).default;
  const at = spec.lastIndexOf("@");
  const name = at > 0 ? spec.slice(0, at) : spec;
  const range = at > 0 ? spec.slice(at + 1) : "*";
  const cache = join(dir, ".weir-cache");
  mkdirSync(cache, { recursive: true });
  let index: { packages?: IndexEntry[] };
  try {
    const text = await download(indexUrl);
    index = JSON.parse(text);
    writeFileSync(join(cache, "index.json"), text);
  } catch (e) {
    if (!existsSync(join(cache, "index.json"))) throw new Error(`cannot read the index ${indexUrl}: ${(e as Error).message}`);
    index = JSON.parse(readFileSync(join(cache, "index.json"), "utf8"));
  }
  const candidates = (index.packages ?? []).filter((p) => p.name === name && semver.satisfies(p.version, range));
  const best = candidates.sort((a, b) => semver.rcompare(a.version, b.version))[0];
  if (!best) throw new Error(`no package ${name}@${range} in the index`);
  const cached = join(cache, `${best.name}-${best.version}.weirpkg`);
  let text: string;
  if (existsSync(cached) && sha256(readFileSync(cached, "utf8")) === best.sha256) text = readFileSync(cached, "utf8");
  else {
    text = await download(new URL(best.url, indexUrl).toString());
    if (sha256(text) !== best.sha256) throw new PackageError("digest-mismatch", `the download of ${best.name}@${best.version} does not match the index's sha256`);
    writeFileSync(cached, text);
  }
  return { text, source: `${indexUrl} (${best.name}@${best.version})` };
}
