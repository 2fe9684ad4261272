/**
 * Connections between simulated machines, as the peer port's secure sockets
 * (TCP) behave: a dial takes a round trip, frames arrive in order each way, a
 * clean close arrives after the frames sent before it. Faults come from the
 * world's links: a cut holds frames back until it heals (TCP sends them
 * again), and breaks the connection only if it lasts `BREAK_AFTER_MS` (both
 * ends hear the close, frames in flight are lost); a lossy link delays a
 * frame by a retransmission, extra delay delays it (order kept). A crashed
 * process's connections break (its peers hear it a wire's trip later); a
 * frozen one's inputs wait in its queue (World.postAt).
 */
import type { Rng } from "./prng.ts";
import type { SimNode, World } from "./world.ts";

/** What one end does with what arrives. */
export type WireEvents<F> = { message(frame: F): void; close(): void };

/** A frame (or the close) on its way to one end, due at `at`; `sentAt` for the retransmission give-up. */
type Carried<F> = { readonly frame: F | null; readonly at: number; readonly sentAt: number };

type Party<F> = {
  readonly node: SimNode;
  readonly inc: number;
  events: WireEvents<F> | null;
  closed: boolean;
  /** What is on its way to this end, in order, and whether a delivery is scheduled. */
  readonly inbound: Carried<F>[];
  pumping: boolean;
};

/** TCP gives up on a peer that acknowledges nothing for this long (far shorter than Linux's default, so the sim sees it). */
const BREAK_AFTER_MS = 5_000;

/** One end of a connection, held by the machine on that side. */
export class WireEnd<F> {
  constructor(
    readonly wire: SimWire<F>,
    readonly conn: WireConnection<F>,
    readonly self: Party<F>,
    readonly peer: Party<F>,
  ) {}

  /** The machine at the other end. */
  get peerName(): string {
    return this.peer.node.name;
  }

  /** Which incarnation of it. */
  get peerInc(): number {
    return this.peer.inc;
  }

  send(frame: F): void {
    this.wire.carry(this, frame);
  }

  close(): void {
    this.wire.closeEnd(this);
  }
}

type WireConnection<F> = {
  readonly dialer: Party<F>;
  readonly listener: Party<F>;
  broken: boolean;
  /** The dialer's answer while the dial is on its way: called once, with null if it failed. */
  pending: ((end: WireEnd<F> | null) => void) | null;
};

/** A listener's answer to a dial: its end's events, or null to refuse. */
export type Accept<F> = (end: WireEnd<F>) => WireEvents<F> | null;

export class SimWire<F> {
  readonly #conns = new Set<WireConnection<F>>();
  /** Dials refused because the two machines hold different network keys. */
  keyRefusals = 0;

  constructor(
    readonly world: World,
    readonly rng: Rng,
    /** What a machine listening at `to` accepts (null: nothing runs there that takes it). */
    readonly listening: (to: SimNode) => Accept<F> | null,
    /** Whether two machines hold the same network key (the handshake needs it). */
    readonly sameKey: (a: SimNode, b: SimNode) => boolean,
  ) {}

  /**
   * Dials the machine at `address` from `from`; `done` gets the dialer's end (and `events` its handlers)
   * a round trip later, or null if no process answers (dead, cut off, not listening, another network key).
   */
  dial(from: SimNode, address: string, events: (end: WireEnd<F>) => WireEvents<F>, done: (end: WireEnd<F> | null) => void): void {
    const w = this.world;
    const to = w.nameAt(address) ?? address;
    const target = w.nodes.get(to);
    const fail = (after: number) => w.postAt(from.name, w.now() + after, from.inc, () => done(null));
    if (target?.state && !this.sameKey(from, target)) {
      this.keyRefusals += 1;
      return fail(2 * w.latency());
    }
    if (!target?.state) return fail(2 * w.latency());
    if (w.linkState(from.name, to).cut || w.linkState(to, from.name).cut) return fail(w.cfg.timings.heartbeatMs);
    const party = (node: SimNode): Party<F> => ({ node, inc: node.inc, events: null, closed: false, inbound: [], pumping: false });
    const conn: WireConnection<F> = { dialer: party(from), listener: party(target), broken: false, pending: done };
    this.#conns.add(conn);
    const dialerEnd = new WireEnd(this, conn, conn.dialer, conn.listener);
    const listenerEnd = new WireEnd(this, conn, conn.listener, conn.dialer);
    w.postAt(to, w.now() + w.latency(), target.inc, () => {
      if (conn.broken) return;
      const accept = this.listening(target);
      const handlers = accept?.(listenerEnd) ?? null;
      if (handlers === null) return this.#break(conn);
      conn.listener.events = handlers;
      // The dialer learns it is connected before any frame the listener sends from here on.
      w.postAt(from.name, w.now() + w.latency(), conn.dialer.inc, () => {
        if (conn.broken || conn.pending === null) return;
        conn.pending = null;
        conn.dialer.events = events(dialerEnd);
        done(dialerEnd);
        this.#pump(conn, conn.dialer, dialerEnd.peer.node.name);
      });
    });
  }

