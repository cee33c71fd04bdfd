#!/usr/bin/env bash
# The plugin marketplace, end to end: a plugin author scaffolds, builds, tests, packs and signs a
# plugin; an operator verifies and installs it, trusts the publisher's key, and Weir serves traffic
# through it. Then a tampered copy is refused. Everything runs in a temporary directory, on free
# ports on 127.0.0.1, and is stopped by PID at the end.
#
#   bash examples/marketplace/run.sh          # from the repository root (after npm install)
#   KEEP=1 bash examples/marketplace/run.sh   # keep the working directory to look around
set -euo pipefail

ROOT=$(pwd)
if [ ! -f "$ROOT/bin/weir.js" ] || [ ! -d "$ROOT/sdk" ]; then
  echo "run me from the Weir repository root: bash examples/marketplace/run.sh" >&2
  exit 2
fi
[ -f "$ROOT/dist/core/cli/main.js" ] || node "$ROOT/scripts/build.js"

# `npx weir` does the same; calling node directly keeps the PID of the server itself.
weir() { node --no-node-snapshot "$ROOT/bin/weir.js" "$@"; }
step() { printf '\n==> %s\n' "$*"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/weir-marketplace.XXXXXX")
UPSTREAM_PID=""
WEIR_PID=""
cleanup() {
  [ -n "$WEIR_PID" ] && kill "$WEIR_PID" 2>/dev/null && wait "$WEIR_PID" 2>/dev/null || true
  [ -n "$UPSTREAM_PID" ] && kill "$UPSTREAM_PID" 2>/dev/null && wait "$UPSTREAM_PID" 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cd "$WORK"

# --- The plugin author -------------------------------------------------------------------------
step "weir plugin new hello-header (a TypeScript project with a test)"
weir plugin new hello-header

step "weir plugin build: type-check against the SDK and bundle"
weir plugin build hello-header

step "weir plugin test: the project's tests, in the real sandbox"
weir plugin test hello-header > test-output.txt 2>&1 || { cat test-output.txt; exit 1; }
grep -E '^# (pass|fail)' test-output.txt

step "weir plugin pack: compile and pack (unsigned)"
weir plugin pack hello-header/src/plugin.ts --out hello-header.weirpkg --publisher acme --description "Greets every request"

step "weir plugin keygen: the publisher's Ed25519 key pair"
weir plugin keygen --out keys

step "weir plugin sign: sign the package in place"
weir plugin sign hello-header.weirpkg --key keys/publisher.key

# --- The operator ------------------------------------------------------------------------------
step "weir plugin verify: intact and signed by acme's key"
weir plugin verify hello-header.weirpkg --key keys/publisher.pub

step "weir plugin install: verify, show the permissions, copy into ./plugins"
weir plugin install hello-header.weirpkg --dir plugins --key keys/publisher.pub

step "an upstream on a free port"
node -e '
  const http = require("node:http");
  const server = http.createServer((req, res) => {
    const body = JSON.stringify({ path: req.url, greeting: req.headers["x-greeting"] ?? null });
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  server.listen(0, "127.0.0.1", () => require("node:fs").writeFileSync("upstream.port", String(server.address().port)));
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
' &
UPSTREAM_PID=$!
for _ in $(seq 1 100); do [ -s upstream.port ] && break; sleep 0.05; done
UPSTREAM="http://127.0.0.1:$(cat upstream.port)"
echo "upstream on $UPSTREAM (pid $UPSTREAM_PID)"

write_config() { # $1: the package to use
  cat > weir.yaml <<EOF
listen: { port: 0, host: 127.0.0.1 }
admin: false
log: { access: false }
requireSigned: true            # refuse unsigned, tampered and untrusted packages
trustedPublishers:
  acme: |
$(sed 's/^/    /' keys/publisher.pub)
routes:
  - name: hello
    match: { path: / }
    upstream: $UPSTREAM
    plugins:
      - use: $1
        version: "^0.1.0"      # a replayed older version is refused
        config: { greeting: "hello from a signed package" }
EOF
}
write_config ./plugins/hello-header-0.1.0.weirpkg

step "weir validate: the package is checked under the config's trust policy"
weir validate -c weir.yaml

step "weir start"
# Not through the weir() function: `func &` would fork a subshell, and $! would be its PID.
node --no-node-snapshot "$ROOT/bin/weir.js" start -c weir.yaml > weir.log 2>&1 &
WEIR_PID=$!
URL=""
for _ in $(seq 1 200); do
  URL=$(sed -n 's/^weir: listening on \(http:[^ ]*\).*/\1/p' weir.log | head -n 1)
  [ -n "$URL" ] && break
  kill -0 "$WEIR_PID" 2>/dev/null || { cat weir.log; exit 1; }
  sleep 0.05
done
[ -n "$URL" ] || { echo "weir did not start:"; cat weir.log; exit 1; }
echo "weir on $URL (pid $WEIR_PID)"

step "curl through the signed plugin"
curl -s -i "$URL/hello" | tee response.txt
echo
grep -q '"greeting":"hello from a signed package"' response.txt || { echo "the upstream did not see the plugin's header" >&2; exit 1; }
grep -qi '^x-plugin: hello-header' response.txt || { echo "the response lacks the plugin's header" >&2; exit 1; }
echo "the upstream saw the header the plugin set: served through the signed package"

step "curl /blocked: the plugin answers itself"
curl -s -o /dev/null -w '%{http_code}\n' "$URL/blocked"

# --- What is refused ---------------------------------------------------------------------------
step "one byte of the bundle changed: verify and validate refuse it"
sed 's/blocked by hello-header/blocked bx hello-header/' plugins/hello-header-0.1.0.weirpkg > tampered.weirpkg
if weir plugin verify tampered.weirpkg --key keys/publisher.pub; then echo "a tampered package verified" >&2; exit 1; fi
cp weir.yaml weir.good.yaml
write_config ./tampered.weirpkg
if weir validate -c weir.yaml; then echo "a tampered package validated" >&2; exit 1; fi

step "the running Weir sees its config change to the tampered package: reload refused, still serving"
for _ in $(seq 1 100); do grep -q 'reload failed' weir.log && break; sleep 0.05; done
grep 'reload failed' weir.log | tail -n 1
curl -s "$URL/hello"; echo
cp weir.good.yaml weir.yaml

step "stop weir and the upstream (by PID)"
kill -TERM "$WEIR_PID"; wait "$WEIR_PID" || true; WEIR_PID=""
kill -TERM "$UPSTREAM_PID"; wait "$UPSTREAM_PID" || true; UPSTREAM_PID=""
grep -E "^weir: (SIGTERM|stopped)" weir.log
echo
echo "marketplace example: ok"
