/**
 * What a connection may cost this machine before its handshake is done (a
 * stranger without the key is already refused at the upgrade; this bounds
 * machines that hold it, or replay a ticket): a bounded number of connections
 * in their handshake (per source address and in total), tiny handshake frames,
 * and a token bucket in front of the Ed25519 work (reached only after the
 * network-key MAC checked). Refusals are cheap (a 503 before the upgrade, or a
 * close); `RefusalLog` reports them once per source per minute with a count.
 */
import type { Clock } from "../core/clock.ts";
import type { AppError } from "../core/errors.ts";
import { RepeatFilter } from "../core/repeat-filter.ts";
import { SourceRateLimit, type SourceLimits } from "../core/rate-limit.ts";
import { AUTH_BYTES, HELLO_BYTES } from "./handshake.ts";

/**
 * Handshakes reaching the signature step (only machines that proved the key get
 * there). One costs ≈ 2 ms of the main thread: the total burst keeps a stall
 * well below the failover timeout, and a machine may still reconnect all its
 * lanes at once after a failover and forward a burst of its apps' calls (each
 * `understudy push` or `asset get` is a new connection to the main).
 */
export const DEFAULT_HANDSHAKE_LIMITS: SourceLimits = {
  perSource: { burst: 32, perSecond: 16 },
  total: { burst: 32, perSecond: 200 },
  maxSources: 4096,
};
/** Connections still in their handshake, per source address and in total; each may hold a frame of up to the peer port's payload limit. */
export const DEFAULT_MAX_PENDING_PER_SOURCE = 8;
export const DEFAULT_MAX_PENDING_TOTAL = 32;
/** A handshake message is a hello or a proof; anything larger closes the connection unread. */
export const MAX_HANDSHAKE_FRAME_BYTES = Math.max(HELLO_BYTES, AUTH_BYTES);

export type AdmissionLimits = { handshakes: SourceLimits; pendingPerSource: number; pendingTotal: number };
export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = {
  handshakes: DEFAULT_HANDSHAKE_LIMITS,
  pendingPerSource: DEFAULT_MAX_PENDING_PER_SOURCE,
  pendingTotal: DEFAULT_MAX_PENDING_TOTAL,
};

/**
 * Counts pending connections and spends handshake tokens; the caller refuses (cheaply) when it says no, and logs through `RefusalLog`.
 *
 * Per-source caps come first: when the total is full, a source holding fewer pending connections
 * than the busiest one gets in, and one of the busiest source's pending sockets is closed to make
 * room. So a machine that fills its own share (or several addresses that fill the total) cannot keep
 * another machine out: before, every legitimate new connection got 503 while the caps were full.
 */
export class HandshakeAdmission {
  private readonly pending = new Map<string, number>();
  /** Pending sockets that are open, by source: how to close one to make room (see `track`). */
  private readonly closers = new Map<string, Set<() => void>>();
  private pendingTotal = 0;
  private readonly rate: SourceRateLimit;

  constructor(
    private readonly clock: Clock,
    private readonly limits: AdmissionLimits = DEFAULT_ADMISSION_LIMITS,
  ) {
    this.rate = new SourceRateLimit(limits.handshakes, clock.now());
  }

  /** Before the WebSocket upgrade: true reserves a pending slot, released by `settled`. */
  open(source: string): boolean {
    const mine = this.pending.get(source) ?? 0;
    if (mine >= this.limits.pendingPerSource) return false;
    if (this.pendingTotal >= this.limits.pendingTotal && !this.makeRoomFor(mine)) return false;
    this.pending.set(source, mine + 1);
    this.pendingTotal += 1;
    return true;
  }

  /** The connection finished its handshake or closed before: its pending slot is free again. Call once per `open` that returned true. */
  settled(source: string): void {
    const mine = this.pending.get(source) ?? 0;
    if (mine <= 0) return;
    if (mine === 1) this.pending.delete(source);
    else this.pending.set(source, mine - 1);
    this.pendingTotal -= 1;
  }

  /**
   * A pending socket from `source` is open: `evict` closes it to make room for a source with fewer
   * (its slot is given back here, so `evict` must keep the socket from calling `settled`). Returns
   * the call that forgets it, made when it settles.
   */
  track(source: string, evict: () => void): () => void {
    let set = this.closers.get(source);
    if (!set) this.closers.set(source, (set = new Set()));
    set.add(evict);
    return () => {
      set.delete(evict);
      if (set.size === 0 && this.closers.get(source) === set) this.closers.delete(source);
    };
  }

  /** Closes the oldest open pending socket of the source holding the most, if it holds more than `mine` + 1. */
  private makeRoomFor(mine: number): boolean {
    let busiest: string | null = null;
    let most = mine + 1;
    for (const [source, set] of this.closers) {
      const count = this.pending.get(source) ?? 0;
      if (count > most && set.size > 0) {
        busiest = source;
        most = count;
      }
    }
    if (busiest === null) return false;
    const set = this.closers.get(busiest)!;
    const evict = set.values().next().value!;
    set.delete(evict);
    if (set.size === 0) this.closers.delete(busiest);
    this.settled(busiest);
    evict();
    return true;
  }

  /** The network key was proven: may this source have the signature work now? */
  admitSignature(source: string): boolean {
    return this.rate.take(source, this.clock.now()) === "ok";
  }

  get pendingConnections(): number {
    return this.pendingTotal;
  }
}

/**
 * Refusals reported once per source and code per minute, with how many were
 * not reported in between: a backup on another key retrying every 100 ms, or a
 * flood, is one line a minute, not thirty a second.
 */
export class RefusalLog {
  private readonly filter = new RepeatFilter();

  constructor(
    private readonly clock: Clock,
    private readonly report: (address: string, error: AppError, suppressed: number) => void,
  ) {}

  refused(address: string, error: AppError): void {
    const verdict = this.filter.note(`${sourceAddress(address)} ${error.code}`, this.clock.now());
    if (verdict.report) this.report(address, error, verdict.suppressed);
  }
}

/** "10.0.0.2:51234" → "10.0.0.2", "[::1]:7401" → "::1": limits count per address, not per port. */
export function sourceAddress(address: string): string {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(address);
  if (bracketed) return bracketed[1]!;
  const colon = address.lastIndexOf(":");
  return colon > 0 && address.indexOf(":") === colon ? address.slice(0, colon) : address;
}