  /** The machine's process died: its connections break. */
  crashed(node: SimNode): void {
    for (const conn of [...this.#conns]) {
      for (const p of [conn.dialer, conn.listener]) {
        if (p.node !== node || p.inc !== node.inc) continue;
        p.closed = true;
        this.#break(conn);
      }
    }
  }

  carry(end: WireEnd<F>, frame: F): void {
    if (end.conn.broken || end.self.closed || end.peer.closed) return;
    this.#enqueue(end, frame);
  }

  /** A clean close: the peer reads what was sent before it, then the close. */
  closeEnd(end: WireEnd<F>): void {
    if (end.self.closed || end.conn.broken) return;
    end.self.closed = true;
    this.#enqueue(end, null);
  }

  #enqueue(end: WireEnd<F>, frame: F | null): void {
    const w = this.world;
    const peer = end.peer;
    const l = w.linkState(end.self.node.name, peer.node.name);
    let at = w.now() + w.latency();
    if (l.extraDelay > 0) at += this.rng.int(0, l.extraDelay);
    // A lost segment is sent again after a retransmission timeout: late, still in order.
    if (l.loss > 0 && this.rng.chance(l.loss)) at += this.rng.int(w.cfg.timings.heartbeatMs, 4 * w.cfg.timings.heartbeatMs);
    const last = peer.inbound[peer.inbound.length - 1];
    peer.inbound.push({ frame, at: Math.max(at, last?.at ?? 0), sentAt: w.now() });
    this.#pump(end.conn, peer, end.self.node.name);
  }

  /** Delivers what is due to `peer` while the link from `from` is up; while it is cut, tries again a little later. */
  #pump(conn: WireConnection<F>, peer: Party<F>, from: string): void {
    const head = peer.inbound[0];
    if (peer.pumping || !head || conn.broken || peer.closed || peer.events === null) return;
    peer.pumping = true;
    const w = this.world;
    w.postAt(peer.node.name, head.at, peer.inc, () => {
      peer.pumping = false;
      if (conn.broken || peer.closed) return;
      if (w.linkState(from, peer.node.name).cut) {
        if (w.now() - peer.inbound[0]!.sentAt >= BREAK_AFTER_MS) return this.#break(conn);
        for (let i = 0; i < peer.inbound.length; i++) {
          const c = peer.inbound[i]!;
          peer.inbound[i] = { ...c, at: Math.max(c.at, w.now() + w.cfg.timings.heartbeatMs) };
        }
        return this.#pump(conn, peer, from);
      }
      while (peer.inbound.length > 0 && peer.inbound[0]!.at <= w.now() && !peer.closed && !conn.broken) {
        const { frame } = peer.inbound.shift()!;
        if (frame === null) return this.#closed(conn, peer);
        peer.events?.message(frame);
      }
      this.#pump(conn, peer, from);
    });
  }

  /** Both ends hear the close a wire's trip from now; frames in flight are lost. */
  #break(conn: WireConnection<F>): void {
    if (conn.broken) return;
    conn.broken = true;
    this.#conns.delete(conn);
    const w = this.world;
    for (const p of [conn.dialer, conn.listener]) {
      if (p.closed) continue;
      w.postAt(p.node.name, w.now() + w.latency(), p.inc, () => {
        if (p === conn.dialer && conn.pending) {
          const done = conn.pending;
          conn.pending = null;
          p.closed = true;
          return done(null);
        }
        this.#closed(conn, p);
      });
    }
  }

  #closed(conn: WireConnection<F>, p: Party<F>): void {
    if (p.closed) return;
    p.closed = true;
    if (conn.dialer.closed && conn.listener.closed) this.#conns.delete(conn);
    p.events?.close();
  }

}
