/**
 * nginx in the benchmark, in two roles: the shared upstream (answers 200 "hello" itself) and a
 * proxy under test (proxy_pass with upstream keepalive). Each instance gets its own directory for
 * the config, pid, logs and temp files, so no root and no system nginx config are involved.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Child, ChildSet } from "./children.js";
import { waitForPort } from "./ports.js";

// Keep-alive connections are never closed by request count, as in Node servers; nginx's default
// (1000 requests per connection) would make wrk and the proxy reconnect in the middle of a run.
const KEEPALIVE_REQUESTS = 10_000_000;

function preamble(dir: string): string {
  const tmp = join(dir, "tmp");
  mkdirSync(tmp, { recursive: true });
  return `worker_processes 1;
daemon off;
master_process on;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 4096; multi_accept on; }
`;
}

function tempPaths(dir: string): string {
  const tmp = join(dir, "tmp");
  return ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((k) => `  ${k}_temp_path ${join(tmp, k)};`)
    .join("\n");
}

/** nginx answering every request with 200 "hello" (text/plain). */
export function helloConfig(dir: string, port: number): string {
  return `${preamble(dir)}http {
  access_log off;
${tempPaths(dir)}
  keepalive_requests ${KEEPALIVE_REQUESTS};
  keepalive_timeout 65s;
  server {
    listen 127.0.0.1:${port} reuseport;
    # The same upstream under more loopback names, for scenarios that balance over several targets.
    listen 127.0.0.2:${port} reuseport;
    listen 127.0.0.3:${port} reuseport;
    location / { default_type text/plain; return 200 "hello"; }
  }
}
`;
}

/** nginx proxying everything to `upstream` (host:port) over kept-alive HTTP/1.1 connections. */
export function proxyConfig(dir: string, port: number, upstream: string): string {
  return `${preamble(dir)}http {
  access_log off;
${tempPaths(dir)}
  keepalive_requests ${KEEPALIVE_REQUESTS};
  keepalive_timeout 65s;
  upstream backend {
    server ${upstream};
    keepalive 64;
    keepalive_requests ${KEEPALIVE_REQUESTS};
  }
  server {
    listen 127.0.0.1:${port} reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/** Writes `config` to dir/nginx.conf, starts nginx in the foreground and waits for its port. */
export async function startNginx(children: ChildSet, name: string, nginx: string, dir: string, port: number, config: string, pin?: string[]): Promise<Child> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "nginx.conf");
  writeFileSync(file, config);
  // -e: the error log before the config is read (else nginx tries /var/log/nginx/error.log).
  const child = children.start(name, nginx, ["-p", dir, "-e", join(dir, "error.log"), "-c", file], { pin });
  const ready = waitForPort(port);
  const died = new Promise<never>((_, reject) => child.proc.once("exit", (code) => reject(new Error(`${name} exited (${code}):\n${child.output().trim()}`))));
  await Promise.race([ready, died]);
  return child;
}
