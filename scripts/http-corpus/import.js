#!/usr/bin/env node
// Imports public HTTP/1.1 request test cases into the corpus (test/fixtures/http-corpus/):
//   node scripts/http-corpus/import.js --desync-guardian DIR --haproxy DIR
// DIR is a checkout (or a bare git directory) of github.com/aws/http-desync-guardian (its
// tests/*.yaml: requests classified Compliant / Acceptable / Ambiguous / Severe) or of
// github.com/haproxy/haproxy (reg-tests/http-messaging/*.vtc: VTest scripts; the HTTP/1 client
// blocks are taken, `txreq` rendered as VTest renders it, `send`/`sendhex` as given).
// The output is committed; the test reads only the .jsonl files, never the sources.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import { writeCases } from "./corpus-file.js";

const out = fileURLToPath(new URL("../../test/fixtures/http-corpus/", import.meta.url));
const args = process.argv.slice(2);
const arg = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };

/** A file of a checkout, or of a bare git directory (its HEAD). */
function repoFile(dir, path) {
  if (existsSync(join(dir, path))) return readFileSync(join(dir, path), "latin1");
  return execFileSync("git", ["--git-dir", dir, "show", `HEAD:${path}`], { encoding: "latin1", maxBuffer: 64 << 20 });
}
function repoList(dir, folder) {
  if (existsSync(join(dir, folder))) return readdirSync(join(dir, folder)).map((n) => `${folder}/${n}`);
  return execFileSync("git", ["--git-dir", dir, "ls-tree", "--name-only", `HEAD:${folder}`], { encoding: "latin1" }).trim().split("\n").map((n) => `${folder}/${n}`);
}

const PROBE = (id) => `GET /probe-${id} HTTP/1.1\r\nHost: example.com\r\n\r\n`;

// ---------------------------------------------------------------------------------------------
// aws/http-desync-guardian: each case is a request head (method, uri, version, headers). It has no
// body, so each is sent three ways: the head alone; the head, an empty chunked body and a probe
// request behind it; the head, as many bytes as its first Content-Length says (when small) and a
// probe. A probe is what a smuggled request would be: it may reach the upstream only as a request
// Weir itself read, framed and answered.
function importDesyncGuardian(dir) {
  const cases = [];
  for (const file of repoList(dir, "tests").filter((f) => f.endsWith(".yaml")).sort()) {
    const list = yaml.load(repoFile(dir, file)) ?? [];
    list.forEach((t, n) => {
      if (!t || typeof t !== "object" || t.method === undefined) return;
      const headers = (t.headers ?? []).map((h) => [String(h.name ?? ""), String(h.value ?? "")]);
      if (!headers.some(([name]) => name.toLowerCase() === "host")) headers.unshift(["Host", "example.com"]);
      const version = t.version === "" || t.version === undefined ? "" : ` ${t.version}`;
      let head = `${t.method} ${t.uri}${version}\r\n`;
      for (const [name, value] of headers) head += value.startsWith(" ") || value.startsWith("\t") ? `${name}:${value}\r\n` : `${name}: ${value}\r\n`;
      head += "\r\n";
      const base = `dg-${file.replace(/^tests\/|\.yaml$/g, "")}-${String(n + 1).padStart(3, "0")}`;
      const source = `aws/http-desync-guardian ${file}: ${t.name} (${t.expected?.tier ?? "?"}${t.expected?.reason ? ", " + t.expected.reason : ""})`;
      // "Severe": the library's verdict is that the request must be refused (400 and close).
      const expect = t.expected?.tier === "Severe" ? [400] : undefined;
      cases.push({ id: `${base}-head`, source, parts: [head], expect });
      cases.push({ id: `${base}-chunked-probe`, source, parts: [head + "0\r\n\r\n" + PROBE(base)], expect: expect && [400] });
      const cl = headers.find(([name]) => name.toLowerCase() === "content-length");
      const len = cl ? Number(cl[1].trim()) : NaN;
      if (Number.isInteger(len) && len > 0 && len <= 64) cases.push({ id: `${base}-length-probe`, source, parts: [head + "x".repeat(len) + PROBE(base)], expect: expect && [400] });
    });
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// haproxy reg-tests/http-messaging: VTest scripts. A client block's `txreq`, `send`, `sendhex`,
// `chunked` and `chunkedlen` lines are its bytes; `delay` and `rxresp` start a new write.
// HTTP/2 clients (txpri, stream) are skipped.

/** Splits a VTest command line into words, unquoting "..." (C escapes) and {...}. */
function vtestWords(line) {
  const words = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === " " || c === "\t") { i++; continue; }
    if (c === '"') {
      let s = "";
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\") {
          const e = line[++i];
          if (e === "r") s += "\r"; else if (e === "n") s += "\n"; else if (e === "t") s += "\t";
          else if (e === "0") s += "\0";
          else if (e === "x") { s += String.fromCharCode(parseInt(line.slice(i + 1, i + 3), 16)); i += 2; }
          else s += e;
          i++;
        } else s += line[i++];
      }
      i++;
      words.push(s);
    } else if (c === "{") {
      let depth = 1, s = "";
      i++;
      while (i < line.length && depth > 0) { if (line[i] === "{") depth++; else if (line[i] === "}") depth--; if (depth > 0) s += line[i]; i++; }
      words.push(s);
    } else {
      let s = "";
      while (i < line.length && line[i] !== " " && line[i] !== "\t") s += line[i++];
      words.push(s);
    }
  }
  return words;
}

