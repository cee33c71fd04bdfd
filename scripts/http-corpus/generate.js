#!/usr/bin/env node
// Writes the generated part of the HTTP/1.1 request corpus:
//   test/fixtures/http-corpus/generated.jsonl  (families below, ids gen-<family>-<n>)
//   test/fixtures/http-corpus/rfc9112.jsonl    (the RFC's examples and MUST rules, ids rfc9112-<n>)
// Run: node scripts/http-corpus/generate.js   (deterministic: the same files every time)
//
// `expect` is written where the outcome follows from a rule stated here (see
// docs/configuration.md "Request hygiene"); other cases are checked by the test's invariants
// alone. `rule` and `nginx` are written where nginx decides differently from Weir (found with
// scripts/http-corpus/compare-nginx.js), naming the RFC rule Weir follows.
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeCases } from "./corpus-file.js";

const out = fileURLToPath(new URL("../../test/fixtures/http-corpus/", import.meta.url));
const HOST = "Host: example.com";
const msg = (line, headers = [], body = "") => `${line}\r\n${headers.map((h) => h + "\r\n").join("")}\r\n${body}`;
const probe = (tag) => msg(`GET /probe-${tag} HTTP/1.1`, [HOST]);
const CHUNKED_BODY = "3\r\nabc\r\n0\r\n\r\n";
const hex = (b) => b.toString(16).padStart(2, "0");

/** Bytes a field value may hold (RFC 9110 §5.5: VCHAR, SP, HTAB, obs-text). */
const valueByte = (b) => b === 0x09 || (b >= 0x20 && b <= 0x7e) || b >= 0x80;
/** Bytes a field name (token) may hold (RFC 9110 §5.6.2). */
const tchar = (b) => /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(String.fromCharCode(b));

const gen = [];
const add = (family, c) => gen.push({ id: `gen-${family}-${String(gen.filter((g) => g.id.startsWith(`gen-${family}-`)).length + 1).padStart(4, "0")}`, source: `scripts/http-corpus/generate.js ${family}`, ...c });

// --- 0 to 200 header fields (the lean listener's parser hands them over 32 at a time) ----------
for (let n = 0; n <= 200; n++) {
  const fields = Array.from({ length: n }, (_, i) => `X-Field-${i}: value-${i}`);
  add("header-count", { parts: [msg(`GET /count-${n} HTTP/1.1`, [HOST, ...fields])], expect: ["up"], note: `${n} header fields besides Host` });
}
for (const n of [31, 32, 33, 63, 64, 65, 100, 200]) {
  const fields = Array.from({ length: n }, (_, i) => `X-Field-${i}: v`);
  add("header-count", { parts: [msg(`POST /count-body-${n} HTTP/1.1`, [HOST, ...fields, "Content-Length: 5"], "hello") + probe(`count-${n}`)], expect: ["up", "up"] });
  add("header-count", { parts: [msg(`GET /count-first HTTP/1.1`, [HOST]) + msg(`GET /count-second-${n} HTTP/1.1`, [HOST, ...fields])], expect: ["up", "up"] });
  const trailers = Array.from({ length: n }, (_, i) => `X-Trailer-${i}: t`).join("\r\n");
  add("header-count", { parts: [msg(`POST /trailers-${n} HTTP/1.1`, [HOST, "Transfer-Encoding: chunked"], `3\r\nabc\r\n0\r\n${trailers}\r\n\r\n`) + probe(`trailers-${n}`)], expect: ["up", "up"], note: `${n} trailer fields` });
}

// --- Transfer-Encoding values ------------------------------------------------------------------
const TE_VALUES = [
  "chunked", "Chunked", "CHUNKED", "cHuNkEd", " chunked", "chunked ", "\tchunked", "chunked\t", "   chunked   ",
  "chunked,", "chunked, ", ",chunked", ", chunked", "chunked,chunked", "chunked, chunked", "gzip, chunked", "gzip,chunked",
  "deflate, chunked", "identity, chunked", "chunked, identity", "chunked, gzip", "identity", "gzip", "compress", "x-chunked",
  "chunk", "chunkedx", "\"chunked\"", "chunked;q=1.0", "chunked ;q=1", "chunked\x0b", "\x0bchunked", "chunked\x0c", "chunked\x00",
  "chunked\r", "ch unked", "chunked, ,", "", "  ", "chunked\x85", "ch\xfcnked", "trailers", "chunked\x01", "\xa0chunked",
];
for (const v of TE_VALUES) {
  // llhttp refuses a tab after the value (a refusal is the safe side of the rule).
  const ok = v.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase() === "chunked" && !v.endsWith("\t");
  add("te-value", { parts: [msg("POST /te-value HTTP/1.1", [HOST, `Transfer-Encoding: ${v}`], CHUNKED_BODY) + probe("te-value")], expect: ok ? ["up", "up"] : [400] });
}

