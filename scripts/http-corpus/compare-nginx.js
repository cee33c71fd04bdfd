#!/usr/bin/env node
// Replays the HTTP/1.1 request corpus against a local nginx (proxy_pass to a recording upstream)
// and against Weir (both listeners), and lists the cases where they decide differently: one
// forwards what the other refuses, or they split a stream into different requests.
//   npm run build && node --no-node-snapshot scripts/http-corpus/compare-nginx.js [--nginx PATH] [--write]
// With --write, the differences go to test/fixtures/http-corpus/nginx-differences.jsonl: one line
// per case, {id, weir, nginx, rule}, where `rule` is the RFC rule Weir follows (from the
// RULES table below, by Weir's refusal message, or by case family). The corpus test pins Weir's
// side of each. nginx is used offline, only here; the test never needs it.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const dist = (p) => join(root, "dist", p);
if (!existsSync(dist("test/support/http-corpus.js"))) { console.error("build first: npm run build"); process.exit(2); }
const { loadCorpus, replay, shape, watchConnections } = await import(dist("test/support/http-corpus.js"));
const { startRecordingUpstream } = await import(dist("test/support/recording-upstream.js"));
const { startWeir } = await import(dist("test/support/weir.js"));

const args = process.argv.slice(2);
const nginxBin = args.includes("--nginx") ? args[args.indexOf("--nginx") + 1] : "/usr/sbin/nginx";

/** Weir's refusal messages -> the rule behind them. */
const RULES = [
  [/HPE_INVALID_HEADER_TOKEN|HPE_INVALID_CONSTANT/, "RFC 9112 §5.1, §5.2: a field line that is not `name: value` (whitespace before the colon, obs-fold, a byte outside the token or field-value grammar) is 400"],
  [/HPE_CR_EXPECTED|HPE_LF_EXPECTED|HPE_STRICT/, "RFC 9112 §2.2: a recipient MAY accept a bare LF and MUST NOT accept a bare CR; Weir accepts neither, so no server behind it can see a line end Weir did not"],
  [/HPE_INVALID_VERSION|is not supported: send HTTP/, "RFC 9112 §2.3: HTTP-version is HTTP/1.0 or HTTP/1.1 for this port; anything else is 400"],
  [/HPE_INVALID_METHOD/, "RFC 9110 §9.1: the method is a token llhttp knows"],
  [/HPE_INVALID_URL/, "RFC 9112 §3.2, RFC 3986 §2: the request-target is a URI: a byte outside its grammar (a control, a non-ASCII byte) is 400 unless percent-encoded"],
  [/fragment/, "RFC 9112 §3.2: a request-target never carries a fragment; Weir refuses \"#\" (it would route /admin#x apart from the /admin a server behind serves), nginx forwards it"],
  [/request target must be/, "RFC 9112 §3.2: the request-target is origin-form or absolute-form (Weir serves no asterisk- or authority-form)"],
  [/HPE_INVALID_CONTENT_LENGTH|HPE_UNEXPECTED_CONTENT_LENGTH|Content-Length/, "RFC 9112 §6.3: an invalid or repeated Content-Length, or one beside Transfer-Encoding, is 400 and close"],
  [/HPE_INVALID_TRANSFER_ENCODING|Transfer-Encoding/, "RFC 9112 §6.1: a Transfer-Encoding other than one final chunked (or on HTTP/1.0) is 400 and close"],
  [/HPE_INVALID_CHUNK_SIZE|HPE_INVALID_EOF_STATE/, "RFC 9112 §7.1: chunk-size is 1*HEXDIG, a chunk ends with CRLF"],
  [/Host|host|authority|userinfo/, "RFC 9112 §3.2, RFC 9110 §4.2.1, §4.2.4, §7.2: Host is one valid host[:port]; an absolute-form authority has a non-empty host, no userinfo, and agrees with Host"],
  [/expectation/, "RFC 9110 §10.1.1: an Expect other than 100-continue is 417"],
  [/not allowed/, "Weir refuses TRACE and CONNECT (405)"],
];
/** Cases Weir's message does not name the rule for, by id. */
const BY_CASE = [
  [/^(gen-upgrade-000[23]|haproxy-websocket-c2_1)$/, "RFC 6455 §4.1: a WebSocket opening handshake is a GET with Sec-WebSocket-Key; Weir refuses one without, where nginx (no upgrade configured) forwards it as a plain request"],
  [/^(gen-upgrade-0005|haproxy-protocol_upgrade-c7)$/, "RFC 9110 §7.8: Weir performs no upgrade but WebSocket; one that carries a body cannot be answered once the connection has left HTTP/1.1, so it is 400"],
  [/^gen-upgrade-0006$/, "RFC 9110 §7.8, §15.2.2: after 101 the bytes that follow belong to the new protocol: the probe behind a WebSocket upgrade is tunnelled, never parsed"],
  [/^(gen-te-value-0007|gen-cl-value-0006)$/, "RFC 9110 §5.5: whitespace around a field value is not part of it: Weir reads a leading tab as nginx reads a leading space"],
  [/^gen-byte-target-0093$/, "RFC 3986 §2: a backslash is not a URI character; Weir refuses it (servers disagree on whether it separates segments), nginx forwards it"],
  [/^gen-pipeline-002[56]$/, "RFC 3986 §2.2: %2F is data, not a separator, and servers behind a proxy disagree on it: Weir refuses it (docs/configuration.md, paths)"],
];
/** Rules read off the bytes, before the message (llhttp names the byte it tripped on, not why). */
function byBytes(bytes, message) {
  if (/looks like Content-Length or Transfer-Encoding/.test(message)) return "RFC 9112 §11.2: a name CGI-style servers read as a framing header is 400";
  if (/(^|[^\r])\n/.test(bytes)) return "RFC 9112 §2.2: a recipient MAY accept a bare LF and MUST NOT accept a bare CR; Weir accepts neither, so no server behind it can see a line end Weir did not";
  if (/^[^\r\n]* HTTP\/1\.[2-9]\r\n/.test(bytes)) return "RFC 9110 §2.5 says a recipient SHOULD read HTTP/1.2 as HTTP/1.1; llhttp refuses it, and Weir keeps that (a refusal cannot desynchronise anything)";
  if (/\r\n0\r\n(?:[^\r]*\r\n)*Content-Length:/i.test(bytes)) return "RFC 9110 §6.5.1: framing fields are not allowed in trailers; llhttp refuses a Content-Length there";
  return undefined;
}
const ruleOf = (message, c) => BY_CASE.find(([re]) => re.test(c.id))?.[1] ?? byBytes(c.parts.join(""), message) ?? (message ? RULES.find(([re]) => re.test(message))?.[1] : undefined);

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const cases = loadCorpus();
const seen = new Map();
const up = await startRecordingUpstream((r) => { const l = seen.get(r.forwardedFor); if (l) l.push(r); else seen.set(r.forwardedFor, [r]); });

