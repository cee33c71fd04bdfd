/** X-Request-Id: a client's id is kept when it is short printable ASCII, otherwise one is made. */
import { randomUUID } from "node:crypto";

const MAX_LENGTH = 200;

export function acceptRequestId(incoming: string | undefined): string {
  if (incoming !== undefined && incoming.length > 0 && incoming.length <= MAX_LENGTH) {
    let ok = true;
    for (let i = 0; i < incoming.length; i++) {
      const c = incoming.charCodeAt(i);
      if (c < 0x21 || c > 0x7e) { ok = false; break; }
    }
    if (ok) return incoming;
  }
  return randomUUID();
}

export const newRequestId = randomUUID;
