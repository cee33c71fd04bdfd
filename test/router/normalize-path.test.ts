import { suite } from "uvu";
import * as assert from "uvu/assert";
import { normalizePath, PathRejection } from "../../core/router/normalize-path.js";

/** What a path becomes: its canonical form, or "refused" with the reason. */
function canonical(path: string): string {
  const out = normalizePath(path);
  return out instanceof PathRejection ? `refused: ${out.message}` : out;
}

const Canonical = suite("paths are normalised to one canonical spelling");

const table: [string, string][] = [
  // dot-segments (RFC 3986 §5.2.4)
  ["/a/../b", "/b"],
  ["/a/./b/", "/a/b/"],
  ["/a/b/..", "/a/"],
  ["/a/b/.", "/a/b/"],
  ["/a/..", "/"],
  ["/.", "/"],
  ["/a/b/../../c", "/c"],
  // escaped dots are dots: decoded once, then removed
  ["/a/%2e%2e/b", "/b"],
  ["/a/%2E%2E/b", "/b"],
  ["/a/.%2e/b", "/b"],
  ["/a/%2e/b", "/a/b"],
  // duplicate slashes collapse
  ["//b", "/b"],
  ["/a//b///c", "/a/b/c"],
  ["/a//", "/a/"],
  // unreserved characters are decoded (RFC 3986 §6.2.2.2)
  ["/%61", "/a"],
  ["/%41%5A%30%2D%5F", "/AZ0-_"],
  ["/%7e", "/~"],
  ["/%7Euser", "/~user"],
  // everything else stays escaped, with upper-case hex (§6.2.2.1)
  ["/a%3ab", "/a%3Ab"],
  ["/a%3Ab", "/a%3Ab"],
  ["/%c3%a9", "/%C3%A9"],
  ["/a%20b", "/a%20b"],
  ["/a%3fb", "/a%3Fb"],
  // decoded once only: an escaped '%' stays an escaped '%'
  ["/%252e", "/%252e"],
  ["/%252e%252e/admin", "/%252e%252e/admin"],
  ["/%2561", "/%2561"],
  // already canonical paths come back unchanged
  ["/", "/"],
  ["/api/users/42", "/api/users/42"],
  ["/api/users/", "/api/users/"],
  ["/a.b/c..d/.e", "/a.b/c..d/.e"],
  ["/~user/file-name_1.txt", "/~user/file-name_1.txt"],
];

for (const [input, expected] of table) {
  Canonical(`${input} becomes ${expected}`, () => {
    assert.is(canonical(input), expected);
  });
}

Canonical("normalising a canonical path changes nothing (idempotent)", () => {
  for (const [input] of table) {
    const once = canonical(input);
    assert.is(canonical(once), once, input);
  }
});

Canonical.run();

const Refused = suite("paths that could be read two ways are refused");

const refused: [string, string, RegExp][] = [
  ["/b%2Fc", "an escaped slash", /encoded '\/'/],
  ["/b%2fc", "an escaped slash in lower case", /encoded '\/'/],
  ["/b%5c", "an escaped backslash", /%5C/],
  ["/b%5Cc", "an escaped backslash in upper case", /%5C/],
  ["/b%00", "an escaped NUL", /NUL/],
  ["/b\u0000c", "a raw NUL", /NUL/],
  ["/%zz", "a non-hex escape", /malformed percent-escape/],
  ["/%4", "a truncated escape", /malformed percent-escape/],
  ["/a%", "a lone percent sign", /malformed percent-escape/],
  ["/%g1", "a half-hex escape", /malformed percent-escape/],
  ["/..", "a dot-dot at the root", /climbs above its root/],
  ["/a/../..", "more dot-dots than segments", /climbs above its root/],
  ["/%2e%2e", "an escaped dot-dot at the root", /climbs above its root/],
  ["/a/%2e%2e/%2e%2e/etc/passwd", "escaped dot-dots climbing out", /climbs above its root/],
  ["/a\\b", "a raw backslash", /backslash/],
  ["/..\\etc", "a raw backslash with dots", /backslash/],
  ["a/b", "a relative path", /absolute path/],
  ["", "an empty path", /absolute path/],
];

for (const [input, what, reason] of refused) {
  Refused(`${JSON.stringify(input)} (${what}) is refused`, () => {
    const out = normalizePath(input);
    assert.instance(out, PathRejection);
    assert.match((out as PathRejection).message, reason);
  });
}

Refused.run();
