/**
 * `weir plugin verify` and `weir plugin install` as an operator uses them: exit 0 with what was
 * checked, or exit 1 with `refused (REASON): message`; install from a file, from an http URL, and
 * from a package index whose downloads are cached so that the index is not needed again.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import { join } from "node:path";
import { CompactSign, importPKCS8 } from "jose";
import { canonicalManifest, sha256 } from "../../core/marketplace/package-format.js";
import { tempDir } from "../support/weir.js";
import { cli, makePackage, publisher, tamperOneByte, type Publisher } from "./support.js";

const dir = tempDir("weir-market-verify-");
let acme: Publisher, mallory: Publisher;
const pkgs: Record<string, string> = {};

/** A static file server on 127.0.0.1 that counts the requests it answers. */
async function serveFiles(files: Record<string, string | Buffer>): Promise<{ url: string; hits: string[]; close(): Promise<void>; server: Server }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url!);
    const body = files[req.url!];
    if (body === undefined) { res.writeHead(404).end("not found"); return; }
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(body);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server, close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }) };
}

const Setup = suite("verify fixtures");
Setup("a signed package, and broken variants of it", async () => {
  acme = await publisher("acme", dir);
  mallory = await publisher("mallory", dir);
  pkgs.good = await makePackage(dir, { by: acme });
  pkgs.v11 = await makePackage(dir, { by: acme, version: "1.1.0" });
  pkgs.v2 = await makePackage(dir, { by: acme, version: "2.0.0" });
  pkgs.wrongKey = await makePackage(dir, { by: acme, signWith: mallory, out: join(dir, "wrong-key.weirpkg") });
  pkgs.unsigned = await makePackage(dir, { by: acme, unsigned: true, out: join(dir, "unsigned.weirpkg") });
  pkgs.tampered = tamperOneByte(pkgs.good!, join(dir, "tampered.weirpkg"));
  // The manifest changed after signing (a permission removed): the signature no longer covers it.
  const edited = JSON.parse(readFileSync(pkgs.good!, "utf8"));
  edited.manifest.description = "now harmless";
  pkgs.edited = join(dir, "edited.weirpkg");
  writeFileSync(pkgs.edited, JSON.stringify(edited));
  pkgs.garbage = join(dir, "garbage.weirpkg");
  writeFileSync(pkgs.garbage, "PK\u0003\u0004 this is a zip, not a package");
});
Setup.run();

const Verify = suite("weir plugin verify");
Verify("an intact package signed by the key: exit 0 naming the plugin, publisher and bundle digest", async () => {
  const r = await cli(["plugin", "verify", pkgs.good!, "--key", acme.pubFile]);
  assert.is(r.code, 0, r.stderr);
  const digest = JSON.parse(readFileSync(pkgs.good!, "utf8")).manifest.bundleSha256;
  assert.is(r.stdout, `ok: greeter@1.0.0 by acme, bundle sha256 ${digest}\n`);
});
Verify("a signature by another key: exit 1, bad-signature", async () => {
  const r = await cli(["plugin", "verify", pkgs.wrongKey!, "--key", acme.pubFile]);
  assert.is(r.code, 1);
  assert.is(r.stderr, "weir plugin verify: refused (bad-signature): the signature does not verify with this publisher's key (wrong key, or the package was altered)\n");
});
Verify("a JWS by the right key that is not a package signature (another typ): exit 1, bad-signature", async () => {
  const pkg = JSON.parse(readFileSync(pkgs.good!, "utf8"));
  const key = await importPKCS8(acme.privatePem.trim(), "EdDSA");
  pkg.signature = await new CompactSign(new TextEncoder().encode(canonicalManifest(pkg.manifest))).setProtectedHeader({ alg: "EdDSA", typ: "JWT" }).sign(key);
  const file = join(dir, "other-typ.weirpkg");
  writeFileSync(file, JSON.stringify(pkg));
  const r = await cli(["plugin", "verify", file, "--key", acme.pubFile]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /refused \(bad-signature\): the signature is not a package signature \(typ "JWT", expected "weirpkg\+jws"\)/);
});

