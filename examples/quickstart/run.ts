/**
 * `npm start`: the demo backends and Weir in one process, with the quickstart config.
 * Ctrl-C stops both gracefully.
 */
import { fileURLToPath } from "node:url";
import { main } from "../../core/cli/main.js";
import { startDemoBackends } from "./demo-backends.js";

const config = fileURLToPath(new URL("../../../examples/quickstart/weir.yaml", import.meta.url));
const backends = await startDemoBackends();
console.log("quickstart: demo backends on http://127.0.0.1:9001 and http://127.0.0.1:9002");
console.log("quickstart: try  curl -i http://127.0.0.1:8080/api/hello");
const code = await main(["start", "-c", config]);
for (const b of backends) b.close();
process.exit(code);
