/**
 * Backpressure end to end: a client that stops reading makes Weir stop reading the upstream, so a
 * large response is never buffered whole in the proxy's memory; when the client reads again, every
 * byte arrives.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "node:net";
import { once } from "node:events";
import { startUpstream } from "../support/upstream.js";
import { startWeir } from "../support/weir.js";

const TOTAL = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

const Backpressure = suite("backpressure");

Backpressure("a client that stops reading holds the upstream back instead of filling the proxy's memory", async () => {
  let produced = 0;
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": TOTAL });
    const pump = () => {
      while (produced < TOTAL) {
        produced += CHUNK.length;
        if (!res.write(CHUNK)) { res.once("drain", pump); return; }
      }
      res.end();
    };
    pump();
  });
  const weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url }] });
  const socket = connect(weir.port, "127.0.0.1");
  try {
    await once(socket, "connect");
    let received = 0;
    socket.on("data", (d: Buffer) => { received += d.length; });
    // The client never reads until told to: over loopback 64 MiB would otherwise pass in moments.
    socket.pause();
    const before = process.memoryUsage();
    socket.write(`GET /big HTTP/1.1\r\nHost: 127.0.0.1:${weir.port}\r\nConnection: close\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 1000));
    const after = process.memoryUsage();
    const producedWhilePaused = produced;
    // Socket buffers on both hops hold a few MiB at most; without backpressure the whole 64 MiB
    // would have been produced and held.
    assert.ok(producedWhilePaused < TOTAL / 2, `the upstream produced ${producedWhilePaused} of ${TOTAL} bytes while the client was not reading`);
    const grown = (after.arrayBuffers + after.external) - (before.arrayBuffers + before.external);
    assert.ok(grown < 24 * 1024 * 1024, `buffers grew by ${grown} bytes while the client was paused`);
    socket.resume();
    await once(socket, "close");
    assert.ok(received > TOTAL, `received ${received} bytes (body and head)`);
  } finally {
    socket.destroy();
    await weir.stop();
    await up.close();
  }
});

Backpressure.run();
