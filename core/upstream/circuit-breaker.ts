/**
 * Circuit breaking (`maxConnections`, `maxPending` of an upstream), as Envoy's cluster circuit
 * breakers: at most `maxConnections` requests of the upstream are with a target at once (one
 * connection each: the pools do not pipeline); up to `maxPending` more wait, first come first
 * served, for at most the upstream's connect timeout; anything beyond is answered 503 at once.
 * The queue is bounded by construction: a slow upstream costs memory proportional to
 * maxPending, never to the incoming rate.
 */

export interface Waiter {
  go: () => void;
  timer: NodeJS.Timeout | null;
  cancelled: boolean;
}

export class CircuitBreaker {
  /** Requests holding a slot. */
  active = 0;
  private readonly queue: Waiter[] = [];
  private head = 0;
  private waiting = 0;

  constructor(readonly maxConnections: number, readonly maxPending: number, readonly maxWaitMs: number) {}

  /** Requests waiting for a slot. */
  get pending(): number {
    return this.waiting;
  }

  /**
   * Runs `go` now when a slot is free ("now"), queues it when fewer than maxPending wait
   * (`onTimeout` runs if no slot frees in maxWaitMs) and returns the waiter so a client that
   * leaves can `cancel` it, or returns "full": answer 503.
   */
  acquire(go: () => void, onTimeout: () => void): "now" | "full" | Waiter {
    if (this.active < this.maxConnections) {
      this.active++;
      go();
      return "now";
    }
    if (this.pending >= this.maxPending) return "full";
    const w: Waiter = { go, timer: null, cancelled: false };
    w.timer = setTimeout(() => { w.cancelled = true; this.waiting--; this.compact(); onTimeout(); }, this.maxWaitMs);
    w.timer.unref();
    this.queue.push(w);
    this.waiting++;
    return w;
  }

  cancel(w: Waiter): void {
    if (w.cancelled) return;
    w.cancelled = true;
    this.waiting--;
    if (w.timer) clearTimeout(w.timer);
    this.compact();
  }

  /** Frees a slot and hands it to the first live waiter. */
  release(): void {
    this.active--;
    while (this.head < this.queue.length) {
      const w = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Waiter;
      if (w.cancelled) continue;
      if (w.timer) clearTimeout(w.timer);
      w.cancelled = true; // taken
      this.waiting--;
      this.compact();
      this.active++;
      w.go();
      return;
    }
    this.compact();
  }

  // Drops cancelled waiters at the head and reclaims the array once it is empty.
  private compact(): void {
    while (this.head < this.queue.length && this.queue[this.head]!.cancelled) this.head++;
    if (this.head === this.queue.length) { this.queue.length = 0; this.head = 0; }
  }
}
