/**
 * Raw HTTP over a real TCP socket, for requests a well-behaved client would never send
 * (smuggling attempts, malformed framing, slow senders).
 */
import { connect, type Socket } from "node:net";
import { once } from "node:events";

export interface RawResponse {
  /** Everything the server sent before closing or the timeout. */
  text: string;
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Whether the server closed the connection. */
  closed: boolean;
}

export function parseRawResponse(text: string, closed: boolean): RawResponse {
  const end = text.indexOf("\r\n\r\n");
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { text, status: Number(statusLine.split(" ")[1] ?? 0), headers, body: end < 0 ? "" : text.slice(end + 4), closed };
}

/**
 * Sends `payload` (string or chunks written with `gapMs` between them) and collects the answer
 * until the server closes, a full Content-Length body arrived (unless `untilClose`, for pipelined
 * requests), or `timeoutMs` passed.
 */
export async function rawRequest(port: number, payload: string | Buffer | (string | Buffer)[], options: { timeoutMs?: number; gapMs?: number; untilClose?: boolean } = {}): Promise<RawResponse> {
  const socket: Socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  let data = "";
  let closed = false;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, options.timeoutMs ?? 3000);
    socket.on("data", (d) => {
      data += d.toString("latin1");
      const r = parseRawResponse(data, false);
      const len = Number(r.headers["content-length"] ?? NaN);
      if (!options.untilClose && Number.isFinite(len) && Buffer.byteLength(r.body, "latin1") >= len && data.includes("\r\n\r\n")) { clearTimeout(timer); resolve(); }
    });
    socket.on("close", () => { closed = true; clearTimeout(timer); resolve(); });
    socket.on("error", () => undefined);
  });
  const parts = Array.isArray(payload) ? payload : [payload];
  for (const p of parts) {
    if (socket.destroyed) break;
    socket.write(p);
    if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
  }
  await done;
  socket.destroy();
  return parseRawResponse(data, closed);
}
