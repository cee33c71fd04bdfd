/**
 * Config validation as `weir validate` does it: read a real file, check it against the schema,
 * then the checks that need the whole config. Every problem is one `FILE: path.to.key: message`.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { generateKeyPairSync } from "node:crypto";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkConfig } from "../../core/config/compile.js";
import { loadConfigFile } from "../../core/config/loader.js";
import type { ListenConfig } from "../../core/config/schema.js";
import { ConfigError, formatProblem } from "../../core/errors.js";
import { fixturePath } from "../support/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "weir-config-test-"));
let n = 0;

/**
 * Writes `text` to a fresh file and validates it. Returns the problem lines without the leading
 * `FILE: ` (after checking that every line has it), so assertions read like the config.
 */
function problemsOf(text: string, ext = "yaml", env: NodeJS.ProcessEnv = {}): string[] {
  const file = join(dir, `config-${++n}.${ext}`);
  writeFileSync(file, text);
  let lines: string[];
  try {
    lines = checkConfig(loadConfigFile(file, env), file).map(formatProblem);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    lines = e.problems.map(formatProblem);
  }
  for (const l of lines) assert.ok(l.startsWith(`${file}: `), `"${l}" does not start with the file name`);
  return lines.map((l) => l.slice(file.length + 2));
}

/** Asserts that `lines` has a line for `key` whose message matches `message`. */
function hasProblem(lines: string[], key: string, message: RegExp | string): void {
  const found = lines.some((l) => l.startsWith(`${key}: `) && (typeof message === "string" ? l === `${key}: ${message}` : message.test(l.slice(key.length + 2))));
  assert.ok(found, `no problem "${key}: ${message}" in:\n  ${lines.join("\n  ")}`);
}

const GOOD = `
listen: { port: 8080, host: 0.0.0.0 }
admin:  { port: 9901, host: 127.0.0.1, token: "\${WEIR_ADMIN_TOKEN:-}" }
store:  { redis: "redis://127.0.0.1:6379" }
trustedProxies: [10.0.0.0/8, "::1"]
limits: { maxHeaderBytes: 16384, maxBodyBytes: 10485760, requestTimeout: 60s, headersTimeout: 10s, keepAliveTimeout: 5s }
shutdownTimeout: 10s
upstreams:
  api:
    targets: ["http://127.0.0.1:9001", { url: "http://127.0.0.1:9002", weight: 3 }]
    balance: round-robin
    healthCheck: { path: /health, interval: 1s, timeout: 500ms, healthyAfter: 2, unhealthyAfter: 2 }
    outlier: { consecutiveFailures: 5, ejectFor: 30s, maxEjectedPercent: 50 }
    retries: { attempts: 2, budgetPercent: 20 }
    timeouts: { connect: 2s, response: 30s, idle: 60s }
routes:
  - name: users
    match: { path: /api, host: api.example.com, methods: [GET, POST], headers: { x-version: "2" } }
    upstream: api
    stripPrefix: true
  - name: direct
    match: { path: /direct, host: ["*.example.com", example.com] }
    upstream: "https://127.0.0.1:9443"
    preserveHost: true
    timeouts: { response: 250 }
`;

const Accepted = suite("a valid config is accepted");

Accepted("the complete example (without plugins) has no problems", () => {
  assert.equal(problemsOf(GOOD), []);
});

Accepted("an empty file is a valid config: every key has a default", () => {
  assert.equal(problemsOf(""), []);
});

Accepted("admin: false turns the admin server off and is valid", () => {
  assert.equal(problemsOf("admin: false\n"), []);
});

Accepted("listen may be a list of listeners", () => {
  assert.equal(problemsOf("listen: [{ port: 8080 }, { port: 8081, host: 127.0.0.1 }]\n"), []);
});

Accepted.run();

const Every = suite("every problem is reported, each as FILE: path.to.key: message");

Every("a file with many mistakes gets one line for each, not just the first", () => {
  const lines = problemsOf(`
listen: { port: 70000 }
limtis: {}
limits: { requestTimeout: "5 seconds" }
upstreams:
  api:
    targets: ["http://127.0.0.1:9001"]
    balance: fastest
routes:
  - match: { path: api }
    upstream: api
`);
  hasProblem(lines, "listen.port", "must be <= 65535");
  hasProblem(lines, "limtis", /^unknown key \(did you mean "limits"\?\)/);
  hasProblem(lines, "limits.requestTimeout", /^must be a duration such as "250ms", "2s", "1m" or a number of milliseconds/);
  hasProblem(lines, "upstreams.api.balance", "must be one of: round-robin, least-conn, p2c-ewma, hash, random");
  hasProblem(lines, "routes[0].match.path", 'must start with "/"');
  assert.is(lines.length, 5, lines.join("\n"));
});