Verify("one byte of the bundle changed: exit 1, digest-mismatch", async () => {
  const r = await cli(["plugin", "verify", pkgs.tampered!, "--key", acme.pubFile]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^weir plugin verify: refused \(digest-mismatch\): the bundle does not match the manifest's bundleSha256/);
});
Verify("a manifest edited after signing: exit 1, manifest-mismatch", async () => {
  const r = await cli(["plugin", "verify", pkgs.edited!, "--key", acme.pubFile]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^weir plugin verify: refused \(manifest-mismatch\): the manifest differs from the one that was signed/);
});
Verify("an unsigned package: exit 1, unsigned, saying how to sign it", async () => {
  const r = await cli(["plugin", "verify", pkgs.unsigned!, "--key", acme.pubFile]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^weir plugin verify: refused \(unsigned\): the package is not signed \(weir plugin sign FILE --key publisher\.key\)/);
});
Verify("a file that is not a package: exit 1, malformed", async () => {
  const r = await cli(["plugin", "verify", pkgs.garbage!, "--key", acme.pubFile]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^weir plugin verify: refused \(malformed\): the file is not a Weir plugin package/);
});
Verify("a private key given as --key, or no --key: an error, never a pass", async () => {
  const wrong = await cli(["plugin", "verify", pkgs.good!, "--key", acme.keyFile]);
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /refused \(bad-signature\): the public key is not an Ed25519 SPKI PEM/);
  const missing = await cli(["plugin", "verify", pkgs.good!]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /--key publisher\.pub is required/);
});
Verify.run();

