/**
 * The gateway example: the two demo backends of the quickstart and Weir with
 * examples/gateway/weir.yaml, in one process. Ctrl-C stops both gracefully.
 */
import { fileURLToPath } from "node:url";
import { main } from "../../core/cli/main.js";
import { startDemoBackends } from "../quickstart/demo-backends.js";

const config = fileURLToPath(new URL("../../../examples/gateway/weir.yaml", import.meta.url));
const ports = [Number(process.env.BACKEND_1_PORT ?? 9001), Number(process.env.BACKEND_2_PORT ?? 9002)];
const backends = await startDemoBackends(ports);
console.log(`gateway: demo backends on ${ports.map((p) => `http://127.0.0.1:${p}`).join(" and ")}`);
console.log('gateway: try  curl -i -H "x-api-key: alice-key-0001" http://127.0.0.1:8080/api/orders');
const code = await main(["start", "-c", config]);
for (const b of backends) b.close();
process.exit(code);