Every("several semantic problems are reported together", () => {
  const lines = problemsOf(`
limits: { requestTimeout: 1s, headersTimeout: 2s }
upstreams:
  api: { targets: ["ftp://127.0.0.1:21"] }
routes:
  - { name: a, upstream: nowhere }
  - { name: a, upstream: api }
`);
  hasProblem(lines, "limits.headersTimeout", "must not be longer than limits.requestTimeout");
  hasProblem(lines, "upstreams.api.targets[0]", /must be an http:\/\/ or https:\/\/ URL/);
  hasProblem(lines, "routes[0].upstream", /unknown upstream "nowhere"/);
  hasProblem(lines, "routes[1].name", /"a" is already the name of routes\[0\]/);
  assert.is(lines.length, 4, lines.join("\n"));
});

Every("a problem at the root says (root)", () => {
  assert.equal(problemsOf("- a\n- b\n"), ["(root): must be object"]);
});

Every.run();

const UnknownKeys = suite("unknown keys are errors, with a suggestion when one is close");

UnknownKeys("at the top level", () => {
  hasProblem(problemsOf("routs: []\n"), "routs", /^unknown key \(did you mean "routes"\?\); expected one of: listen, admin, .*routes/);
});

UnknownKeys("inside listen and admin (objects that may also be a list or false)", () => {
  const lines = problemsOf("listen: { port: 1, hots: x }\nadmin: { tokn: x }\n");
  hasProblem(lines, "listen.hots", 'unknown key (did you mean "host"?); expected one of: port, host, tls');
  hasProblem(lines, "admin.tokn", 'unknown key (did you mean "token"?); expected one of: port, host, token');
});

UnknownKeys("inside an item of a listen list", () => {
  hasProblem(problemsOf("listen: [{ port: 1 }, { port: 2, tsl: {} }]\n"), "listen[1].tsl", /^unknown key \(did you mean "tls"\?\)/);
});

UnknownKeys("inside an upstream and its nested objects", () => {
  const lines = problemsOf(`
upstreams:
  api:
    targets: [{ url: "http://127.0.0.1:9001", wieght: 2 }]
    balanse: round-robin
    healthCheck: { pth: /health }
    timeouts: { conect: 1s }
`);
  hasProblem(lines, "upstreams.api.targets[0].wieght", /^unknown key \(did you mean "weight"\?\)/);
  hasProblem(lines, "upstreams.api.balanse", /^unknown key \(did you mean "balance"\?\)/);
  hasProblem(lines, "upstreams.api.healthCheck.pth", /^unknown key \(did you mean "path"\?\)/);
  hasProblem(lines, "upstreams.api.timeouts.conect", /^unknown key \(did you mean "connect"\?\)/);
});

UnknownKeys("inside a route, its match and its plugin entries", () => {
  const lines = problemsOf(`
routes:
  - upstream: "http://127.0.0.1:9001"
    stripprefix: true
    match: { pth: /x }
    plugins: [{ use: cors, confg: {} }]
`);
  hasProblem(lines, "routes[0].stripprefix", /^unknown key \(did you mean "stripPrefix"\?\)/);
  hasProblem(lines, "routes[0].match.pth", /^unknown key \(did you mean "path"\?\)/);
  hasProblem(lines, "routes[0].plugins[0].confg", /^unknown key \(did you mean "config"\?\)/);
});

UnknownKeys("a key like nothing known gets the list of keys, without a guess", () => {
  const lines = problemsOf("limits: { zzzzzzzzzz: 1 }\n");
  hasProblem(lines, "limits.zzzzzzzzzz", "unknown key; expected one of: maxHeaderBytes, maxBodyBytes, requestTimeout, headersTimeout, keepAliveTimeout");
});

UnknownKeys.run();

const Values = suite("values out of range or of the wrong kind");

