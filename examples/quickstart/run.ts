/**
 * `npm start`: the demo backends and Weir in one process, with the quickstart config.
 * Ctrl-C stops both gracefully. Every port can be chosen through the environment (below), and a
 * port that is taken is said in one line, with the variable that moves it.
 */
import { fileURLToPath } from "node:url";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { main } from "../../core/cli/main.js";
import { startDemoBackends } from "./demo-backends.js";

/** The quickstart's ports and the variables that choose them (weir.yaml reads the same ones). */
const PORTS = {
  weir: { variable: "PORT", fallback: 8080, what: "Weir's listener" },
  admin: { variable: "WEIR_ADMIN_PORT", fallback: 9901, what: "Weir's admin API" },
  demo1: { variable: "WEIR_DEMO_PORT_1", fallback: 9001, what: "demo backend 1" },
  demo2: { variable: "WEIR_DEMO_PORT_2", fallback: 9002, what: "demo backend 2" },
} as const;

function port(p: { variable: string; fallback: number }): number {
  const raw = process.env[p.variable];
  if (raw === undefined || raw === "") return p.fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`quickstart: ${p.variable}=${raw} is not a port (1-65535, or 0 for any free one)`);
    process.exit(1);
  }
  return n;
}

const HOW = `choose other ports with ${Object.values(PORTS).map((p) => `${p.variable}=...`).join(" ")} npm start (defaults ${Object.values(PORTS).map((p) => p.fallback).join(", ")})`;

const config = fileURLToPath(new URL("../../../examples/quickstart/weir.yaml", import.meta.url));
const demo = [PORTS.demo1, PORTS.demo2].map((p) => ({ ...p, port: port(p) }));
let backends: Server[];
try {
  backends = await startDemoBackends(demo.map((d) => d.port));
} catch (err) {
  const e = err as NodeJS.ErrnoException & { port?: number };
  const taken = demo.find((d) => d.port === e.port);
  if (e.code === "EADDRINUSE" || e.code === "EACCES") {
    const which = taken ? `port ${taken.port} (${taken.what}, ${taken.variable})` : "a demo backend's port";
    console.error(`quickstart: ${which} ${e.code === "EADDRINUSE" ? "is already in use" : "may not be used by this user"} on 127.0.0.1; ${HOW}`);
  } else {
    console.error(`quickstart: cannot start the demo backends: ${e.message}`);
  }
  process.exit(1);
}
// weir.yaml reads the same variables; a backend asked for port 0 got a free one, which Weir must use.
for (const p of Object.values(PORTS)) process.env[p.variable] = String(port(p));
backends.forEach((b, i) => { process.env[demo[i]!.variable] = String((b.address() as AddressInfo).port); });
const listen = port(PORTS.weir);
console.log(`quickstart: demo backends on ${backends.map((b) => `http://127.0.0.1:${(b.address() as AddressInfo).port}`).join(" and ")}`);
if (listen !== 0) console.log(`quickstart: try  curl -i http://127.0.0.1:${listen}/api/hello`);
const code = await main(["start", "-c", config]);
if (code !== 0) console.error(`quickstart: Weir did not start (above); if a port is taken, ${HOW}`);
for (const b of backends) b.close();
process.exit(code);