// --- Transfer-Encoding and Content-Length names ---------------------------------------------------
const TE_NAMES = [
  ["Transfer-Encoding", "framing"], ["transfer-encoding", "framing"], ["TRANSFER-ENCODING", "framing"], ["Transfer-encoding", "framing"],
  ["TrAnSfEr-EnCoDiNg", "framing"], ["Transfer_Encoding", "refused"], ["transfer_encoding", "refused"], ["TRANSFER_ENCODING", "refused"],
  ["Transfer--Encoding", "refused"], ["Transfer---Encoding", "refused"], ["Transfer__Encoding", "refused"], ["Transfer-_Encoding", "refused"],
  ["Transfer-Encoding ", "refused"], ["Transfer-Encoding\t", "refused"], [" Transfer-Encoding", "refused"], ["\tTransfer-Encoding", "refused"],
  ["Transfer Encoding", "refused"], ["Transfer-Encoding\x00", "refused"], ["Transfer\xadEncoding", "refused"], ["\x01Transfer-Encoding", "refused"],
  ["X-Transfer-Encoding", "ordinary"], ["Transfer-Encodings", "ordinary"], ["TransferEncoding", "ordinary"], ["Transfer-Encoding-X", "ordinary"],
];
for (const [name, kind] of TE_NAMES) {
  // An ordinary header frames nothing: the chunked bytes are then the next "request", and junk.
  const expect = kind === "framing" ? ["up", "up"] : kind === "refused" ? [400] : ["up", 400];
  add("te-name", { parts: [msg("POST /te-name HTTP/1.1", [HOST, `${name}: chunked`], CHUNKED_BODY) + probe("te-name")], expect });
}
const CL_NAMES = [
  ["Content-Length", "framing"], ["content-length", "framing"], ["CONTENT-LENGTH", "framing"], ["CoNtEnT-LeNgTh", "framing"],
  ["Content_Length", "refused"], ["content_length", "refused"], ["Content--Length", "refused"], ["Content__Length", "refused"],
  ["Content-Length ", "refused"], [" Content-Length", "refused"], ["Content Length", "refused"], ["Content-Length\x00", "refused"],
  ["X-Content-Length", "ordinary"], ["Content-Lengths", "ordinary"], ["ContentLength", "ordinary"],
];
for (const [name, kind] of CL_NAMES) {
  const expect = kind === "framing" ? ["up", "up"] : kind === "refused" ? [400] : ["up", 400];
  add("cl-name", { parts: [msg("POST /cl-name HTTP/1.1", [HOST, `${name}: 5`], "hello") + probe("cl-name")], expect });
}

// --- Content-Length values ---------------------------------------------------------------------
const CL_VALUES = [
  ["5", ["up", "up"]], ["05", ["up", "up"]], ["0005", ["up", "up"]], [" 5", ["up", "up"]], ["5 ", ["up", "up"]], ["\t5", ["up", "up"]],
  ["+5", [400]], ["-5", [400]], ["5,5", [400]], ["5, 5", [400]], ["5 5", [400]], ["0x5", [400]], ["5.0", [400]], ["5e0", [400]],
  ["", [400]], ["  ", [400]], ["5\x00", [400]], ["5\x0b", [400]], ["\xd9\xa5", [400]], ["99999999999999999999", [400]],
  ["18446744073709551616", [400]], ["1" + "0".repeat(30), [400]], ["five", [400]], ["5;", [400]], ["=5", [400]],
  ["0", ["up", 400]], ["4", ["up", 400]], ["6", ["up", 400]],
];
for (const [v, expect] of CL_VALUES) add("cl-value", { parts: [msg("POST /cl-value HTTP/1.1", [HOST, `Content-Length: ${v}`], "hello") + probe("cl-value")], expect });

