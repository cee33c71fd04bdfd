/**
 * Assertions for the answers Weir makes itself: the status, a JSON body
 * `{error, code, requestId}` and an `X-Request-Id` header that names the same request.
 */
import * as assert from "uvu/assert";

export interface LocalReply {
  error: string;
  code: string;
  requestId: string;
}

/** Checks a local reply given its status, headers (lower-cased names) and body text. */
export function assertLocalReply(
  got: { status: number; headers: Record<string, string | string[] | undefined>; body: string },
  status: number,
  code?: string,
): LocalReply {
  assert.is(got.status, status, `expected ${status}, got ${got.status}: ${got.body.slice(0, 300)}`);
  const type = String(got.headers["content-type"] ?? "");
  assert.ok(type.startsWith("application/json"), `content-type is ${type || "missing"}`);
  let parsed: LocalReply;
  try {
    parsed = JSON.parse(got.body) as LocalReply;
  } catch {
    return assert.unreachable(`the body is not JSON: ${JSON.stringify(got.body.slice(0, 300))}`) as never;
  }
  assert.type(parsed.error, "string");
  assert.ok(parsed.error.length > 0, "the error message is empty");
  assert.type(parsed.code, "string");
  assert.ok(parsed.code.startsWith("WEIR_ERR_"), `unexpected code ${parsed.code}`);
  if (code !== undefined) assert.is(parsed.code, code);
  assert.type(parsed.requestId, "string");
  assert.is(got.headers["x-request-id"], parsed.requestId, "the X-Request-Id header and the body's requestId differ");
  return parsed;
}
