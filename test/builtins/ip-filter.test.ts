/** ip-filter: CIDR parsing, schema, behaviour in the sandbox, and through Weir. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isIP } from "node:net";
import { loadPlugin } from "../../core/plugin-host/testing.js";
import { CIDR_V4_PATTERN, CIDR_V6_PATTERN, matches, parseAddress, parseCidr } from "../../plugins/ip-filter/cidr.js";
import { assertNamesKey, builtin, configProblems, startGateway } from "./support.js";

const plugin = builtin("ip-filter");

const Cidrs = suite("ip-filter CIDRs");
Cidrs("parses IPv4, IPv6, compressed, IPv4-mapped and zoned addresses like node:net", () => {
  const good = ["0.0.0.0", "10.1.2.3", "255.255.255.255", "::", "::1", "2001:db8::1", "fe80::1%eth0", "::ffff:10.0.0.1", "1:2:3:4:5:6:7:8", "1::8", "1:2:3:4:5:6::", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:1.2.3.4"];
  for (const a of good) assert.ok(parseAddress(a), a);
  const bad = ["", "1.2.3", "256.1.1.1", "1.2.3.4.5", "01.2.3.4x", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1:2:3:4:5:6:7:1.2.3.4"];
  for (const a of bad) assert.is(parseAddress(a), null, a);
  // Same verdict as node:net for the plain forms (no zone, no brackets).
  for (const a of [...good, ...bad].filter((x) => !x.includes("%"))) assert.is(parseAddress(a) !== null, isIP(a) !== 0, a);
});
Cidrs("the schema patterns agree with the parser", () => {
  const v4 = new RegExp(CIDR_V4_PATTERN), v6 = new RegExp(CIDR_V6_PATTERN);
  const ok = (s: string) => v4.test(s) || v6.test(s);
  for (const c of ["10.0.0.0/8", "1.2.3.4", "0.0.0.0/0", "::/0", "2001:db8::/32", "::ffff:10.0.0.0/104", "fe80::/10", "1:2::3:4.5.6.7/128"]) {
    assert.ok(ok(c), c);
    parseCidr(c);
  }
  for (const c of ["10.0.0.0/33", "300.1.1.1", "2001:db8::/129", "1:2:3:4:5:6:7:8:9", "10.0.0.0/", "abc", "1:2:3:4:5:6:7:1.2.3.4", "1::2::3/64"]) {
    assert.not.ok(ok(c), c);
    assert.throws(() => parseCidr(c), undefined, c);
  }
});
Cidrs("matches on prefix boundaries, and IPv4-mapped addresses against IPv4 CIDRs", () => {
  const m = (c: string, a: string) => matches(parseCidr(c), parseAddress(a)!);
  assert.ok(m("10.0.0.0/8", "10.255.255.255"));
  assert.not.ok(m("10.0.0.0/8", "11.0.0.0"));
  assert.ok(m("192.168.1.128/25", "192.168.1.200"));
  assert.not.ok(m("192.168.1.128/25", "192.168.1.127"));
  assert.ok(m("10.0.0.0/8", "::ffff:10.9.9.9"));
  assert.ok(m("2001:db8::/32", "2001:db8:ffff::1"));
  assert.not.ok(m("2001:db8::/32", "2001:db9::1"));
  assert.ok(m("0.0.0.0/0", "8.8.8.8"));
  assert.not.ok(m("0.0.0.0/0", "2001:db8::1"), "an IPv4 /0 is not every IPv6 address");
  assert.ok(m("::/0", "2001:db8::1"));
  assert.ok(m("::1", "::1"));
  assert.not.ok(m("::1", "::2"));
});
Cidrs.run();

const Schema = suite("ip-filter schema");
Schema("accepts allow and deny lists", async () => {
  assert.equal(await configProblems({ use: "ip-filter", config: { allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.0.0.1"] } }), []);
});
Schema("refuses a bad CIDR naming its index, an empty config and unknown keys", async () => {
  const bad = await configProblems({ use: "ip-filter", config: { deny: ["10.0.0.0/8", "10.0.0.0/33"] } });
  assert.ok(bad.some((l) => l.startsWith("routes[0].plugins[0].config.deny[1]")), bad.join("\n"));
  const empty = await configProblems({ use: "ip-filter", config: {} });
  assert.ok(empty.length > 0 && empty.some((l) => /allow|deny/.test(l)), empty.join("\n"));
  const unknown = await configProblems({ use: "ip-filter", config: { block: ["1.2.3.4"] } });
  assertNamesKey(unknown, "config.block");
});
Schema.run();

const Behaviour = suite("ip-filter in the sandbox");
Behaviour("deny wins over allow; outside an allow list is 403", async () => {
  const p = await loadPlugin(plugin, { config: { allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.0.0.13"] } });
  try {
    assert.is((await p.request({ clientIp: "10.1.1.1" })).responded, null);
    assert.is((await p.request({ clientIp: "::ffff:10.1.1.1" })).responded, null);
    assert.is((await p.request({ clientIp: "2001:db8::7" })).responded, null);
    const denied = await p.request({ clientIp: "10.0.0.13" });
    assert.is(denied.responded?.status, 403);
    assert.type((denied.responded?.json as { error: string }).error, "string");
    assert.is((await p.request({ clientIp: "192.168.0.1" })).responded?.status, 403);
    assert.is((await p.request({ clientIp: "2001:db9::1" })).responded?.status, 403);
    assert.is((await p.request({ clientIp: "not-an-ip" })).responded?.status, 403);
  } finally { await p.close(); }
});
Behaviour("a deny-only list lets everything else through", async () => {
  const p = await loadPlugin(plugin, { config: { deny: ["203.0.113.0/24", "::1"] } });
  try {
    assert.is((await p.request({ clientIp: "203.0.113.9" })).responded?.status, 403);
    assert.is((await p.request({ clientIp: "::1" })).responded?.status, 403);
    assert.is((await p.request({ clientIp: "198.51.100.1" })).responded, null);
  } finally { await p.close(); }
});
Behaviour.run();

const Integration = suite("ip-filter through Weir");
Integration("a denied client never reaches the upstream, whatever X-Forwarded-For it sends", async () => {
  const g = await startGateway([{ use: "ip-filter", config: { deny: ["127.0.0.0/8"] } }]);
  try {
    const r = await g.get("/x", { "x-forwarded-for": "198.51.100.7" });
    assert.is(r.status, 403);
    assert.is(r.json().error, "forbidden: client address not allowed");
    assert.is(g.upstream.seen.length, 0);
  } finally { await g.close(); }
});
Integration("an allowed client goes through; behind a trusted proxy the forwarded client is checked", async () => {
  const g = await startGateway([{ use: "ip-filter", config: { allow: ["127.0.0.1", "198.51.100.0/24"] } }], { trustedProxies: ["127.0.0.1/32"] });
  try {
    assert.is((await g.get("/x")).status, 200);
    assert.is((await g.get("/x", { "x-forwarded-for": "198.51.100.7" })).status, 200);
    assert.is((await g.get("/x", { "x-forwarded-for": "203.0.113.7" })).status, 403);
    assert.is(g.upstream.seen.length, 2);
  } finally { await g.close(); }
});
Integration.run();