// --- duplicates and both framings --------------------------------------------------------------
const DUPLICATES = [
  ["Content-Length: 5", "Content-Length: 5"], ["Content-Length: 5", "Content-Length: 6"], ["Content-Length: 5", "content-length: 5"],
  ["Content-Length: 5", "Transfer-Encoding: chunked"], ["Transfer-Encoding: chunked", "Content-Length: 5"],
  ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], ["Transfer-Encoding: chunked", "Transfer-Encoding: identity"],
  ["Transfer-Encoding: identity", "Transfer-Encoding: chunked"], ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
  ["Content-Length: 5", "Transfer_Encoding: chunked"], ["Transfer-Encoding: chunked", "Content_Length: 5"],
  ["Transfer-Encoding: chunked", "Content-Length : 5"], ["Content-Length: 0", "Transfer-Encoding: chunked"],
  ["Content-Length: 5", "Content-Length: 5", "Content-Length: 5"], ["Host: example.com", "Content-Length: 5"],
];
for (const pair of DUPLICATES) {
  for (const body of ["hello", CHUNKED_BODY]) add("duplicates", { parts: [msg("POST /dup HTTP/1.1", [HOST, ...pair], body) + probe("dup")], expect: [400] });
}

// --- obs-fold (RFC 9112 §5.2: a server MUST reject or replace it; Weir rejects) ----------------
const FOLDS = [
  [HOST, "X-A: a", " b"], [HOST, "X-A: a", "\tb"], [HOST, "X-A: a", "   b"], ["Host: example.com", " .evil.example"],
  [HOST, "Transfer-Encoding: chunked", " , identity"], [HOST, "Content-Length: 5", " 5"], [HOST, "X-A:", " folded-from-empty"],
  [" X-First: folded-start", HOST], [HOST, "X-A: a", " ", "X-B: b"], [HOST, "Transfer-Encoding: gzip,", " chunked"],
];
for (const lines of FOLDS) add("obs-fold", { parts: [msg("POST /fold HTTP/1.1", lines, CHUNKED_BODY) + probe("fold")], expect: [400] });

// --- bare LF and bare CR at every line end of a head, and of a chunked body -------------------
const LINE_BASES = [
  msg("GET /line-ends HTTP/1.1", [HOST, "X-A: a", "X-B: b"]),
  msg("POST /line-ends-chunked HTTP/1.1", [HOST, "Transfer-Encoding: chunked"], "3\r\nabc\r\n0\r\n\r\n"),
];
for (const base of LINE_BASES) {
  const ends = [];
  for (let i = base.indexOf("\r\n"); i >= 0; i = base.indexOf("\r\n", i + 2)) ends.push(i);
  ends.forEach((at, k) => {
    for (const [kind, repl] of [["LF", "\n"], ["CR", "\r"]]) {
      add(`bare-${kind.toLowerCase()}`, { parts: [base.slice(0, at) + repl + base.slice(at + 2) + probe(`bare-${kind}`)], note: `line end ${k + 1} is a bare ${kind}`, expect: kind === "LF" && k === ends.length - 1 ? undefined : [400] });
    }
  });
}

// --- every byte value in a header value, a header name, the target and the method --------------
for (let b = 0; b < 256; b++) {
  const c = String.fromCharCode(b);
  add("byte-value", { parts: [msg("GET /byte-value HTTP/1.1", [HOST, `X-Byte: a${c}b`])], expect: valueByte(b) ? ["up"] : [400], note: `0x${hex(b)} in a value` });
  const nameOk = tchar(b) || b === 0x3a; // ":" just ends the name early
  add("byte-name", { parts: [msg("GET /byte-name HTTP/1.1", [HOST, `X-By${c}te: v`])], expect: nameOk ? ["up"] : [400], note: `0x${hex(b)} in a name` });
  // A control, space, DEL or non-ASCII byte is outside the request-target's grammar; "%" starts a
  // malformed escape, "\\" and "#" are refused path characters (docs/configuration.md, paths).
  const targetOk = b >= 0x21 && b < 0x7f && c !== "%" && c !== "\\" && c !== "#";
  add("byte-target", { parts: [msg(`GET /by${c}te HTTP/1.1`, [HOST])], expect: targetOk ? ["up"] : [400], note: `0x${hex(b)} in the target` });
  // llhttp knows a fixed list of methods: "GET" is the only one of these.
  add("byte-method", { parts: [msg(`G${c}T /byte-method HTTP/1.1`, [HOST])], expect: c === "E" ? ["up"] : [400], note: `0x${hex(b)} in the method` });
}

