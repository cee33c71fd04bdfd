/**
 * Responses Weir makes itself (CONTRACT §3): always a JSON body `{error, code, requestId}` and the
 * `X-Request-Id` header, whether written through a ServerResponse or, when node:http has no
 * response object (a parse error, an upgrade), as raw bytes on the socket.
 */
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { ErrorCode } from "../errors.js";
import type { ClientResponse } from "./client-messages.js";

function body(message: string, code: ErrorCode, requestId: string): string {
  return JSON.stringify({ error: message, code, requestId });
}

/**
 * Answers on a ServerResponse. `close` asks for the connection to be closed afterwards (a request
 * body we did not read, a client we no longer trust to frame its requests).
 */
export function replyError(res: ClientResponse, status: number, code: ErrorCode, message: string, requestId: string, close = false, extra?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) { res.destroy(); return; }
  const text = body(message, code, requestId);
  if (close) res.shouldKeepAlive = false;
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "x-request-id": requestId,
    ...(close ? { connection: "close" } : {}),
    ...extra,
  });
  res.end(text);
}

/** Answers with raw bytes on a socket that has no ServerResponse, then closes it. */
export function replyErrorRaw(socket: Duplex, status: number, code: ErrorCode, message: string, requestId: string): void {
  if (!socket.writable) { socket.destroy(); return; }
  const text = body(message, code, requestId);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      "content-type: application/json; charset=utf-8\r\n" +
      `content-length: ${Buffer.byteLength(text)}\r\n` +
      `x-request-id: ${requestId}\r\n` +
      "connection: close\r\n\r\n" +
      text,
  );
  // A client that does not read its answer must not hold the socket open.
  socket.once("finish", () => setTimeout(() => socket.destroy(), 1000).unref());
}

/** A plugin's answer (ctx.respond) on a socket without a ServerResponse (an upgrade), then close. */
export function replyLocalRaw(socket: Duplex, status: number, headers: string[], body: string, requestId: string): void {
  if (!socket.writable) { socket.destroy(); return; }
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  if (noBody(status)) body = "";
  else head += `content-length: ${Buffer.byteLength(body)}\r\n`;
  head += `x-request-id: ${requestId}\r\nconnection: close\r\n\r\n`;
  // A head is bytes (a header value's obs-text is one byte each: latin1); the body is UTF-8.
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), Buffer.from(body)]));
  socket.once("finish", () => setTimeout(() => socket.destroy(), 1000).unref());
}

const noBody = (status: number) => status === 204 || status === 304;

/** Sends a complete response made by Weir on a plugin's behalf (headers as a flat list). */
export function replyLocal(res: ClientResponse, status: number, headers: string[], body: string, requestId: string): void {
  if (res.headersSent || res.destroyed) { res.destroy(); return; }
  const h = headers.slice();
  // 204 and 304 carry no body, and a 204 no Content-Length (RFC 9110 §15.3.5, §8.6): a length
  // there would have a client wait for, or count, bytes that never come.
  if (noBody(status)) body = "";
  else h.push("content-length", String(Buffer.byteLength(body)));
  h.push("x-request-id", requestId);
  res.writeHead(status, h);
  // A Buffer, not the string: given a string body, node:http sends the head in the body's
  // encoding (UTF-8), and a header value's obs-text (0x80-0xFF, one byte each) would reach the
  // client as two bytes.
  res.end(Buffer.from(body));
}