Values("bad durations name the key and the accepted forms", () => {
  const lines = problemsOf(`
limits: { requestTimeout: "5 seconds", headersTimeout: 0, keepAliveTimeout: "-1s" }
shutdownTimeout: 10sec
upstreams:
  api: { targets: ["http://127.0.0.1:9001"], timeouts: { connect: "2", response: true } }
`);
  for (const key of ["limits.requestTimeout", "limits.headersTimeout", "limits.keepAliveTimeout", "shutdownTimeout", "upstreams.api.timeouts.connect", "upstreams.api.timeouts.response"])
    hasProblem(lines, key, /^must be a duration such as "250ms", "2s", "1m" or a number of milliseconds/);
  assert.is(lines.length, 6, lines.join("\n"));
});

Values("durations may be ms, s, m, h, fractions, or a number of milliseconds", () => {
  assert.equal(problemsOf("limits: { requestTimeout: 1.5s, headersTimeout: 250ms, keepAliveTimeout: 0 }\nshutdownTimeout: 1m\nupstreams: { a: { targets: [\"http://h\"], timeouts: { idle: 1h, connect: 750 } } }\n"), []);
});

Values("bad ports are refused wherever a port is written", () => {
  const lines = problemsOf("listen: [{ port: 70000 }, { port: -1 }, { port: http }, { port: 80.5 }]\nadmin: { port: 65536 }\n");
  hasProblem(lines, "listen[0].port", "must be <= 65535");
  hasProblem(lines, "listen[1].port", "must be >= 0");
  hasProblem(lines, "listen[2].port", "must be integer");
  hasProblem(lines, "listen[3].port", "must be integer");
  hasProblem(lines, "admin.port", "must be <= 65535");
});

Values("a listener without a port says the port is required", () => {
  hasProblem(problemsOf("listen: { host: 127.0.0.1 }\n"), "listen.port", "is required");
});

Values("a value of the wrong shape gets the description of the accepted forms", () => {
  const lines = problemsOf("listen: 8080\nadmin: true\nworkers: two\n");
  hasProblem(lines, "listen", "must be a listener {port, host?, tls?} or a list of them");
  hasProblem(lines, "admin", "must be {port?, host?, token?} or false to turn the admin server off");
  hasProblem(lines, "workers", /^must be "auto" or a number of worker processes/);
});

Values("an unknown balance lists the known ones", () => {
  hasProblem(problemsOf("upstreams: { a: { targets: [\"http://h\"], balance: fastest } }\n"), "upstreams.a.balance", "must be one of: round-robin, least-conn, p2c-ewma, hash, random");
});

Values("hashOn without balance: hash is refused", () => {
  const lines = problemsOf("upstreams:\n  a: { targets: [\"http://h\"], hashOn: ip }\n  b: { targets: [\"http://h\"], balance: round-robin, hashOn: \"header:x-user\" }\n");
  hasProblem(lines, "upstreams.a.hashOn", "only applies with balance: hash");
  hasProblem(lines, "upstreams.b.hashOn", "only applies with balance: hash");
});

Values("a malformed hashOn says which forms are allowed", () => {
  hasProblem(problemsOf("upstreams: { a: { targets: [\"http://h\"], balance: hash, hashOn: \"header:\" } }\n"), "upstreams.a.hashOn", 'must be "header:NAME", "cookie:NAME", "ip" or "path"');
});

Values("zero, negative, fractional and huge weights are refused", () => {
  const lines = problemsOf(`
upstreams:
  a:
    targets:
      - { url: "http://127.0.0.1:1", weight: 0 }
      - { url: "http://127.0.0.1:2", weight: -3 }
      - { url: "http://127.0.0.1:3", weight: 2.5 }
      - { url: "http://127.0.0.1:4", weight: 1001 }
`);
  hasProblem(lines, "upstreams.a.targets[0].weight", "must be >= 1");
  hasProblem(lines, "upstreams.a.targets[1].weight", "must be >= 1");
  hasProblem(lines, "upstreams.a.targets[2].weight", "must be integer");
  hasProblem(lines, "upstreams.a.targets[3].weight", "must be <= 1000");
});

Values("an upstream needs at least one target", () => {
  const lines = problemsOf("upstreams:\n  a: { targets: [] }\n  b: {}\n");
  hasProblem(lines, "upstreams.a.targets", /fewer than 1 items/);
  hasProblem(lines, "upstreams.b.targets", "is required");
});

Values("upstream names are restricted to a safe alphabet", () => {
  hasProblem(problemsOf("upstreams: { \"my api\": { targets: [\"http://h\"] } }\n"), "upstreams", /names may use only letters, digits/);
});

