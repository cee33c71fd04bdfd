/**
 * Every way editors and deploy tools write a file reaches a running Weir, every time: real
 * `weir start` processes, a real plugin file and a real config file changed by each write style
 * ten times in a row, and what Weir serves checked after every change. A style that once made Weir
 * deaf (a normal save followed at once by a save that replaces the file) is among them. Each wait
 * is a poll bounded in time.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { runWeir, killGroup, type CliProcess } from "../support/cli.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";
import { pluginFixture, poll } from "./support.js";

const ROUNDS = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A file whose text carries a version `MAJOR.MINOR.PATCH`: `text(v)` is its content at version v.
 * Styles that write intermediate versions use other patch numbers (a real version ends in .0).
 */
interface Target { file: string; scratch: string; text: (v: string) => string }

const styles: [string, (t: Target, v: string) => Promise<void> | void][] = [
  ["an in-place write", ({ file, text }, v) => writeFileSync(file, text(v))],
  ["a write to a temporary file renamed over it (vim, VS Code, JetBrains safe write)", ({ file, text }, v) => {
    const tmp = `${file}.${v}.tmp`;
    writeFileSync(tmp, text(v));
    renameSync(tmp, file);
  }],
  ["sed -i", ({ file, text }, v) => {
    writeFileSync(file, text(v.replace(/\.0$/, ".98")));
    execFileSync("sed", ["-i", "s/\\.98\\b/.0/", file]);
  }],
  ["cp over it", ({ file, scratch, text }, v) => {
    writeFileSync(join(scratch, "new"), text(v));
    execFileSync("cp", [join(scratch, "new"), file]);
  }],
  ["cp followed at once by sed -i", ({ file, scratch, text }, v) => {
    writeFileSync(join(scratch, "new"), text(v.replace(/\.0$/, ".99")));
    execFileSync("sh", ["-c", `cp "$1" "$2" && sed -i 's/\\.99\\b/.0/' "$2"`, "sh", join(scratch, "new"), file]);
  }],
  ["a delete, then a create", async ({ file, text }, v) => {
    unlinkSync(file);
    await sleep(200);
    writeFileSync(file, text(v));
  }],
  ["a delete and a create at once", ({ file, text }, v) => {
    unlinkSync(file);
    writeFileSync(file, text(v));
  }],
  ["a burst of saves", async ({ file, text }, v) => {
    for (let i = 1; i <= 5; i++) {
      writeFileSync(file, text(v.replace(/\.0$/, `.${i}`)));
      await sleep(5);
    }
    writeFileSync(file, text(v));
  }],
];

/**
 * A Kubernetes ConfigMap volume in `dir`: NAME -> ..data/NAME, ..data -> a timestamped directory.
 * `swap` does what the kubelet does on an update: a new directory, a new symlink renamed over
 * ..data (atomically), then the old directory removed.
 */
function configMap(dir: string, name: string, content: string): { file: string; swap(content: string): void } {
  let n = 0;
  mkdirSync(join(dir, "..v0"));
  writeFileSync(join(dir, "..v0", name), content);
  symlinkSync("..v0", join(dir, "..data"));
  symlinkSync(join("..data", name), join(dir, name));
  return {
    file: join(dir, name),
    swap(next) {
      n++;
      mkdirSync(join(dir, `..v${n}`));
      writeFileSync(join(dir, `..v${n}`, name), next);
      symlinkSync(`..v${n}`, join(dir, "..data_tmp"));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
      rmSync(join(dir, `..v${n - 1}`), { recursive: true });
    },
  };
}

async function startCli(config: string): Promise<{ weir: CliProcess; url: string }> {
  const weir = runWeir(["start", "-c", config]);
  return { weir, url: (await weir.waitFor(/listening on (http:\/\/\S+)/))[1]! };
}

/** Waits (bounded) until `read()` returns `v`; fails naming what was written and the output. */
async function expectServed(weir: CliProcess, read: () => Promise<string>, v: string, what: string): Promise<void> {
  let last = "";
  try {
    await poll(`${what} to serve ${v}`, async () => ((last = await read()) === v ? true : undefined), 8000, 20);
  } catch {
    assert.unreachable(`${what}: still serving ${last}, expected ${v}; weir output:\n${weir.output().slice(-3000)}`);
  }
}

async function header(url: string, name: string): Promise<string> {
  const res = await request(url);
  await res.body.text();
  return String(res.headers[name]);
}

// ---------------------------------------------------------------------------------------------

const pluginSource = readFileSync(pluginFixture("versioned.ts"), "utf8");
const pluginText = (v: string) => pluginSource.replace('const VERSION = "1.0.0";', `const VERSION = "${v}";`);

const Plugin = suite<{ up: TestUpstream; weir: CliProcess; url: string; plain: Target; mapped: ReturnType<typeof configMap> }>("plugin hot reload picks up every write style, every time");

