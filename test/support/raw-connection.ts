/**
 * One raw keep-alive TCP connection that reads a sequence of HTTP/1.1 responses (Content-Length
 * or chunked bodies, bodiless for HEAD/204/304), for tests about connection reuse, pipelining and
 * response framing, where a client library would hide exactly what is being tested.
 */
import { connect, type Socket } from "node:net";
import { once } from "node:events";

export interface FramedResponse {
  status: number;
  /** Lower-cased names; repeated names joined with ", ". */
  headers: Record<string, string>;
  /** The header names in the order sent, as sent. */
  names: string[];
  body: string;
  /** "length", "chunked" or "none". */
  framing: "length" | "chunked" | "none";
}

export interface RawConnection {
  socket: Socket;
  send(data: string | Buffer): void;
  /** The next response; `bodiless` for an answer to HEAD. Rejects after `timeoutMs`. */
  next(options?: { bodiless?: boolean; timeoutMs?: number }): Promise<FramedResponse>;
  /** Resolves true when the server closes the connection within `timeoutMs`. */
  closed(timeoutMs?: number): Promise<boolean>;
  close(): void;
}

export async function openRaw(port: number): Promise<RawConnection> {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake: (() => void) | null = null;
  socket.on("data", (d: Buffer) => { buf = Buffer.concat([buf, d]); wake?.(); });
  socket.on("close", () => { ended = true; wake?.(); });
  socket.on("error", () => undefined);

  /** Tries to cut one response off the front of `buf`. */
  function take(bodiless: boolean): FramedResponse | null {
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return null;
    const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers: Record<string, string> = {};
    const names: string[] = [];
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      const name = l.slice(0, i);
      const key = name.toLowerCase();
      const value = l.slice(i + 1).trim();
      names.push(name);
      headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
    }
    let at = end + 4;
    if (bodiless || status === 204 || status === 304 || status < 200) {
      buf = buf.subarray(at);
      return { status, headers, names, body: "", framing: "none" };
    }
    if (headers["transfer-encoding"] === "chunked") {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = buf.indexOf("\r\n", at);
        if (lineEnd < 0) return null;
        const size = parseInt(buf.subarray(at, lineEnd).toString("latin1"), 16);
        if (buf.length < lineEnd + 2 + size + 2) return null;
        if (size === 0) {
          buf = buf.subarray(lineEnd + 4);
          return { status, headers, names, body: Buffer.concat(parts).toString(), framing: "chunked" };
        }
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    const length = Number(headers["content-length"] ?? NaN);
    if (!Number.isFinite(length)) throw new Error("a response without Content-Length or chunked framing");
    if (buf.length < at + length) return null;
    const body = buf.subarray(at, at + length).toString();
    buf = buf.subarray(at + length);
    return { status, headers, names, body, framing: "length" };
  }

  return {
    socket,
    send: (data) => { socket.write(data); },
    async next({ bodiless = false, timeoutMs = 3000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = take(bodiless);
        if (r !== null) return r;
        if (ended) throw new Error(`the connection closed before a whole response came (had: ${JSON.stringify(buf.toString("latin1"))})`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no whole response within ${timeoutMs} ms (had: ${JSON.stringify(buf.toString("latin1"))})`);
        await new Promise<void>((r) => { const t = setTimeout(r, left); wake = () => { clearTimeout(t); wake = null; r(); }; });
      }
    },
    async closed(timeoutMs = 3000) {
      if (ended) return true;
      await new Promise<void>((r) => { const t = setTimeout(r, timeoutMs); socket.once("close", () => { clearTimeout(t); r(); }); });
      return ended;
    },
    close: () => { socket.destroy(); },
  };
}