const Install = suite("weir plugin install");
Install("from a file: copies NAME-VERSION.weirpkg into DIR and shows hooks, permissions and the use: line", async () => {
  const into = join(dir, "installed-file");
  const r = await cli(["plugin", "install", pkgs.good!, "--dir", into, "--key", acme.pubFile]);
  assert.is(r.code, 0, r.stderr);
  const target = join(into, "greeter-1.0.0.weirpkg");
  assert.is(readFileSync(target, "utf8"), readFileSync(pkgs.good!, "utf8"));
  assert.match(r.stdout, /installed greeter@1\.0\.0 by acme from /);
  assert.match(r.stdout, /signature: verified with the given key/);
  assert.match(r.stdout, /hooks: onRequest, onResponse/);
  assert.match(r.stdout, /permissions requested: none/);
  assert.match(r.stdout, new RegExp(`use it with:  use: ${target.replace(/[.]/g, "\\.")}`));
});
Install("shows the permissions a package asks for", async () => {
  const pkg = await makePackage(dir, { fixture: "store-counter", by: acme });
  const r = await cli(["plugin", "install", pkg, "--dir", join(dir, "installed-store")]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /permissions requested: store \(read and write shared state\)/);
  assert.match(r.stdout, /signature: present \(verified at load against trustedPublishers\)/);
});
Install("a tampered package, or one signed by another key: refused, nothing copied", async () => {
  const into = join(dir, "installed-refused");
  const tampered = await cli(["plugin", "install", pkgs.tampered!, "--dir", into]);
  assert.is(tampered.code, 1);
  assert.match(tampered.stderr, /refused \(digest-mismatch\)/);
  const wrongKey = await cli(["plugin", "install", pkgs.wrongKey!, "--dir", into, "--key", acme.pubFile]);
  assert.is(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /refused \(bad-signature\)/);
  assert.ok(!existsSync(into) || readdirSync(into).filter((f) => f.endsWith(".weirpkg")).length === 0, "nothing was installed");
});
Install("from an http URL on a local server", async () => {
  const files = await serveFiles({ "/greeter.weirpkg": readFileSync(pkgs.good!) });
  try {
    const into = join(dir, "installed-url");
    const r = await cli(["plugin", "install", `${files.url}/greeter.weirpkg`, "--dir", into, "--key", acme.pubFile]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`installed greeter@1\\.0\\.0 by acme from ${files.url}/greeter\\.weirpkg`));
    assert.is(sha256(readFileSync(join(into, "greeter-1.0.0.weirpkg"), "utf8")), sha256(readFileSync(pkgs.good!, "utf8")));
    const missing = await cli(["plugin", "install", `${files.url}/nope.weirpkg`, "--dir", into]);
    assert.is(missing.code, 1);
    assert.match(missing.stderr, /answered 404/);
  } finally { await files.close(); }
});
Install("from an index: the highest matching version, then again with the index server stopped (from the cache)", async () => {
  const text = (f: string) => readFileSync(f, "utf8");
  const index = {
    packages: [
      { name: "greeter", version: "1.0.0", url: "pkgs/greeter-1.0.0.weirpkg", sha256: sha256(text(pkgs.good!)) },
      { name: "greeter", version: "1.1.0", url: "pkgs/greeter-1.1.0.weirpkg", sha256: sha256(text(pkgs.v11!)) },
      { name: "greeter", version: "2.0.0", url: "pkgs/greeter-2.0.0.weirpkg", sha256: sha256(text(pkgs.v2!)) },
    ],
  };
  const files = await serveFiles({
    "/index.json": JSON.stringify(index),
    "/pkgs/greeter-1.0.0.weirpkg": text(pkgs.good!),
    "/pkgs/greeter-1.1.0.weirpkg": text(pkgs.v11!),
    "/pkgs/greeter-2.0.0.weirpkg": text(pkgs.v2!),
  });
  const into = join(dir, "installed-index");
  try {
    const r = await cli(["plugin", "install", "greeter@^1.0.0", "--index", `${files.url}/index.json`, "--dir", into, "--key", acme.pubFile]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /installed greeter@1\.1\.0 by acme from .*index\.json \(greeter@1\.1\.0\)/);
    assert.ok(existsSync(join(into, "greeter-1.1.0.weirpkg")));
    assert.ok(existsSync(join(into, ".weir-cache", "index.json")));
    assert.ok(files.hits.includes("/pkgs/greeter-1.1.0.weirpkg"));
    assert.ok(!files.hits.includes("/pkgs/greeter-2.0.0.weirpkg"), "only the chosen version is downloaded");
  } finally { await files.close(); }

  const again = await cli(["plugin", "install", "greeter@^1.0.0", "--index", `${files.url}/index.json`, "--dir", into, "--key", acme.pubFile]);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, /installed greeter@1\.1\.0 by acme/);
  const unknown = await cli(["plugin", "install", "greeter@^3.0.0", "--index", `${files.url}/index.json`, "--dir", into]);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /no package greeter@\^3\.0\.0 in the index/);
});
Install("from an index whose download does not match its sha256: refused, nothing installed", async () => {
  const files = await serveFiles({
    "/index.json": JSON.stringify({ packages: [{ name: "greeter", version: "1.0.0", url: "/g.weirpkg", sha256: sha256(readFileSync(pkgs.good!, "utf8")) }] }),
    "/g.weirpkg": readFileSync(pkgs.v2!),
  });
  const into = join(dir, "installed-index-bad");
  try {
    const r = await cli(["plugin", "install", "greeter", "--index", `${files.url}/index.json`, "--dir", into]);
    assert.is(r.code, 1);
    assert.match(r.stderr, /refused \(digest-mismatch\): the download of greeter@1\.0\.0 does not match the index's sha256/);
    assert.ok(!existsSync(join(into, "greeter-1.0.0.weirpkg")));
  } finally { await files.close(); }
});
Install("without an index and nothing cached: a clear error", async () => {
  const r = await cli(["plugin", "install", "greeter", "--index", "http://127.0.0.1:1/index.json", "--dir", join(dir, "installed-none")]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /cannot read the index http:\/\/127\.0\.0\.1:1\/index\.json/);
});
Install.run();
