import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Router, type Routable, type RouteMatchSpec } from "../../core/router/router.js";

/** A route as the router sees it; `id` lets a test say which one won. */
interface TestRoute extends Routable { id: string }

/** `index` is set by `router()`, from the order routes are given in. */
function route(id: string, path: string, more: Partial<Omit<RouteMatchSpec, "path">> = {}): TestRoute {
  return { id, index: -1, match: { path, hosts: more.hosts ?? [], methods: more.methods ?? [], headers: more.headers ?? {} } };
}

/** Builds a router over `routes` (indexes in the given order) and returns a lookup helper. */
function router(...routes: TestRoute[]) {
  const indexed = routes.map((r, index) => ({ ...r, index }));
  const r = new Router(indexed);
  return (path: string, opts: { method?: string; host?: string; headers?: Record<string, string> } = {}) => {
    const m = r.find(opts.method ?? "GET", opts.host ?? "localhost", path, (name) => opts.headers?.[name]);
    return m ? { id: m.route.id, params: { ...m.params }, matchedLength: m.matchedLength } : null;
  };
}

const id = (m: { id: string } | null) => m?.id ?? null;

const Prefix = suite("a path prefix matches on a segment boundary");

Prefix("/api matches /api itself", () => {
  const find = router(route("api", "/api"));
  assert.is(id(find("/api")), "api");
});

Prefix("/api matches /api/ and deeper paths", () => {
  const find = router(route("api", "/api"));
  assert.is(id(find("/api/")), "api");
  assert.is(id(find("/api/x")), "api");
  assert.is(id(find("/api/x/y/z")), "api");
});

Prefix("/api does not match /apix or /ap", () => {
  const find = router(route("api", "/api"));
  assert.is(find("/apix"), null);
  assert.is(find("/apix/y"), null);
  assert.is(find("/ap"), null);
  assert.is(find("/"), null);
});

Prefix("a pattern written with a trailing slash behaves like the one without", () => {
  const find = router(route("api", "/api/"));
  assert.is(id(find("/api")), "api");
  assert.is(id(find("/api/x")), "api");
  assert.is(find("/apix"), null);
});

Prefix("/ matches every path", () => {
  const find = router(route("all", "/"));
  for (const p of ["/", "/a", "/a/b/c", "/apix"]) assert.is(id(find(p)), "all", p);
});

Prefix("the matched length is the prefix that stripPrefix removes", () => {
  const find = router(route("api", "/api"), route("all", "/"));
  assert.is(find("/api/users")!.matchedLength, 4);
  assert.is(find("/api")!.matchedLength, 4);
  assert.is(find("/other")!.matchedLength, 0);
});

Prefix.run();

const Params = suite("a :param segment captures one segment");

Params(":id captures the segment's value", () => {
  const find = router(route("user", "/users/:id"));
  const m = find("/users/42");
  assert.is(id(m), "user");
  assert.equal(m!.params, { id: "42" });
});

Params("several parameters are captured by name", () => {
  const find = router(route("post", "/users/:user/posts/:post"));
  assert.equal(find("/users/ann/posts/7")!.params, { user: "ann", post: "7" });
  assert.is(find("/users/ann/comments/7"), null);
});

Params("a parameter never matches an empty segment or a missing one", () => {
  const find = router(route("user", "/users/:id"));
  assert.is(find("/users"), null);
  assert.is(find("/users/"), null);
});

Params("a parameter is percent-decoded, the path it came from is not", () => {
  const find = router(route("user", "/users/:id"));
  assert.equal(find("/users/a%20b")!.params, { id: "a b" });
  assert.equal(find("/users/%E2%82%AC")!.params, { id: "€" });
});

Params("a param pattern is still a prefix on a segment boundary", () => {
  const find = router(route("user", "/users/:id"));
  const m = find("/users/42/orders");
  assert.is(id(m), "user");
  assert.is(m!.matchedLength, "/users/42".length);
});

Params.run();

const Wildcard = suite("a trailing * matches the rest of the path");

Wildcard("* captures everything after its slash", () => {
  const find = router(route("files", "/files/*"));
  assert.equal(find("/files/a/b/c.txt")!.params, { "*": "a/b/c.txt" });
  assert.equal(find("/files/x")!.params, { "*": "x" });
});

Wildcard("* also matches nothing at all", () => {
  const find = router(route("files", "/files/*"));
  assert.equal(find("/files")!.params, { "*": "" });
});