Values("route conditions: a path must start with /, methods are upper-case", () => {
  const lines = problemsOf("routes:\n  - { upstream: \"http://h\", match: { path: api, methods: [get] } }\n");
  hasProblem(lines, "routes[0].match.path", 'must start with "/"');
  hasProblem(lines, "routes[0].match.methods[0]", "must be an upper-case HTTP method such as GET");
});

Values("a route needs an upstream", () => {
  hasProblem(problemsOf("routes:\n  - { name: a }\n"), "routes[0].upstream", "is required");
});

Values("store.redis must be a redis URL", () => {
  hasProblem(problemsOf("store: { redis: \"127.0.0.1:6379\" }\n"), "store.redis", "must be a redis:// or rediss:// URL");
});

Values.run();

const Targets = suite("targets must be http(s) origins");

Targets("a target that is not an http(s) URL is refused", () => {
  const lines = problemsOf(`
upstreams:
  a: { targets: ["ftp://127.0.0.1:21", "127.0.0.1:9001", "not a url", { url: "ws://127.0.0.1:1" }] }
`);
  hasProblem(lines, "upstreams.a.targets[0]", '"ftp://127.0.0.1:21" must be an http:// or https:// URL');
  // "127.0.0.1:9001" parses as a URL with the scheme "127.0.0.1:"
  hasProblem(lines, "upstreams.a.targets[1]", /must be an http:\/\/ or https:\/\/ URL|is not a URL/);
  hasProblem(lines, "upstreams.a.targets[2]", '"not a url" is not a URL; write it like http://127.0.0.1:9001');
  hasProblem(lines, "upstreams.a.targets[3].url", '"ws://127.0.0.1:1" must be an http:// or https:// URL');
});

Targets("a target with a path, query or credentials is refused", () => {
  const lines = problemsOf(`
upstreams:
  a: { targets: ["http://127.0.0.1:9001/api", "http://127.0.0.1:9002?x=1", "http://user:pw@127.0.0.1:9003", "http://127.0.0.1:9004/"] }
`);
  hasProblem(lines, "upstreams.a.targets[0]", /must be an origin without a path or query/);
  hasProblem(lines, "upstreams.a.targets[1]", /must be an origin without a path or query/);
  hasProblem(lines, "upstreams.a.targets[2]", /must not contain credentials/);
  assert.is(lines.length, 3, "a trailing slash alone is fine:\n" + lines.join("\n"));
});

Targets("a route's upstream given as a URL follows the same rules", () => {
  const lines = problemsOf("routes:\n  - { upstream: \"http://127.0.0.1:9001/v1\" }\n  - { upstream: \"gopher://h\" }\n  - { upstream: \"https://h:8443\" }\n");
  hasProblem(lines, "routes[0].upstream", /must be an origin without a path/);
  hasProblem(lines, "routes[1].upstream", /must be an http:\/\/ or https:\/\/ URL/);
  assert.is(lines.length, 2, lines.join("\n"));
});

Targets.run();

const Semantics = suite("checks that need the whole config");

Semantics("a route naming an unknown upstream lists the defined ones", () => {
  const lines = problemsOf("upstreams: { api: { targets: [\"http://h\"] }, web: { targets: [\"http://h\"] } }\nroutes:\n  - { upstream: apii }\n");
  hasProblem(lines, "routes[0].upstream", 'unknown upstream "apii"; define it under upstreams (defined: api, web) or give a URL such as http://127.0.0.1:9001');
});

Semantics("duplicate route names are refused, naming the first", () => {
  const lines = problemsOf("routes:\n  - { name: users, upstream: \"http://h\" }\n  - { name: other, upstream: \"http://h\" }\n  - { name: users, upstream: \"http://h\" }\n");
  assert.equal(lines, ['routes[2].name: "users" is already the name of routes[0]']);
});

Semantics("limits.headersTimeout longer than requestTimeout is refused", () => {
  hasProblem(problemsOf("limits: { requestTimeout: 5s, headersTimeout: 6000 }\n"), "limits.headersTimeout", "must not be longer than limits.requestTimeout");
  assert.equal(problemsOf("limits: { requestTimeout: 5s, headersTimeout: 5000 }\n"), []);
});

Semantics("an unreadable TLS certificate or key file is named", () => {
  const missing = join(dir, "no-such-cert.pem");
  const lines = problemsOf(`listen: { port: 8443, tls: { cert: "${missing}", key: "${join(dir, "no-such-key.pem")}" } }\n`);
  hasProblem(lines, "listen.tls.cert", `cannot read the file "${missing}"`);
  hasProblem(lines, "listen.tls.key", /cannot read the file ".*no-such-key\.pem"/);
});

