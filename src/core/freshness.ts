/**
 * Which heartbeats count: only fresh ones, judged by freshness the receiver
 * controls. Every heartbeat echoes the stamp (boot, seq, sentAt) of the last
 * heartbeat its sender heard from the receiver. A heartbeat counts only when
 * that echo names the receiver's own current boot and was sent by it within
 * the failover timeout: a datagram recorded at any time and replayed at any
 * time then proves nothing, whatever boot id or sequence it carries.
 *
 * A heartbeat that does not count yet (first contact, a restart on either
 * side, a one-way cut) is answered at once by the runner, so the peer can echo
 * something fresh; until a sender is verified, its latest datagram is what gets
 * echoed. Once verified, only its own later datagrams move the echo, so
 * replays can never make this machine echo something stale. Pure: no clock,
 * no randomness (the runner picks the boot id).
 */

export interface Stamp {
  /** The sender's boot id: random per process start. */
  readonly boot: string;
  /** Raised by one per heartbeat sent within one boot. */
  readonly seq: number;
  /** The sender's clock when sent; only meaningful to the sender. */
  readonly sentAt: number;
}

/** What a heartbeat carries for freshness. */
export interface Freshness {
  readonly stamp: Stamp;
  /** The stamp of the receiver's heartbeat the sender heard last, or null. */
  readonly echo: Stamp | null;
}

/** What this machine remembers of one sender (by machine id). */
export interface SenderMemo {
  /** The sender's boot and highest seq seen in a heartbeat that counted. */
  readonly verified: { readonly boot: string; readonly seq: number } | null;
  /** What to echo back to it. */
  readonly echo: Stamp | null;
}

export type Verdict =
  /** Counts: hand it to the failover core. */
  | "fresh"
  /** Authentic but not proven recent: answer it, do not believe it. */
  | "unverified"
  /** Already seen (or older than what was seen): ignore it. */
  | "replay";

export interface Admission {
  readonly memo: SenderMemo;
  readonly verdict: Verdict;
}

export const NO_MEMO: SenderMemo = { verified: null, echo: null };

/** Whether `echo` names one of this machine's own heartbeats from the last `windowMs`. */
export function isFreshEcho(echo: Stamp | null, myBoot: string, now: number, windowMs: number): boolean {
  return echo !== null && echo.boot === myBoot && echo.sentAt <= now && now - echo.sentAt <= windowMs;
}

export function admit(memo: SenderMemo, hb: Freshness, myBoot: string, now: number, windowMs: number): Admission {
  const v = memo.verified;
  const sameBoot = v !== null && hb.stamp.boot === v.boot;
  if (sameBoot && hb.stamp.seq <= v.seq) return { memo, verdict: "replay" };
  if (isFreshEcho(hb.echo, myBoot, now, windowMs)) {
    return { memo: { verified: { boot: hb.stamp.boot, seq: hb.stamp.seq }, echo: hb.stamp }, verdict: "fresh" };
  }
  // Not proven recent. A later datagram of the verified boot may still move the echo; a
  // datagram of another boot may only while nothing is verified (first contact).
  if (sameBoot) return { memo: { verified: { boot: v.boot, seq: hb.stamp.seq }, echo: hb.stamp }, verdict: "unverified" };
  if (v === null) return { memo: { verified: null, echo: hb.stamp }, verdict: "unverified" };
  return { memo, verdict: "unverified" };
}