Wildcard("* keeps the segment boundary before it", () => {
  const find = router(route("files", "/files/*"));
  assert.is(find("/filesystem/x"), null);
});

Wildcard("* after a parameter captures both", () => {
  const find = router(route("blob", "/repos/:repo/*"));
  assert.equal(find("/repos/weir/src/core/a.ts")!.params, { repo: "weir", "*": "src/core/a.ts" });
});

Wildcard.run();

const Hosts = suite("host conditions");

Hosts("an exact host matches only that host", () => {
  const find = router(route("api", "/", { hosts: ["api.example.com"] }));
  assert.is(id(find("/", { host: "api.example.com" })), "api");
  assert.is(find("/", { host: "www.example.com" }), null);
  assert.is(find("/", { host: "api.example.com.evil.test" }), null);
});

Hosts("hosts in config are compared case-insensitively", () => {
  const find = router(route("api", "/", { hosts: ["API.Example.com"] }));
  assert.is(id(find("/", { host: "api.example.com" })), "api");
});

Hosts("*.example.com matches any sub-domain, but not the bare domain or a look-alike", () => {
  const find = router(route("sub", "/", { hosts: ["*.example.com"] }));
  assert.is(id(find("/", { host: "a.example.com" })), "sub");
  assert.is(id(find("/", { host: "a.b.example.com" })), "sub");
  assert.is(find("/", { host: "example.com" }), null);
  assert.is(find("/", { host: "evilexample.com" }), null);
});

Hosts("a list of hosts matches any of them", () => {
  const find = router(route("both", "/", { hosts: ["a.test", "*.b.test"] }));
  assert.is(id(find("/", { host: "a.test" })), "both");
  assert.is(id(find("/", { host: "x.b.test" })), "both");
  assert.is(find("/", { host: "c.test" }), null);
});

Hosts("a route without hosts matches any host", () => {
  const find = router(route("any", "/"));
  assert.is(id(find("/", { host: "whatever.test" })), "any");
});

Hosts.run();

const Methods = suite("method conditions");

Methods("a route with methods matches only those methods", () => {
  const find = router(route("rw", "/api", { methods: ["GET", "POST"] }));
  assert.is(id(find("/api", { method: "GET" })), "rw");
  assert.is(id(find("/api", { method: "POST" })), "rw");
  assert.is(find("/api", { method: "DELETE" }), null);
});

Methods("a route without methods matches every method", () => {
  const find = router(route("any", "/api"));
  for (const method of ["GET", "PUT", "PATCH", "OPTIONS"]) assert.is(id(find("/api", { method })), "any");
});

Methods("the same path can go to different routes by method", () => {
  const find = router(route("read", "/api", { methods: ["GET"] }), route("write", "/api", { methods: ["POST", "PUT"] }));
  assert.is(id(find("/api", { method: "GET" })), "read");
  assert.is(id(find("/api", { method: "PUT" })), "write");
});

Methods.run();

const Headers = suite("header conditions");

Headers("a route with a header condition needs that exact value", () => {
  const find = router(route("v2", "/api", { headers: { "x-version": "2" } }));
  assert.is(id(find("/api", { headers: { "x-version": "2" } })), "v2");
  assert.is(find("/api", { headers: { "x-version": "3" } }), null);
  assert.is(find("/api"), null);
});

Headers("header names in config are case-insensitive", () => {
  const find = router(route("v2", "/api", { headers: { "X-Version": "2" } }));
  assert.is(id(find("/api", { headers: { "x-version": "2" } })), "v2");
});

Headers("every header condition must hold", () => {
  const find = router(route("both", "/api", { headers: { "x-a": "1", "x-b": "2" } }));
  assert.is(id(find("/api", { headers: { "x-a": "1", "x-b": "2" } })), "both");
  assert.is(find("/api", { headers: { "x-a": "1" } }), null);
});

Headers("a request without the header falls through to a less specific route", () => {
  const find = router(route("v2", "/api", { headers: { "x-version": "2" } }), route("v1", "/api"));
  assert.is(id(find("/api", { headers: { "x-version": "2" } })), "v2");
  assert.is(id(find("/api")), "v1");
});

Headers.run();

const Specificity = suite("the most specific route wins, whatever the order");

Specificity("more literal characters win: /api/users over /api", () => {
  const find = router(route("api", "/api"), route("users", "/api/users"));
  assert.is(id(find("/api/users/1")), "users");
  assert.is(id(find("/api/orders")), "api");
});