// --- versions 0.9 to 3.0 and misspellings --------------------------------------------------------
const VERSIONS = [
  "HTTP/0.9", "HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.9", "HTTP/2.0", "HTTP/2", "HTTP/3.0", "HTTP/1.10", "HTTP/01.1", "HTTP/1.01",
  "http/1.1", "Http/1.1", "HTTP/1.1 ", "HTTP/1.1\t", "HTTP /1.1", "HTTP/ 1.1", "HTTP/1", "HTTP/1.", "HTTP/11", "HTTP/0.1", "HTTP/9.9",
  "HTTP/1.1x", "HTTZ/1.1", "HTTP\\1.1", "HTTP/1,1", "HTTP/-1.1", "HTTP/1.1/", "HTTP/\xb91.1", "HTTP/1.\x00",
];
for (const v of VERSIONS) {
  const valid = v === "HTTP/1.0" || v === "HTTP/1.1";
  add("version", { parts: [msg(`GET /version ${v}`, [HOST])], expect: valid ? ["up"] : [400] });
  add("version", { parts: [msg(`GET /version ${v}`, [])], expect: v === "HTTP/1.0" ? ["up"] : [400], note: "no Host" });
  add("version", { parts: [msg(`GET /version ${v}`, [HOST, "Connection: keep-alive"]) + probe("version")], expect: valid ? ["up", "up"] : [400] });
}
add("version", { parts: ["GET /\r\n"], note: "a bare HTTP/0.9 request line" });
add("version", { parts: ["GET /\r\n\r\n"], expect: [400], note: "a bare HTTP/0.9 request line and an empty line" });
add("version", { parts: ["GET /nine\r\n" + HOST + "\r\n\r\n"], expect: [400] });
add("version", { parts: [msg("GET /ten HTTP/1.0", [HOST]) + probe("ten")], expect: ["up"], note: "HTTP/1.0 without keep-alive: the connection closes after the answer, the probe is never read" });
add("version", { parts: [msg("POST /ten-chunked HTTP/1.0", [HOST, "Transfer-Encoding: chunked"], CHUNKED_BODY) + probe("ten")], expect: [400] });
add("version", { parts: [msg("POST /ten-chunked HTTP/1.0", [HOST, "Transfer-Encoding: chunked", "Connection: keep-alive"], CHUNKED_BODY) + probe("ten")], expect: [400] });
add("version", { parts: [msg("POST /ten-both HTTP/1.0", [HOST, "Transfer-Encoding: chunked", "Content-Length: 5"], "hello") + probe("ten")], expect: [400] });
add("version", { parts: [msg("POST /ten-length HTTP/1.0", [HOST, "Content-Length: 5", "Connection: keep-alive"], "hello") + probe("ten")], expect: ["up", "up"] });

// --- absolute-form targets -------------------------------------------------------------------------
const ABSOLUTE = [
  ["http://example.com/abs", "example.com", ["up"]], ["http://EXAMPLE.com/abs", "example.com", ["up"]], ["https://example.com/abs", "example.com", ["up"]],
  ["HTTP://example.com/abs", "example.com", ["up"]], ["http://example.com", "example.com", ["up"]], ["http://example.com?q=1", "example.com", ["up"]],
  ["http://example.com:8080/abs", "example.com:8080", ["up"]], ["http://[::1]/abs", "[::1]", ["up"]], ["http://[::1]:80/abs", "[::1]:80", ["up"]],
  ["http://example.com:80/abs", "example.com", [400]], ["http://other.example/abs", "example.com", [400]], ["http://example.com/abs", "", [400]],
  ["http://:", ":", [400]], ["http://:80/abs", ":80", [400]], ["http:///abs", "", [400]], ["http://", "", [400]],
  ["http://user@example.com/abs", "user@example.com", [400]], ["http://user:pw@example.com/abs", "example.com", [400]], ["http://@example.com/", "@example.com", [400]],
  ["ftp://example.com/abs", "example.com", [400]], ["http:/example.com/abs", "example.com", [400]], ["http:example.com/abs", "example.com", [400]],
  ["//example.com/abs", "example.com", ["up"]], ["*", "example.com", [400]], ["example.com/abs", "example.com", [400]], ["http://exa mple.com/", "example.com", [400]],
  ["http://example.com#frag", "example.com", [400]], ["http://example.com/a#frag", "example.com", [400]], ["/a#frag", "example.com", [400]], ["http://ex%61mple.com/", "ex%61mple.com", [400]],
  ["http://example.com./abs", "example.com.", ["up"]], ["http://[::1/abs", "[::1", [400]], ["http://example.com:port/", "example.com:port", [400]],
];
for (const [target, host, expect] of ABSOLUTE) {
  add("absolute-form", { parts: [msg(`GET ${target} HTTP/1.1`, host === "" ? [] : [`Host: ${host}`])], expect });
  add("absolute-form", { parts: [msg(`GET ${target} HTTP/1.0`, host === "" ? [] : [`Host: ${host}`])], expect: host === "" && expect?.[0] === "up" ? [400] : expect, note: "HTTP/1.0" });
}

