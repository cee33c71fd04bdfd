/**
 * Maps whatever undici (or the socket under it) throws to the status Weir answers with.
 * Every error maps to something: an unknown one is a 502, never a crash.
 */
import { ErrorCodes, type ErrorCode } from "../errors.js";

export interface Fault { status: number; code: ErrorCode; message: string }

const TIMEOUT: Fault = { status: 504, code: ErrorCodes.UPSTREAM_TIMEOUT, message: "the upstream did not answer in time" };
const CONNECT_TIMEOUT: Fault = { status: 504, code: ErrorCodes.UPSTREAM_TIMEOUT, message: "connecting to the upstream timed out" };
const REFUSED: Fault = { status: 502, code: ErrorCodes.UPSTREAM_UNREACHABLE, message: "the upstream refused the connection" };
const UNREACHABLE: Fault = { status: 502, code: ErrorCodes.UPSTREAM_UNREACHABLE, message: "the upstream could not be reached" };
const RESET: Fault = { status: 502, code: ErrorCodes.UPSTREAM_RESET, message: "the upstream closed the connection before answering" };
const BAD: Fault = { status: 502, code: ErrorCodes.UPSTREAM_BAD_RESPONSE, message: "the upstream sent a malformed response" };

export function faultOf(err: unknown): Fault {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
    case "ETIMEDOUT":
      return TIMEOUT;
    case "UND_ERR_CONNECT_TIMEOUT":
      return CONNECT_TIMEOUT;
    case "ECONNREFUSED":
      return REFUSED;
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return UNREACHABLE;
    case "UND_ERR_SOCKET":
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_CLOSED":
      return RESET;
    default:
      return BAD;
  }
}

/** Whether nothing was sent: the connection itself failed (safe to retry for any method). */
export function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ECONNREFUSED" || code === "UND_ERR_CONNECT_TIMEOUT" || code === "ENOTFOUND" || code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "EADDRNOTAVAIL";
}
