/**
 * A recording upstream: a raw TCP server on 127.0.0.1 with a strict HTTP/1.1 request parser of
 * its own (Content-Length or chunked bodies, nothing else). It records every whole request it
 * receives, in order, and answers each with `x-up-seq: N` so that a client can tell which of its
 * answers came from the upstream and from which request. Anything it cannot parse the way Weir
 * should have framed it (a smuggled request, two framings, a bare LF) is written to `problems`
 * and the connection is closed: a test then knows Weir sent something an upstream could misread.
 * A WebSocket upgrade is accepted (101, with `x-up-seq`) and the connection then ended.
 * It uses no HTTP library on purpose: node:http would parse it with the same llhttp as Weir.
 */
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import { createHash } from "node:crypto";

export interface RecordedRequest {
  /** 1, 2, ... in the order the requests were complete; sent back as `x-up-seq`. */
  seq: number;
  method: string;
  target: string;
  /** Names lower-cased, in the order received. */
  headers: [string, string][];
  body: Buffer;
  /** The X-Forwarded-For Weir set (the client's address for a client Weir does not trust). */
  forwardedFor: string;
}

export interface RecordingUpstream {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** What could not be parsed, with the bytes around it. */
  problems: string[];
  /** Request heads received whose body has not ended (yet). */
  readonly partial: number;
  close(): Promise<void>;
}

const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\s]+) HTTP\/1\.1$/;
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/;
const FIELD_VALUE_OK = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * `onRequest` is told of each whole request as it is recorded; `onProgress` of the client
 * (X-Forwarded-For) whose request is still arriving, each time some of it does (a large body
 * streamed through a busy proxy takes a while, and is not lost meanwhile).
 */
export async function startRecordingUpstream(onRequest?: (r: RecordedRequest) => void, onProgress?: (forwardedFor: string) => void): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = [];
  const problems: string[] = [];
  const sockets = new Set<Socket>();
  let partial = 0;

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    let buf: Buffer = Buffer.alloc(0);
    let inBody = false;
    let switched = false;
    /** The client of the request being received on this connection ("" between requests). */
    let receiving = "";
    const fail = (why: string, at: number) => {
      problems.push(`${why}: ${JSON.stringify(buf.subarray(Math.max(0, at - 80), at + 80).toString("latin1"))}`);
      if (inBody) partial--;
      inBody = false;
      socket.destroy();
    };
    socket.on("close", () => { sockets.delete(socket); if (inBody) partial--; inBody = false; });
    socket.on("data", (d: Buffer) => {
      if (switched) return; // the new protocol's bytes, not requests
      if (receiving !== "") onProgress?.(receiving);
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) {
          if (buf.length > 65536) fail("a head without an end", 0);
          return;
        }
        const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
        if (lines.some((l) => l.includes("\n") || l.includes("\r"))) return fail("a bare CR or LF in the head", end);
        const rl = REQUEST_LINE.exec(lines[0]!);
        if (!rl) return fail("a malformed request line", 0);
        const headers: [string, string][] = [];
        let length = -1, chunked = false, forwardedFor = "";
        for (const line of lines.slice(1)) {
          const f = FIELD.exec(line);
          if (!f || !FIELD_VALUE_OK.test(f[2]!)) return fail(`a malformed header line ${JSON.stringify(line)}`, 0);
          const name = f[1]!.toLowerCase();
          const value = f[2]!;
          headers.push([name, value]);
          if (name === "content-length") {
            if (length !== -1 || !/^\d+$/.test(value)) return fail("a second or malformed Content-Length", 0);
            length = Number(value);
          } else if (name === "transfer-encoding") {
            if (chunked || value.toLowerCase() !== "chunked") return fail(`Transfer-Encoding ${JSON.stringify(value)}`, 0);
            chunked = true;
          } else if (name === "x-forwarded-for") {
            forwardedFor = value;
          }
        }
        if (chunked && length !== -1) return fail("both Content-Length and Transfer-Encoding", 0);
        if (!inBody) { inBody = true; partial++; receiving = forwardedFor; onProgress?.(receiving); }
        let at = end + 4;
        let body: Buffer;
        if (chunked) {
          const parts: Buffer[] = [];
          for (;;) {
            const lineEnd = buf.indexOf("\r\n", at);
            if (lineEnd < 0) return;
            const sizeText = buf.subarray(at, lineEnd).toString("latin1");
            if (!/^[0-9a-fA-F]{1,8}(;.*)?$/.test(sizeText)) return fail("a malformed chunk size", at);
            const size = parseInt(sizeText, 16);
            if (size === 0) {
              const trailersEnd = buf.indexOf("\r\n", lineEnd + 2);
              if (trailersEnd < 0) return;
              if (trailersEnd !== lineEnd + 2) return fail("trailers (Weir sends none)", lineEnd);
              at = trailersEnd + 2;
              break;
            }
            if (buf.length < lineEnd + 2 + size + 2) return;
            if (buf[lineEnd + 2 + size] !== 13 || buf[lineEnd + 3 + size] !== 10) return fail("a chunk not followed by CRLF", lineEnd + 2 + size);
            parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
            at = lineEnd + 2 + size + 2;
          }
          body = Buffer.concat(parts);
        } else {
          const n = length === -1 ? 0 : length;
          if (buf.length < at + n) return;
          body = Buffer.from(buf.subarray(at, at + n));
          at += n;
        }
        buf = buf.subarray(at);
        inBody = false;
        receiving = "";
        partial--;
        const seq = requests.length + 1;
        const record = { seq, method: rl[1]!, target: rl[2]!, headers, body, forwardedFor };
        requests.push(record);
        onRequest?.(record);
        const upgrade = headers.find(([n]) => n === "upgrade")?.[1];
        const key = headers.find(([n]) => n === "sec-websocket-key")?.[1];
        if (upgrade?.toLowerCase() === "websocket" && key !== undefined) {
          // Switch, say which request it was, and end: the test is about the request, not the stream.
          const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
          switched = true;
          socket.end(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-up-seq: ${seq}\r\n\r\n`);
          return;
        }
        const text = `up ${seq}`;
        const bodyless = rl[1] === "HEAD";
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${bodyless ? 0 : text.length}\r\nx-up-seq: ${seq}\r\n\r\n` + (bodyless ? "" : text),
        );
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    problems,
    get partial() { return partial; },
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}