// --- Host values ----------------------------------------------------------------------------------
const HOSTS = [
  ["example.com", ["up"]], ["EXAMPLE.COM", ["up"]], ["example.com:80", ["up"]], ["example.com:", ["up"]], ["127.0.0.1:8080", ["up"]],
  ["[::1]", ["up"]], ["[::1]:80", ["up"]], ["[::ffff:127.0.0.1]", ["up"]], ["a_b.example", ["up"]], ["xn--bcher-kva.example", ["up"]],
  ["example.com.", ["up"]], ["ex%61mple.com", [400]], ["", [400]], [":", [400]], [":80", [400]], ["a b", [400]], ["a/b", [400]],
  ["a\\b", [400]], ["a@b", [400]], ["user@example.com", [400]], ["[::1", [400]], ["::1", [400]], ["example.com:8x", [400]],
  ["example.com:80:80", [400]], ["exa%zzmple", [400]], ["a?b", [400]], ["a#b", [400]], ["\xe9xample.com", [400]], ["[v1.fe]", [400]],
];
for (const [host, expect] of HOSTS) add("host", { parts: [msg("GET /host HTTP/1.1", [`Host: ${host}`])], expect });
add("host", { parts: [msg("GET /host HTTP/1.1", [HOST, "Host: other.example"]) + probe("host")], expect: [400] });
add("host", { parts: [msg("GET /host HTTP/1.1", [HOST, HOST]) + probe("host")], expect: [400] });
add("host", { parts: [msg("GET /host HTTP/1.1", ["X-A: 1"]) + probe("host")], expect: [400] });

// --- bodies split across two reads at every byte ---------------------------------------------------
const SPLITS = [
  [msg("POST /split-length HTTP/1.1", [HOST, "Content-Length: 11"], "hello world"), ["up"]],
  [msg("POST /split-chunked HTTP/1.1", [HOST, "Transfer-Encoding: chunked"], "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"), ["up"]],
  [msg("GET /split-a HTTP/1.1", [HOST]) + msg("POST /split-b HTTP/1.1", [HOST, "Content-Length: 3"], "abc") + msg("GET /split-c HTTP/1.1", [HOST]), ["up", "up", "up"]],
  [msg("POST /split-both HTTP/1.1", [HOST, "Content-Length: 3", "Transfer-Encoding: chunked"], "0\r\n\r\n") + probe("split"), [400]],
  [msg("POST /split-ten HTTP/1.0", [HOST, "Transfer-Encoding: chunked"], "0\r\n\r\n") + probe("split"), [400]],
];
for (const [bytes, expect] of SPLITS) {
  for (let at = 1; at < bytes.length; at++) add("split", { parts: [bytes.slice(0, at), bytes.slice(at)], expect, note: `split after byte ${at}` });
}

