/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): a valid incoming `traceparent` is
 * forwarded unchanged (Weir records no spans of its own, so it does not invent a parent); an
 * absent or invalid one is replaced by a new trace, so that every upstream request and every
 * access log line carries a trace id.
 */
import { randomFillSync } from "node:crypto";

// §3.2.2: version-traceId-parentId-flags, lower-case hex; version ff is invalid; a version 00
// header has nothing after the flags, a later version may append fields after a "-".
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/;
const ZERO_TRACE = "00000000000000000000000000000000";
const ZERO_PARENT = "0000000000000000";

/** Whether `value` is a traceparent to keep (§3.2.2.x: all-zero ids are invalid). */
export function validTraceparent(value: string): boolean {
  const m = TRACEPARENT.exec(value);
  if (m === null || m[1] === "ff" || (m[1] === "00" && m[4] !== undefined)) return false;
  return m[2] !== ZERO_TRACE && m[3] !== ZERO_PARENT;
}

// Random bytes are drawn in blocks: one randomFillSync per 128 requests, not one per request.
const BLOCK = 24 * 128;
const pool = Buffer.alloc(BLOCK);
let offset = BLOCK;

/** A new traceparent: random trace and parent ids, not sampled (Weir does not record spans). */
export function newTraceparent(): string {
  if (offset + 24 > BLOCK) { randomFillSync(pool); offset = 0; }
  const trace = pool.toString("hex", offset, offset + 16);
  const parent = pool.toString("hex", offset + 16, offset + 24);
  offset += 24;
  // An all-zero id is invalid; with 128 random bits it never happens, but keep it impossible.
  return `00-${trace === ZERO_TRACE ? "1" + trace.slice(1) : trace}-${parent === ZERO_PARENT ? "1" + parent.slice(1) : parent}-00`;
}

/** The trace id inside a traceparent. */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}
