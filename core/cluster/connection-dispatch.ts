/**
 * The listening sockets of a supervised Weir, held by the primary. The primary accepts every
 * connection (paused: it never reads a byte) and hands it to a ready worker, round-robin, over the
 * IPC channel; the worker serves it as if it had accepted it (WeirRuntime.accept).
 *
 * Why not node:cluster's own sharing: node:cluster closes a listening socket as soon as the last
 * worker using it is gone, so with one worker every connection made while it is being restarted is
 * refused (measured: thousands of ECONNREFUSED over five restarts of one worker). Here the socket
 * stays open whatever the workers do: a connection that arrives while no worker is ready is held
 * and handed to the next worker that is. Handing a connection over costs what node:cluster's
 * round-robin costs (one accept in the primary, one descriptor passed over the channel).
 */
import { createServer, type Server, type Socket } from "node:net";
import type { Worker } from "node:cluster";
import type { ListenConfig } from "../config/schema.js";
import { ErrorCodes, WeirError } from "../errors.js";
import type { Logger } from "../log/logger.js";

/** At most this many connections are held while no worker is ready; beyond it, new ones are closed. */
export const MAX_HELD_CONNECTIONS = 4096;
/** A connection held longer than this (no worker came up) is closed. */
export const MAX_HOLD_MS = 10_000;

/** The message that carries a connection to a worker (the socket travels as its handle). */
export interface ConnectionMessage { weir: "connection"; listener: number }

interface Held { listener: number; socket: Socket; since: number }

export class ConnectionDispatch {
  private readonly servers: Server[] = [];
  private held: Held[] = [];
  private next = 0;
  private closed = false;
  private holdTimer: NodeJS.Timeout | null = null;
  /** Connections accepted, and of those the ones that had to wait for a worker. */
  accepted = 0;
  heldTotal = 0;

  /** `workers()` lists the workers ready to take connections now. */
  constructor(private readonly specs: ListenConfig[], private readonly workers: () => Worker[], private readonly log: Logger) {}

  /** Opens every listener; resolves with their URLs, or throws WEIR_ERR_LISTEN_FAILED. */
  async listen(): Promise<string[]> {
    const urls: string[] = [];
    for (let i = 0; i < this.specs.length; i++) {
      const spec = this.specs[i]!;
      const host = spec.host ?? "0.0.0.0";
      const server = createServer({ pauseOnConnect: true }, (socket) => this.accept(i, socket));
      await new Promise<void>((resolve, reject) => {
        const failed = (err: Error) => reject(new WeirError(ErrorCodes.LISTEN_FAILED, `cannot listen on ${host}:${spec.port}: ${err.message}`, 500, { cause: err }));
        server.once("error", failed);
        server.listen(spec.port, host, () => { server.off("error", failed); resolve(); });
      });
      // An accept that fails later (EMFILE) must not take the primary down.
      server.on("error", (err) => this.log.error({ err: err.message, listener: i }, "a listening socket failed"));
      this.servers.push(server);
      const a = server.address() as { address: string; port: number; family: string };
      urls.push(`${spec.tls ? "https" : "http"}://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`);
    }
    return urls;
  }

  private accept(listener: number, socket: Socket): void {
    this.accepted++;
    // A client that resets while its connection waits or travels must not throw in the primary.
    socket.on("error", () => undefined);
    if (this.closed) { socket.destroy(); return; }
    this.dispatch({ listener, socket, since: performance.now() });
  }

  /** Hands a connection to the next ready worker, or holds it until one is ready. */
  private dispatch(h: Held): void {
    const ready = this.workers();
    if (ready.length === 0) { this.hold(h); return; }
    const worker = ready[this.next++ % ready.length]!;
    const message: ConnectionMessage = { weir: "connection", listener: h.listener };
    let settled = false;
    const sent = (err: Error | null) => {
      if (settled) return;
      settled = true;
      // keepOpen: the primary's copy stays open until the descriptor is in the worker's channel,
      // so a worker that dies first does not lose the connection: it goes to another worker.
      if (err) { if (!h.socket.destroyed) this.dispatch(h); return; }
      h.socket.destroy();
    };
    try {
      worker.send(message, h.socket, { keepOpen: true }, sent);
    } catch (err) {
      sent(err as Error);
    }
  }

  private hold(h: Held): void {
    if (this.held.length >= MAX_HELD_CONNECTIONS) { h.socket.destroy(); return; }
    if (h.socket.destroyed) return;
    this.held.push(h);
    this.heldTotal++;
    this.holdTimer ??= setInterval(() => this.expireHeld(), 1000);
  }

  private expireHeld(): void {
    const now = performance.now();
    const keep: Held[] = [];
    for (const h of this.held) {
      if (now - h.since > MAX_HOLD_MS || h.socket.destroyed) h.socket.destroy();
      else keep.push(h);
    }
    if (keep.length < this.held.length) this.log.warn({ closed: this.held.length - keep.length }, "closed connections that waited too long for a worker");
    this.held = keep;
    if (this.held.length === 0 && this.holdTimer) { clearInterval(this.holdTimer); this.holdTimer = null; }
  }

  /** A worker became ready: the connections held meanwhile go out, oldest first. */
  workerReady(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    if (this.holdTimer) { clearInterval(this.holdTimer); this.holdTimer = null; }
    for (const h of held) if (!h.socket.destroyed) this.dispatch(h);
  }

  /** Connections waiting for a worker now. */
  get holding(): number {
    return this.held.length;
  }

  /** Stops accepting (new connections are refused from now on) and closes the held ones. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.servers) s.close();
    for (const h of this.held) h.socket.destroy();
    this.held = [];
    if (this.holdTimer) { clearInterval(this.holdTimer); this.holdTimer = null; }
  }
}
