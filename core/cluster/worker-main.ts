/**
 * A worker process of `workers: N` (see primary.ts). It runs a whole Weir runtime on the shared
 * listeners (node:cluster hands it connections), without an admin server or a config watcher:
 * the primary has those, and asks the worker over IPC to reload, for its metrics, and for the
 * admin answers that only a runtime knows (/routes, /upstreams, /plugins, /status). Without
 * `store.redis` its store is the primary's (ipc-store.ts), so every worker counts the same limits.
 */
import { ConfigError, formatProblem, WeirError } from "../errors.js";
import { createLogger } from "../log/logger.js";
import { runtimeAdmin } from "../admin/admin-server.js";
import { WeirRuntime } from "../server/runtime.js";
import type { FromWorker, ToWorker } from "./messages.js";

const configFile = process.env.WEIR_CONFIG_FILE!;
const index = Number(process.env.WEIR_WORKER_INDEX ?? 0);
const send = (m: FromWorker) => { if (process.connected) process.send!(m); };

async function main(): Promise<void> {
  const log = createLogger().child({ worker: index });
  let rt: WeirRuntime;
  try {
    rt = await WeirRuntime.start({ configFile, logger: log, admin: false, watchConfig: false, clusterWorker: true });
  } catch (e) {
    if (e instanceof ConfigError) for (const p of e.problems) process.stderr.write(formatProblem(p) + "\n");
    else if (e instanceof WeirError) process.stderr.write(`weir: ${e.message} [${e.code}]\n`);
    else process.stderr.write(`weir: worker ${index} failed to start: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
    process.disconnect?.();
    return;
  }
  const admin = runtimeAdmin(rt);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    rt.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // The primary is gone (killed): nobody will hand us connections or restart us; drain and leave.
  process.on("disconnect", stop);

  process.on("message", (m: ToWorker) => {
    switch (m.weir) {
      case "reload":
        rt.reload().then(
          (gen) => send({ weir: "reloaded", id: m.id, generation: gen.id }),
          (err: Error) => send({
            weir: "reload-failed", id: m.id, message: err.message,
            errors: err instanceof ConfigError ? err.problems.map((p) => `${p.file}: ${p.path || "(root)"}: ${p.message}`) : null,
          }),
        );
        break;
      case "metrics":
        void rt.metrics.json().then((metrics) => send({ weir: "metrics", id: m.id, metrics }));
        break;
      case "admin":
        void Promise.resolve(admin(m.method, m.path)).then(
          (answer) => send({ weir: "admin", id: m.id, status: answer?.[0] ?? 404, body: answer?.[1] ?? { error: `no admin endpoint ${m.method} ${m.path}` } }),
          (err: Error) => send({ weir: "admin", id: m.id, status: 500, body: { error: err.message } }),
        );
        break;
    }
  });
  send({ weir: "ready", listen: rt.addresses().listen });
}

void main();
