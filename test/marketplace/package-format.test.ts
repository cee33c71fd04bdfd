/**
 * docs/plugin-packages.md is precise enough for another tool to produce a package: this suite
 * builds one with nothing but node:crypto (its own canonical JSON, its own compact JWS, a
 * hand-written bundle), and the real verify and a running Weir accept it. It also pins what
 * `weir plugin pack` and `sign` write, field by field, against the same document.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createHash, generateKeyPairSync, sign as edSign, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { startUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";
import { cli, configText, makePackage, publisher, routeThrough, startMarketWeir } from "./support.js";

const dir = tempDir("weir-market-format-");

/** Canonical JSON as the document states it: sorted keys, no whitespace. Written independently of core/. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  if (v !== null && typeof v === "object") return "{" + Object.keys(v).sort().map((k) => JSON.stringify(k) + ":" + canonical((v as Record<string, unknown>)[k])).join(",") + "}";
  return JSON.stringify(v);
}

const b64u = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** A compact JWS (EdDSA, typ weirpkg+jws) with node:crypto alone. */
function compactJws(payload: string, key: KeyObject, kid: string): string {
  const signingInput = `${b64u(JSON.stringify({ alg: "EdDSA", typ: "weirpkg+jws", kid }))}.${b64u(payload)}`;
  return `${signingInput}.${b64u(edSign(null, Buffer.from(signingInput), key))}`;
}

function handmadePackage(key: KeyObject, over: { hooks?: string[] } = {}): string {
  const bundle = `var __weirPluginModule = { default: {
  name: "handmade", version: "1.0.0", permissions: {},
  onRequest(ctx) { ctx.request.headers.set("x-handmade", "yes"); },
} };
`;
  const manifest = {
    name: "handmade", version: "1.0.0", publisher: "othertool", description: "made without weir",
    permissions: {}, hooks: over.hooks ?? ["onRequest"], configSchema: null, sdk: "^1.0.0",
    bundleSha256: createHash("sha256").update(bundle, "utf8").digest("hex"), createdAt: "2026-01-01T00:00:00Z",
  };
  return JSON.stringify({ format: "weirpkg/1", manifest, bundle, signature: compactJws(canonical(manifest), key, "othertool") });
}

const OtherTool = suite("a package produced by another tool from the document");
OtherTool("verifies with weir plugin verify and serves traffic under requireSigned", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const pubPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const file = join(dir, "handmade.weirpkg");
  writeFileSync(file, handmadePackage(privateKey));
  const pubFile = join(dir, "othertool.pub");
  writeFileSync(pubFile, pubPem);
  const v = await cli(["plugin", "verify", file, "--key", pubFile]);
  assert.is(v.code, 0, v.stderr);
  assert.match(v.stdout, /^ok: handmade@1\.0\.0 by othertool/);

  const upstream = await startUpstream();
  const w = await startMarketWeir(routeThrough(upstream.url, { use: file }, { requireSigned: true, trustedPublishers: { othertool: pubPem } }));
  try {
    const res = await request(`${w.url}/x`);
    await res.body.dump();
    assert.is(res.statusCode, 200);
    assert.is(upstream.seen.at(-1)!.headers["x-handmade"], "yes");
  } finally { await w.stop(); await upstream.close(); }
});
OtherTool("whose manifest lists a hook the bundle does not define: refused as a manifest mismatch", async () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const file = join(dir, "handmade-hooks.weirpkg");
  writeFileSync(file, handmadePackage(privateKey, { hooks: ["onRequest", "onLog"] }));
  const config = join(dir, "hooks.yaml");
  writeFileSync(config, configText(routeThrough("http://127.0.0.1:1", { use: file }, { requireSigned: true, trustedPublishers: { othertool: publicKey.export({ type: "spki", format: "pem" }).toString() } })));
  const r = await cli(["validate", "-c", config]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /refused package \(manifest-mismatch\): the package's manifest does not list the hooks its bundle defines/);
});
OtherTool.run();

const Written = suite("what weir plugin pack and sign write");
Written("the fields of the document, a bundle digest that matches, and a compact EdDSA JWS over the canonical manifest", async () => {
  const acme = await publisher("acme", dir);
  const file = await makePackage(dir, { by: acme });
  const pkg = JSON.parse(readFileSync(file, "utf8"));
  assert.equal(Object.keys(pkg).sort(), ["bundle", "format", "manifest", "signature"]);
  assert.is(pkg.format, "weirpkg/1");
  assert.equal(Object.keys(pkg.manifest).sort(), ["bundleSha256", "configSchema", "createdAt", "description", "hooks", "name", "permissions", "publisher", "sdk", "version"]);
  assert.is(pkg.manifest.bundleSha256, createHash("sha256").update(pkg.bundle, "utf8").digest("hex"));
  assert.is(pkg.manifest.sdk, "^1.0.0");
  assert.equal(pkg.manifest.hooks, ["onRequest", "onResponse"]);
  const [header, payload, signature] = pkg.signature.split(".");
  assert.equal(JSON.parse(Buffer.from(header, "base64url").toString()), { alg: "EdDSA", typ: "weirpkg+jws", kid: "acme" });
  assert.is(Buffer.from(payload, "base64url").toString(), canonical(pkg.manifest));
  assert.is(Buffer.from(signature, "base64url").length, 64, "an Ed25519 signature");
  assert.match(readFileSync(acme.keyFile, "utf8"), /^-----BEGIN PRIVATE KEY-----/);
  assert.match(readFileSync(acme.pubFile, "utf8"), /^-----BEGIN PUBLIC KEY-----/);
});
Written.run();