Semantics("tls needs both cert and key", () => {
  hasProblem(problemsOf("listen: { port: 8443, tls: { cert: x.pem } }\n"), "listen.tls.key", "is required");
});

Semantics("trustedProxies entries must be addresses or CIDR ranges", () => {
  const lines = problemsOf("trustedProxies: [10.0.0.0/8, 10.0.0.0/33, proxy.local, \"::1/129\"]\n");
  hasProblem(lines, "trustedProxies[1]", /invalid prefix length \(0-32\)/);
  hasProblem(lines, "trustedProxies[2]", /is not an IP address or CIDR range/);
  hasProblem(lines, "trustedProxies[3]", /invalid prefix length \(0-128\)/);
  assert.is(lines.length, 3);
});

Semantics("a certificate file that is not PEM is refused at validate, not at start", () => {
  const junk = join(dir, "junk.pem");
  writeFileSync(junk, "not a certificate\n");
  hasProblem(problemsOf(`listen: { port: 8443, tls: { cert: "${junk}", key: "${junk}" } }\n`), "listen.tls", /^cannot use this certificate and key: /);
});

Semantics("a key that does not belong to the certificate is refused", () => {
  const otherKey = join(dir, "other-key.pem");
  writeFileSync(otherKey, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }));
  hasProblem(problemsOf(`listen: { port: 8443, tls: { cert: "${fixturePath("tls", "cert.pem")}", key: "${otherKey}" } }\n`), "listen.tls", /^cannot use this certificate and key: /);
});

Semantics("relative TLS paths are read from the config file's directory", () => {
  const tlsDir = mkdtempSync(join(dir, "tls-"));
  copyFileSync(fixturePath("tls", "cert.pem"), join(tlsDir, "cert.pem"));
  copyFileSync(fixturePath("tls", "key.pem"), join(tlsDir, "key.pem"));
  const file = join(tlsDir, "weir.yaml");
  writeFileSync(file, "listen: { port: 8443, tls: { cert: cert.pem, key: ./key.pem } }\n");
  const config = loadConfigFile(file, {});
  assert.equal(checkConfig(config, file), []);
  assert.equal((config.listen as ListenConfig).tls, { cert: join(tlsDir, "cert.pem"), key: join(tlsDir, "key.pem") });
});

Semantics("a route path in a non-canonical spelling, which could never match, is refused with the fix", () => {
  const lines = problemsOf(`
routes:
  - { upstream: "http://h", match: { path: "/a//b" } }
  - { upstream: "http://h", match: { path: "/%7Euser/:id" } }
  - { upstream: "http://h", match: { path: "/v1/./users" } }
  - { upstream: "http://h", match: { path: "/a/../.." } }
  - { upstream: "http://h", match: { path: "/files%2Fx" } }
  - { upstream: "http://h", match: { path: "/files/*" } }
  - { upstream: "http://h", match: { path: "/users/:id/" } }
  - { upstream: "http://h", match: { path: "/caf%C3%A9" } }
`);
  assert.equal(lines, [
    'routes[0].match.path: is not in canonical form and would never match; write "/a/b"',
    'routes[1].match.path: is not in canonical form and would never match; write "/~user/:id"',
    'routes[2].match.path: is not in canonical form and would never match; write "/v1/users"',
    "routes[3].match.path: cannot match any request: the path climbs above its root with '..'",
    "routes[4].match.path: cannot match any request: the path contains an encoded '/' or '\\' (%2F, %5C), which is refused",
  ]);
});

Semantics("a route host with a port, a scheme or a misplaced * is refused", () => {
  const lines = problemsOf(`
routes:
  - { upstream: "http://h", match: { host: "api.example.com:8080" } }
  - { upstream: "http://h", match: { host: ["ok.example.com", "https://api.example.com", "a.*.example.com", "*.example.com", "127.0.0.1", "[::1]"] } }
`);
  assert.equal(lines, [
    `routes[0].match.host: "api.example.com:8080" must be a host name without a port (routes match the Host header's name only)`,
    'routes[1].match.host[1]: "https://api.example.com" must be a host name, not a URL',
    'routes[1].match.host[2]: "a.*.example.com" must be a host name such as api.example.com, or *.example.com for every sub-domain',
  ]);
});

Semantics.after(() => rmSync(dir, { recursive: true, force: true }));
Semantics.run();