// --- pipelines ------------------------------------------------------------------------------------
const GOOD = (n) => msg(`GET /pipe-${n} HTTP/1.1`, [HOST]);
const BAD = msg("GET /pipe-bad HTTP/1.1", [HOST, HOST]);
const PIPELINES = [
  [[GOOD(1), GOOD(2), GOOD(3)], ["up", "up", "up"]], [[GOOD(1), BAD, GOOD(3)], ["up", 400]], [[BAD, GOOD(2)], [400]],
  [[GOOD(1), "JUNK\x01\r\n\r\n"], ["up", 400]], [[GOOD(1), "\x00"], ["up", 400]], [[GOOD(1), "GET /x HTTP/7.7\r\n\r\n"], ["up", 400]],
  [[GOOD(1), msg("GET /pipe-close HTTP/1.1", [HOST, "Connection: close"]), GOOD(3)], ["up", "up"]],
  [[msg("POST /pipe-body HTTP/1.1", [HOST, "Content-Length: 5"], "hello"), GOOD(2)], ["up", "up"]],
  [[msg("POST /pipe-body HTTP/1.1", [HOST, "Content-Length: 5"], "hel"), GOOD(2)], undefined],
  [[msg("POST /pipe-body HTTP/1.1", [HOST, "Content-Length: 3"], "hello"), GOOD(2)], ["up", 400]],
  [[GOOD(1), msg("POST /pipe-te HTTP/1.1", [HOST, "Transfer-Encoding: gzip, chunked"], "0\r\n\r\n"), GOOD(3)], ["up", 400]],
  [[GOOD(1), msg("TRACE /pipe HTTP/1.1", [HOST]), GOOD(3)], ["up", 405]],
  [[GOOD(1), msg("GET /pipe%2fbad HTTP/1.1", [HOST]), GOOD(3)], ["up", 400, "up"]],
  [[GOOD(1), msg("GET /pipe-ten HTTP/1.0", [HOST]), GOOD(3)], ["up", "up"]],
  [[...Array.from({ length: 20 }, (_, i) => GOOD(i))], Array(20).fill("up")],
];
for (const [reqs, expect] of PIPELINES) {
  add("pipeline", { parts: [reqs.join("")], expect });
  add("pipeline", { parts: reqs, expect, note: "one write per request" });
}

