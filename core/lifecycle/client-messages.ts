/**
 * What the lifecycle needs of a client's request and of the response to it. node:http's
 * IncomingMessage and ServerResponse satisfy these; so do the lean listener's LeanRequest and
 * LeanResponse (core/server/lean-response.ts), which serve the common HTTP/1.1 request that came
 * whole in one read without node:http's per-request objects. Keeping the lifecycle to this
 * surface is what lets both listeners share it.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

export interface InboundRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  /** Names and values as the client sent them, flat: [name, value, ...]. */
  readonly rawHeaders: string[];
  /** Lower-cased names, duplicates merged as node:http merges them. */
  readonly headers: IncomingHttpHeaders;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** True once the whole request (head and body) was read. */
  readonly complete: boolean;
  readonly readableDidRead: boolean;
  readonly destroyed: boolean;
  readonly socket: { readonly remoteAddress?: string | undefined; readonly bytesWritten: number };
  /**
   * The whole body, when the listener read it with the head (the lean listener); otherwise the
   * body is the request's stream (node:http's IncomingMessage).
   */
  readonly bodyBuffer?: Buffer | undefined;
}

/**
 * Whether part of the request's body may still be on its way: an answer given now must close the
 * connection, or those bytes would be read as the next request. A request without a body has
 * nothing pending even while node:http has not yet marked it complete (it emits 'request' before
 * it has seen the end of a bodiless message), so a 404 or a 503 keeps the connection.
 */
export function bodyPending(req: InboundRequest): boolean {
  if (req.complete) return false;
  const h = req.headers;
  return h["transfer-encoding"] !== undefined || (h["content-length"] !== undefined && h["content-length"] !== "0");
}

export interface ClientResponse {
  /** True once writeHead was called. */
  readonly headersSent: boolean;
  /** True once the client connection is gone. */
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  /** Set to false before writeHead to close the connection after this response. */
  shouldKeepAlive: boolean;
  readonly req: InboundRequest;
  writeHead(status: number, headers: string[] | OutgoingHttpHeaders): unknown;
  /**
   * writeHead for headers known to be well-formed (an upstream's, which undici's parser checked):
   * a response that can skip the per-header character checks offers it.
   */
  writeTrustedHead?(status: number, headers: string[]): unknown;
  /** False when the client is not keeping up: wait for "drain". */
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer | string): unknown;
  destroy(err?: Error): unknown;
  writeContinue(): void;
  /** "close": the client went away before the response ended; "drain": write may go on. */
  once(event: "close" | "drain", listener: () => void): unknown;
  off(event: "close" | "drain", listener: () => void): unknown;
}
