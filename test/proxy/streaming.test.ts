/**
 * Streaming: large bodies pass through Weir intact in both directions, with a fixed length or
 * chunked, checked end to end with SHA-256.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const SIZE = 8 * 1024 * 1024;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Ctx { up: TestUpstream; weir: TestWeir; payload: Buffer; payloadHash: string; endlessClosed?: (finished: boolean) => void }

const Streaming = suite<Ctx>("streaming");

Streaming.before(async (ctx) => {
  ctx.payload = randomBytes(SIZE);
  ctx.payloadHash = sha256(ctx.payload);
  // The upstream streams too: it hashes uploads as they arrive, sends the payload in 64 KiB writes
  // that honour backpressure, and echoes a body by piping it straight back.
  ctx.up = await startUpstream((req, res) => {
    if (req.url === "/download") {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": SIZE, "x-sha256": ctx.payloadHash });
      let offset = 0;
      const pump = () => {
        while (offset < SIZE) {
          const chunk = ctx.payload.subarray(offset, offset + 65536);
          offset += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    } else if (req.url === "/download-chunked") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      let offset = 0;
      const pump = () => {
        while (offset < SIZE) {
          const chunk = ctx.payload.subarray(offset, offset + 100_000);
          offset += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    } else if (req.url === "/endless") {
      // Writes until the connection goes away, then reports how it ended.
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, 1);
      let stop = false;
      res.on("close", () => { stop = true; ctx.endlessClosed?.(res.writableFinished); });
      const pump = () => {
        while (!stop) if (!res.write(chunk)) return void res.once("drain", pump);
      };
      pump();
    } else if (req.url === "/echo") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      void pipeline(req, res).catch(() => undefined);
    } else {
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (c: Buffer) => { hash.update(c); bytes += c.length; });
      req.on("end", () => {
        const text = JSON.stringify({ bytes, sha256: hash.digest("hex"), contentLength: req.headers["content-length"] ?? null, transferEncoding: req.headers["transfer-encoding"] ?? null });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
      });
    }
  }, { streaming: true });
  ctx.weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: ctx.up.url }] });
});
Streaming.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

Streaming("an 8 MiB request body with Content-Length reaches the upstream byte for byte", async ({ weir, payload, payloadHash }) => {
  const res = await request(`${weir.url}/upload`, { method: "POST", body: payload, headers: { "content-type": "application/octet-stream" } });
  assert.is(res.statusCode, 200);
  const seen = (await res.body.json()) as { bytes: number; sha256: string; contentLength: string | null };
  assert.is(seen.bytes, SIZE);
  assert.is(seen.contentLength, String(SIZE));
  assert.is(seen.sha256, payloadHash);
});

Streaming("an 8 MiB chunked upload reaches the upstream byte for byte", async ({ weir, payload, payloadHash }) => {
  async function* pieces() {
    for (let offset = 0; offset < SIZE; offset += 300_000) yield payload.subarray(offset, offset + 300_000);
  }
  const res = await request(`${weir.url}/upload`, { method: "PUT", body: Readable.from(pieces()) });
  assert.is(res.statusCode, 200);
  const seen = (await res.body.json()) as { bytes: number; sha256: string; transferEncoding: string | null };
  assert.is(seen.transferEncoding, "chunked");
  assert.is(seen.bytes, SIZE);
  assert.is(seen.sha256, payloadHash);
});

Streaming("an 8 MiB response body with Content-Length reaches the client byte for byte", async ({ weir, payloadHash }) => {
  const res = await request(`${weir.url}/download`);
  assert.is(res.statusCode, 200);
  assert.is(res.headers["content-length"], String(SIZE));
  const body = await readAll(res.body);
  assert.is(body.length, SIZE);
  assert.is(sha256(body), payloadHash);
  assert.is(res.headers["x-sha256"], payloadHash);
});

Streaming("an 8 MiB chunked response body reaches the client byte for byte", async ({ weir, payloadHash }) => {
  const res = await request(`${weir.url}/download-chunked`);
  assert.is(res.statusCode, 200);
  const body = await readAll(res.body);
  assert.is(body.length, SIZE);
  assert.is(sha256(body), payloadHash);
});

Streaming("an 8 MiB body echoed by the upstream comes back intact while it is still being sent", async ({ weir, payload, payloadHash }) => {
  // The upstream answers before the upload ends, so this only completes if Weir streams both
  // directions at once instead of buffering either.
  async function* pieces() {
    for (let offset = 0; offset < SIZE; offset += 256 * 1024) yield payload.subarray(offset, offset + 256 * 1024);
  }
  const res = await request(`${weir.url}/echo`, { method: "POST", body: Readable.from(pieces()) });
  assert.is(res.statusCode, 200);
  const body = await readAll(res.body);
  assert.is(body.length, SIZE);
  assert.is(sha256(body), payloadHash);
});

Streaming("a client that goes away mid-download makes Weir abort the upstream response", async (ctx) => {
  const upstreamClosed = new Promise<boolean>((r) => { ctx.endlessClosed = r; });
  const res = await request(`${ctx.weir.url}/endless`);
  assert.is(res.statusCode, 200);
  let received = 0;
  for await (const c of res.body) {
    received += (c as Buffer).length;
    if (received > 1024 * 1024) break; // leaving the loop destroys the body and the connection
  }
  // Backpressure plus the abort: the upstream stops being read and then loses its connection,
  // rather than streaming forever into a socket nobody reads.
  const finished = await upstreamClosed;
  assert.is(finished, false);
});

Streaming.run();