Specificity("a literal segment beats a parameter in the same place", () => {
  const find = router(route("param", "/users/:id"), route("me", "/users/me"));
  assert.is(id(find("/users/me")), "me");
  assert.is(id(find("/users/42")), "param");
});

Specificity("with the same literal text, fewer parameters win", () => {
  const find = router(route("two", "/api/:a/:b"), route("one", "/api/:a"));
  assert.is(id(find("/api/x/y")), "one");
});

Specificity("with the same literal text, a route without a wildcard beats one with it", () => {
  const find = router(route("star", "/static/*"), route("plain", "/static"));
  assert.is(id(find("/static/app.js")), "plain");
});

Specificity("with the same path, more conditions win", () => {
  const find = router(
    route("bare", "/api"),
    route("get", "/api", { methods: ["GET"] }),
    route("get-host", "/api", { methods: ["GET"], hosts: ["api.test"] }),
  );
  assert.is(id(find("/api", { method: "GET", host: "api.test" })), "get-host");
  assert.is(id(find("/api", { method: "GET", host: "other.test" })), "get");
  assert.is(id(find("/api", { method: "POST", host: "api.test" })), "bare");
});

Specificity("a longer literal path beats more conditions on a shorter one", () => {
  const find = router(route("cond", "/api", { methods: ["GET"], headers: { "x-a": "1" } }), route("long", "/api/users"));
  assert.is(id(find("/api/users", { headers: { "x-a": "1" } })), "long");
});

Specificity("a parameter route with more literal text beats a literal-indexed shorter route", () => {
  // The two live in different index buckets (first segment literal vs parameter): the rank must
  // still decide across buckets.
  const find = router(route("tenant", "/t1"), route("orders", "/:tenant/orders/list"));
  assert.is(id(find("/t1/orders/list")), "orders");
  assert.is(id(find("/t1/other")), "tenant");
});

Specificity("equally specific routes tie, and the earlier one wins", () => {
  const first = router(route("a", "/api"), route("b", "/api"));
  assert.is(id(first("/api/x")), "a");
  const swapped = router(route("b", "/api"), route("a", "/api"));
  assert.is(id(swapped("/api/x")), "b");
});

Specificity("a tie between a param route and a literal-indexed route goes to the earlier one", () => {
  const find = router(route("p", "/:x/b"), route("l", "/a/:y"));
  assert.is(id(find("/a/b")), "p");
  const swapped = router(route("l", "/a/:y"), route("p", "/:x/b"));
  assert.is(id(swapped("/a/b")), "l");
});

Specificity("no route at all gives null", () => {
  const find = router();
  assert.is(find("/"), null);
});

Specificity.run();

const Scale = suite("a thousand routes");

Scale("1,000 routes each still match the right request", () => {
  const routes: TestRoute[] = [route("catch-all", "/")];
  for (let i = 0; i < 1000; i++) {
    const kind = i % 4;
    if (kind === 0) routes.push(route(`svc-${i}`, `/svc-${i}`));
    else if (kind === 1) routes.push(route(`item-${i}`, `/svc-${i}/items/:id`));
    else if (kind === 2) routes.push(route(`host-${i}`, "/shared", { hosts: [`h${i}.example.com`] }));
    else routes.push(route(`hdr-${i}`, `/:tenant/r${i}`, { headers: { "x-route": String(i) } }));
  }
  const find = router(...routes);
  for (let i = 0; i < 1000; i++) {
    const kind = i % 4;
    if (kind === 0) {
      assert.is(id(find(`/svc-${i}/deep/path`)), `svc-${i}`);
    } else if (kind === 1) {
      const m = find(`/svc-${i}/items/x${i}`);
      assert.is(id(m), `item-${i}`);
      assert.is(m!.params["id"], `x${i}`);
    } else if (kind === 2) {
      assert.is(id(find("/shared/a", { host: `h${i}.example.com` })), `host-${i}`);
    } else {
      assert.is(id(find(`/acme/r${i}`, { headers: { "x-route": String(i) } })), `hdr-${i}`);
      assert.is(id(find(`/acme/r${i}`, { headers: { "x-route": "nope" } })), "catch-all");
    }
  }
  assert.is(id(find("/svc-1/items")), "catch-all");
  assert.is(id(find("/nothing-here")), "catch-all");
});

Scale.run();