// --- methods -------------------------------------------------------------------------------------
for (const m of ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "MKCOL", "PURGE", "QUERY", "M-SEARCH", "LINK", "SOURCE", "ACL", "get", "Get", "FOO", "G", "GETT"]) {
  add("method", { parts: [msg(`${m} /method HTTP/1.1`, [HOST, "Content-Length: 0"])], expect: ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"].includes(m) ? ["up"] : undefined });
}
add("method", { parts: [msg("TRACE /method HTTP/1.1", [HOST]) + probe("trace")], expect: [405] });
add("method", { parts: [msg("CONNECT example.com:443 HTTP/1.1", ["Host: example.com:443"]) + probe("connect")], expect: [405] });
add("method", { parts: ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], note: "the HTTP/2 preface on an HTTP/1 port" });

// --- Expect, Connection, Upgrade --------------------------------------------------------------------
add("expect", { parts: [msg("POST /expect HTTP/1.1", [HOST, "Expect: 100-continue", "Content-Length: 5"], "hello")], expect: ["up"] });
add("expect", { parts: [msg("POST /expect HTTP/1.1", [HOST, "Expect: 100-continue", "Content-Length: 5"]), "hello"], expect: ["up"] });
add("expect", { parts: [msg("GET /expect HTTP/1.1", [HOST, "Expect: 100-continue"])], expect: ["up"] });
add("expect", { parts: [msg("POST /expect HTTP/1.1", [HOST, "Expect: 100-Continue", "Content-Length: 5"], "hello")], expect: ["up"] });
add("expect", { parts: [msg("POST /expect HTTP/1.1", [HOST, "Expect: something-else", "Content-Length: 5"], "hello")] });
for (const v of ["close", "keep-alive", "Close", "close, close", "keep-alive, close", "Content-Length", "Transfer-Encoding", "Host", "X-Secret", "upgrade"]) {
  const body = v === "Transfer-Encoding" ? CHUNKED_BODY : "hello";
  const framing = v === "Transfer-Encoding" ? "Transfer-Encoding: chunked" : "Content-Length: 5";
  add("connection", { parts: [msg("POST /connection HTTP/1.1", [HOST, `Connection: ${v}`, framing, "X-Secret: s"], body) + probe("connection")], expect: /close/i.test(v) ? ["up"] : undefined });
}
add("upgrade", { parts: [msg("GET /ws HTTP/1.1", [HOST, "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])], expect: ["up"] });
add("upgrade", { parts: [msg("POST /ws HTTP/1.1", [HOST, "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Content-Length: 0"])], expect: [400] });
add("upgrade", { parts: [msg("GET /ws HTTP/1.1", [HOST, "Connection: Upgrade", "Upgrade: websocket"])], expect: [400] });
add("upgrade", { parts: [msg("GET /h2c HTTP/1.1", [HOST, "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"])], expect: ["up"] });
add("upgrade", { parts: [msg("POST /h2c HTTP/1.1", [HOST, "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", "Content-Length: 3"], "abc")], expect: [400] });
add("upgrade", { parts: [msg("GET /ws HTTP/1.1", [HOST, "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]) + probe("ws")], note: "bytes behind an upgrade are the new protocol's, not a request" });

// --- chunked framing ----------------------------------------------------------------------------
const CHUNKS = [
  ["3\r\nabc\r\n0\r\n\r\n", true], ["03\r\nabc\r\n0\r\n\r\n", true], ["3;ext\r\nabc\r\n0\r\n\r\n", true], ["3;a=b\r\nabc\r\n0\r\n\r\n", true],
  ["3;a=\"b c\"\r\nabc\r\n0\r\n\r\n", true], ["1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", true], ["A\r\n0123456789\r\n0\r\n\r\n", true],
  ["a\r\n0123456789\r\n0\r\n\r\n", true], ["0\r\n\r\n", true], ["3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", true], ["3\r\nabc\r\n0\r\nContent-Length: 99\r\n\r\n", false],
  ["3 \r\nabc\r\n0\r\n\r\n", false], ["3\t\r\nabc\r\n0\r\n\r\n", false], ["0x3\r\nabc\r\n0\r\n\r\n", false], ["-3\r\nabc\r\n0\r\n\r\n", false],
  ["+3\r\nabc\r\n0\r\n\r\n", false], ["fffffffffffffffff\r\nabc\r\n0\r\n\r\n", false], ["\r\nabc\r\n0\r\n\r\n", false], ["3\nabc\r\n0\r\n\r\n", false],
  ["3\r\nabcd\r\n0\r\n\r\n", false], ["3\r\nabc0\r\n\r\n", false], ["3\r\nabc\n0\r\n\r\n", false], ["3\r\nabc\r\n0\r\nX-T: a\r\n b\r\n\r\n", false],
  ["3\r\nabc\r\n0\r\nX-T: 1\n\r\n", false], ["3\r\nabc\r\n0\r\nbad trailer\r\n\r\n", false], ["g\r\nabc\r\n0\r\n\r\n", false], [" 3\r\nabc\r\n0\r\n\r\n", false],
  ["3;\x01\r\nabc\r\n0\r\n\r\n", false], ["3\r\nabc\r\n 0\r\n\r\n", false],
];
for (const [body, ok] of CHUNKS) add("chunked", { parts: [msg("POST /chunked HTTP/1.1", [HOST, "Transfer-Encoding: chunked"], body) + probe("chunked")], expect: ok ? ["up", "up"] : [400] });

writeCases(join(out, "generated.jsonl"), gen);

// ---------------------------------------------------------------------------------------------
// RFC 9112 (and RFC 9110) examples and MUST rules.
const rfc = [];
const r = (section, parts, expect, note) => rfc.push({ id: `rfc9112-${String(rfc.length + 1).padStart(3, "0")}`, source: `RFC ${section}`, parts, expect, note });
r("9112 §3.2.1 (origin-form example)", ["GET /where?q=now HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], ["up"]);
r("9112 §3.2.2 (absolute-form example)", ["GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], ["up"]);
r("9112 §3.2.2 (absolute-form without Host)", ["GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\n\r\n"], [400], "§3.2: an HTTP/1.1 request without Host MUST be answered 400");
r("9112 §3.2.3 (authority-form example)", ["CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com\r\n\r\n"], [405]);
r("9112 §3.2.4 (asterisk-form example)", ["OPTIONS * HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n"], undefined);
r("9112 §3.2.4 (the same OPTIONS through a proxy)", ["OPTIONS http://www.example.org:8001 HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n"], ["up"]);
r("9110 §3.9 (example message exchange)", ["GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.64.1\r\nHost: www.example.com\r\nAccept-Language: en, mi\r\n\r\n"], ["up"]);
r("9112 §3.2 (no Host on HTTP/1.1 is 400)", ["GET /pub/WWW/ HTTP/1.1\r\n\r\n"], [400]);
r("9112 §3.2 (two Host fields are 400)", ["GET /pub/WWW/ HTTP/1.1\r\nHost: www.example.org\r\nHost: www.example.org\r\n\r\n"], [400]);
r("9112 §3.2 (a Host with an invalid value is 400)", ["GET /pub/WWW/ HTTP/1.1\r\nHost: www.example.org/evil\r\n\r\n"], [400]);
r("9112 §2.2 (whitespace between the start-line and the first field)", ["GET / HTTP/1.1\r\n Host: www.example.org\r\n\r\n"], [400]);
r("9112 §2.2 (a bare CR)", ["GET / HTTP/1.1\r\nHost: www.example.org\rX-A: 1\r\n\r\n"], [400]);
r("9112 §2.2 (bare LF line ends, which a recipient MAY accept)", ["GET / HTTP/1.1\nHost: www.example.org\n\n"], [400]);
r("9112 §2.2 (empty lines before the request-line SHOULD be ignored)", ["\r\nGET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], undefined);
r("9112 §3 (several spaces between the request-line's words, which a recipient MAY parse as one)", ["GET  /  HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], ["up"]);
r("9112 §3 (a request-line with a space in the target)", ["GET /a b HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], [400]);
r("9112 §5.1 (whitespace between a field name and the colon MUST be 400)", ["GET / HTTP/1.1\r\nHost : www.example.org\r\n\r\n"], [400]);
r("9112 §5.2 (obs-fold in a request: reject, or replace with SP)", ["GET / HTTP/1.1\r\nHost: www.example.org\r\nX-A: a\r\n b\r\n\r\n"], [400]);
r("9112 §6.1 (Transfer-Encoding with chunked last)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"], [400]);
r("9112 §6.1 (chunked not last: the length cannot be determined, 400 and close)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"], [400]);
r("9112 §6.1 (Transfer-Encoding in HTTP/1.0: faulty framing, close)", ["POST / HTTP/1.0\r\nHost: www.example.org\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"], [400]);
r("9112 §6.1 (both Transfer-Encoding and Content-Length)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nTransfer-Encoding: chunked\r\nContent-Length: 3495\r\n\r\n0\r\n\r\n"], [400]);
r("9112 §6.2 (the Content-Length example)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nContent-Length: 10\r\n\r\n0123456789"], ["up"]);
r("9112 §6.3 (an invalid Content-Length: 400 and close)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nContent-Length: 10, 11\r\n\r\n0123456789"], [400]);
r("9112 §6.3 (a list of identical Content-Length values: reject or replace)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nContent-Length: 10, 10\r\n\r\n0123456789"], [400]);
r("9112 §6.3 (a request without framing has no body)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], ["up"]);
r("9112 §7.1 (chunks, an extension, a trailer)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n"], ["up"]);
r("9112 §7.1.1 (a quoted chunk extension value)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nTransfer-Encoding: chunked\r\n\r\n4;name=\"quoted value\"\r\nWiki\r\n0\r\n\r\n"], ["up"]);
r("9112 §7.1.3 (chunk sizes in hex)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"], ["up"]);
r("9112 §9.3.2 (pipelined requests are answered in order)", ["GET /1 HTTP/1.1\r\nHost: www.example.org\r\n\r\nGET /2 HTTP/1.1\r\nHost: www.example.org\r\n\r\nGET /3 HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], ["up", "up", "up"]);
r("9112 §9.6 (Connection: close: nothing is read after that request)", ["GET /1 HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], ["up"]);
r("9112 §9.3 (HTTP/1.0 keep-alive)", ["GET /1 HTTP/1.0\r\nHost: www.example.org\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], ["up", "up"]);
r("9112 §2.3 (HTTP/1.2 is read as HTTP/1.1 by a server that speaks 1.1)", ["GET / HTTP/1.2\r\nHost: www.example.org\r\n\r\n"], [400]);
r("9112 Appendix C.1 (an HTTP/0.9 request)", ["GET /\r\n"], undefined);
r("9110 §4.2.1 (an http URI with an empty host MUST be rejected)", ["GET http://:/ HTTP/1.1\r\nHost: :\r\n\r\n"], [400]);
r("9110 §4.2.4 (userinfo SHOULD be treated as an error)", ["GET http://user:pass@www.example.org/ HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], [400]);
r("9110 §5.5 (obs-text in a field value)", ["GET / HTTP/1.1\r\nHost: www.example.org\r\nX-A: caf\xe9\r\n\r\n"], ["up"]);
r("9110 §5.5 (NUL in a field value MUST be rejected or replaced)", ["GET / HTTP/1.1\r\nHost: www.example.org\r\nX-A: a\x00b\r\n\r\n"], [400]);
r("9112 §11.2 (request smuggling: a request hidden in a body)", ["POST / HTTP/1.1\r\nHost: www.example.org\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: www.example.org\r\n\r\n"], [400]);
writeCases(join(out, "rfc9112.jsonl"), rfc);
