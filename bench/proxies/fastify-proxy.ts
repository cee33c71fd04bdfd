/**
 * The Node peer: @fastify/http-proxy with its defaults (undici underneath), forwarding every path
 * to one upstream. Run as a child by the benchmark:
 *   node dist/bench/proxies/fastify-proxy.js UPSTREAM_URL
 * Prints "listening on URL" once ready; exits on SIGTERM.
 */
import Fastify from "fastify";
import proxy from "@fastify/http-proxy";

const upstream = process.argv[2];
if (!upstream) {
  process.stderr.write("usage: fastify-proxy.js UPSTREAM_URL\n");
  process.exit(2);
}
const app = Fastify({ logger: false });
await app.register(proxy, { upstream });
const url = await app.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(`listening on ${url}\n`);
process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