/** `txreq` as VTest renders it (vtc_http.c cmd_http_txreq): request line, headers, Content-Length for a body. */
function renderTxreq(words) {
  let method = "GET", url = "/", proto = "HTTP/1.1", body = "", nolen = false, nohost = false;
  const headers = [];
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    if (w === "-req" || w === "-method") method = words[++i];
    else if (w === "-url") url = words[++i];
    else if (w === "-proto") proto = words[++i];
    else if (w === "-hdr") headers.push(words[++i]);
    else if (w === "-body") body = words[++i];
    else if (w === "-bodylen") body = Array.from({ length: Number(words[++i]) }, (_, k) => String.fromCharCode(33 + (k % 94))).join("");
    else if (w === "-nolen") nolen = true;
    else if (w === "-nohost") nohost = true;
    else if (w === "-gzipbody" || w === "-gziplevel" || w === "-gziplen" || w === "-hdrlen") i++;
  }
  if (!nohost && proto === "HTTP/1.1" && !headers.some((h) => /^host\s*:/i.test(h))) headers.push("Host: 127.0.0.1");
  if (!nolen && body.length > 0) headers.push(`Content-Length: ${body.length}`);
  return `${method} ${url} ${proto}\r\n` + headers.map((h) => h + "\r\n").join("") + "\r\n" + body;
}

function importHaproxy(dir) {
  const cases = [];
  for (const file of repoList(dir, "reg-tests/http-messaging").filter((f) => f.endsWith(".vtc")).sort()) {
    const text = repoFile(dir, file).replace(/\\\r?\n/g, " ");
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const m = /^\s*client\s+(\S+)\s+-connect\s+\S+\s*\{\s*$/.exec(lines[i]);
      if (!m) continue;
      const parts = [];
      const expects = [];
      let current = "", h2 = false, depth = 1, j = i + 1;
      for (; j < lines.length && depth > 0; j++) {
        const l = lines[j].trim();
        if (l.startsWith("#") || l === "") continue;
        if (/^\}/.test(l)) { depth--; continue; }
        if (/\{\s*$/.test(l)) depth++;
        const words = vtestWords(l);
        const cmd = words[0];
        if (cmd === "txpri" || cmd === "stream") h2 = true;
        else if (cmd === "txreq") current += renderTxreq(words);
        else if (cmd === "send") current += words.slice(1).join("");
        else if (cmd === "sendhex") current += Buffer.from(words.slice(1).join("").replace(/\s+/g, ""), "hex").toString("latin1");
        else if (cmd === "chunked") current += `${words[1].length.toString(16)}\r\n${words[1]}\r\n`;
        else if (cmd === "chunkedlen") { const n = Number(words[1]); current += n === 0 ? "0\r\n\r\n" : `${n.toString(16)}\r\n${"c".repeat(n)}\r\n`; }
        else if (cmd === "delay" || cmd === "rxresp" || cmd === "rxresphdrs") { if (current) parts.push(current); current = ""; }
        if (cmd === "expect" && words[1] === "resp.status") expects.push(words[3]);
      }
      if (current) parts.push(current);
      i = j - 1;
      if (h2 || parts.length === 0) continue;
      let id = `haproxy-${file.replace(/^.*\/|\.vtc$/g, "")}-${m[1]}`;
      for (let k = 2; cases.some((c) => c.id === id); k++) id = id.replace(/(-\d+)?$/, `-${k}`);
      cases.push({ id, source: `haproxy/haproxy ${file}: client ${m[1]}`, parts, note: expects.length ? `HAProxy's test expects status ${expects.join(", ")}` : undefined });
    }
  }
  return cases;
}

const dg = arg("--desync-guardian");
const hap = arg("--haproxy");
if (!dg && !hap) {
  console.error("usage: node scripts/http-corpus/import.js --desync-guardian DIR --haproxy DIR");
  process.exit(2);
}
if (dg) writeCases(join(out, "desync-guardian.jsonl"), importDesyncGuardian(dg));
if (hap) writeCases(join(out, "haproxy.jsonl"), importHaproxy(hap));