Plugin.before(async (ctx) => {
  ctx.up = await startUpstream();
  const root = tempDir("weir-write-styles-");
  for (const d of ["plugins", "scratch", "configmap"]) mkdirSync(join(root, d));
  ctx.plain = { file: join(root, "plugins", "p.ts"), scratch: join(root, "scratch"), text: pluginText };
  writeFileSync(ctx.plain.file, pluginText("0.0.1"));
  ctx.mapped = configMap(join(root, "configmap"), "p.ts", pluginText("0.0.2"));
  const config = join(root, "weir.yaml");
  writeFileSync(config, [
    "listen: { port: 0, host: 127.0.0.1 }",
    "admin: false",
    "log: { access: false }",
    "routes:",
    `  - { name: plain, match: { path: /plain }, upstream: "${ctx.up.url}", plugins: [{ use: ./plugins/p.ts }] }`,
    `  - { name: mapped, match: { path: /mapped }, upstream: "${ctx.up.url}", plugins: [{ use: ./configmap/p.ts }] }`,
    "",
  ].join("\n"));
  Object.assign(ctx, await startCli(config));
});

Plugin.after((ctx) => { killGroup(ctx.weir.child); return ctx.up.close(); });

styles.forEach(([what, write], s) => {
  Plugin(`${what}, ${ROUNDS} times in a row, is served each time`, async ({ weir, url, plain }) => {
    for (let i = 1; i <= ROUNDS; i++) {
      const v = `${s + 1}.${i}.0`;
      await write(plain, v);
      await expectServed(weir, () => header(`${url}/plain`, "x-plugin-version"), v, `${what} (round ${i})`);
    }
  });
});

Plugin(`a ConfigMap-style symlink swap, ${ROUNDS} times in a row, is served each time`, async ({ weir, url, mapped }) => {
  const read = () => header(`${url}/mapped`, "x-plugin-version");
  await expectServed(weir, read, "0.0.2", "the ConfigMap plugin at start");
  for (let i = 1; i <= ROUNDS; i++) {
    mapped.swap(pluginText(`100.${i}.0`));
    await expectServed(weir, read, `100.${i}.0`, `the symlink swap (round ${i})`);
  }
});

Plugin("after all of them, an in-place write is still served (the watcher never went deaf)", async ({ weir, url, plain }) => {
  writeFileSync(plain.file, pluginText("999.0.0"));
  await expectServed(weir, () => header(`${url}/plain`, "x-plugin-version"), "999.0.0", "the last in-place write");
});

Plugin.run();

// ---------------------------------------------------------------------------------------------

/** A config whose one route stamps its version on every response (the transform built-in). */
const configText = (upstream: string) => (v: string) => [
  "listen: { port: 0, host: 127.0.0.1 }",
  "admin: false",
  "log: { access: false }",
  "routes:",
  `  - name: r`,
  `    match: { path: / }`,
  `    upstream: "${upstream}"`,
  `    plugins: [{ use: transform, config: { response: { setHeaders: { x-config-version: "${v}" } } } }]`,
  "",
].join("\n");

const Config = suite<{ up: TestUpstream; plain: { weir: CliProcess; url: string; target: Target }; mapped: { weir: CliProcess; url: string; map: ReturnType<typeof configMap> } }>("config hot reload picks up every write style, every time");

Config.before(async (ctx) => {
  ctx.up = await startUpstream();
  const text = configText(ctx.up.url);
  const root = tempDir("weir-config-styles-");
  for (const d of ["config", "scratch", "configmap"]) mkdirSync(join(root, d));
  const target: Target = { file: join(root, "config", "weir.yaml"), scratch: join(root, "scratch"), text };
  writeFileSync(target.file, text("0.0.1"));
  const map = configMap(join(root, "configmap"), "weir.yaml", text("0.0.2"));
  const [a, b] = await Promise.all([startCli(target.file), startCli(map.file)]);
  ctx.plain = { ...a, target };
  ctx.mapped = { ...b, map };
});

Config.after(({ up, plain, mapped }) => { killGroup(plain.weir.child); killGroup(mapped.weir.child); return up.close(); });

styles.forEach(([what, write], s) => {
  Config(`${what}, ${ROUNDS} times in a row, is served each time`, async ({ plain }) => {
    for (let i = 1; i <= ROUNDS; i++) {
      const v = `${s + 1}.${i}.0`;
      await write(plain.target, v);
      await expectServed(plain.weir, () => header(plain.url, "x-config-version"), v, `${what} (round ${i})`);
    }
  });
});

Config(`a ConfigMap-style symlink swap, ${ROUNDS} times in a row, is served each time`, async ({ up, mapped }) => {
  const read = () => header(mapped.url, "x-config-version");
  await expectServed(mapped.weir, read, "0.0.2", "the ConfigMap config at start");
  for (let i = 1; i <= ROUNDS; i++) {
    mapped.map.swap(configText(up.url)(`100.${i}.0`));
    await expectServed(mapped.weir, read, `100.${i}.0`, `the symlink swap (round ${i})`);
  }
});

Config.run();