const dir = mkdtempSync(join(tmpdir(), "weir-nginx-"));
const nginxPort = await freePort();
writeFileSync(join(dir, "nginx.conf"), `
worker_processes 1;
error_log ${dir}/error.log crit;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${nginxPort};
    location / {
      proxy_pass http://127.0.0.1:${up.port};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_request_buffering off;
    }
  }
}
`);
const nginx = spawn(nginxBin, ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: "inherit" });
await new Promise((r) => setTimeout(r, 500));

const weir = await startWeir({ limits: { headersTimeout: "2s", requestTimeout: "2s" }, routes: [{ name: "all", match: { path: "/" }, upstream: up.url }] });
const serverSockets = new Map();
watchConnections(weir.rt.listeners[0].server, serverSockets);

const [viaNginx, viaWeir] = [
  await replay(nginxPort, cases, { concurrency: 32, addressBase: 50, seen }),
  await replay(weir.port, cases, { concurrency: 32, addressBase: 60, seen, serverSockets }),
];
nginx.kill("SIGTERM");
await weir.stop();
await up.close();

// What was decided, request by request: passed on ("up"; for nginx a 502 too, which here means
// it passed on bytes the strict upstream could not parse), or refused (any other error status).
const decision = (o, isNginx) => o.result.answers.map(shape).map((s) => (s === "up" || (isNginx && s === 502) ? "up" : Number(s) >= 400 ? "refused" : String(s)));
const differences = [];
for (let i = 0; i < cases.length; i++) {
  const w = viaWeir[i], n = viaNginx[i];
  const dw = decision(w, false), dn = decision(n, true);
  // No answer within the wait (a request still waiting for its body): nothing decided to compare.
  if (dw.length === 0 || dn.length === 0 || JSON.stringify(dw) === JSON.stringify(dn)) continue;
  const refusal = w.result.answers.find((a) => a.upSeq === null && a.status >= 400);
  let message = "";
  try { message = JSON.parse(refusal?.body ?? "{}").error ?? ""; } catch { /* not JSON */ }
  differences.push({
    id: cases[i].id,
    weir: w.result.answers.map(shape),
    nginx: n.result.answers.map(shape),
    rule: ruleOf(message, cases[i]),
    weirMessage: message || undefined,
  });
}
for (const d of differences) console.log(JSON.stringify(d));
console.error(`${cases.length} cases, ${differences.length} where nginx 1.x and Weir decide differently`);
if (args.includes("--write")) {
  const file = join(root, "test/fixtures/http-corpus/nginx-differences.jsonl");
  const lines = differences.map(({ weirMessage: _m, ...d }) => JSON.stringify(d));
  writeFileSync(file, lines.join("\n") + "\n");
  console.error(`wrote ${file}`);
}
process.exit(0);
