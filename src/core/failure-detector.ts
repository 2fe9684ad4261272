/**
 * Failure detection by heartbeat silence, as pure timing maths.
 *
 * A peer is `down` when nothing was heard from it for `failoverTimeoutMs`, or
 * when a socket to it broke and nothing was heard since (a broken socket is
 * the fastest signal a crash gives: the kernel closes it). It is `suspect` once
 * `SUSPECT_AFTER_HEARTBEATS` heartbeats in a row are missing: shown in the UI,
 * never acted on, so a blip shorter than the timeout cannot fail over.
 *
 * Times are milliseconds from the caller's Clock; nothing here reads a clock.
 */

export const DEFAULT_HEARTBEAT_MS = 100;
export const DEFAULT_FAILOVER_TIMEOUT_MS = 1000;
/** Below this, heartbeats cost more than they tell (and UDP timers get coarse). */
export const MIN_HEARTBEAT_MS = 10;
/** Below this, scheduler hiccups on a loaded machine would look like a dead peer. */
export const MIN_FAILOVER_TIMEOUT_MS = 100;
/** The timeout must span this many heartbeats, or two lost datagrams would fail over. */
export const MIN_HEARTBEATS_PER_TIMEOUT = 3;
/** Missing this many heartbeats in a row makes a peer `suspect` (UI only). */
export const SUSPECT_AFTER_HEARTBEATS = 2;

export interface Timings {
  /** How often each machine sends a heartbeat to each peer. */
  readonly heartbeatMs: number;
  /** Silence after which a peer is down. */
  readonly failoverTimeoutMs: number;
}

export const DEFAULT_TIMINGS: Timings = {
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  failoverTimeoutMs: DEFAULT_FAILOVER_TIMEOUT_MS,
};

/** For tests and demos: fails over in a quarter second. */
export const FAST_TIMINGS: Timings = { heartbeatMs: 50, failoverTimeoutMs: 250 };

/**
 * Fills in defaults and clamps to safe values: the heartbeat to at least
 * MIN_HEARTBEAT_MS, the timeout to at least MIN_FAILOVER_TIMEOUT_MS and
 * MIN_HEARTBEATS_PER_TIMEOUT heartbeats. Non-finite numbers take the default.
 */
export function clampTimings(input: Partial<Timings> = {}): Timings {
  const pick = (value: number | undefined, fallback: number): number =>
    value !== undefined && Number.isFinite(value) ? Math.round(value) : fallback;
  const heartbeatMs = Math.max(MIN_HEARTBEAT_MS, pick(input.heartbeatMs, DEFAULT_HEARTBEAT_MS));
  const failoverTimeoutMs = Math.max(
    MIN_FAILOVER_TIMEOUT_MS,
    MIN_HEARTBEATS_PER_TIMEOUT * heartbeatMs,
    pick(input.failoverTimeoutMs, DEFAULT_FAILOVER_TIMEOUT_MS),
  );
  return { heartbeatMs, failoverTimeoutMs };
}

/** What one machine knows about hearing one peer. Plain data; replace, don't mutate. */
export interface Liveness {
  /** When watching started: a peer never heard is down once the timeout passes from here. */
  readonly since: number;
  /** When the last heartbeat from the peer was processed, or null if never. */
  readonly lastHeardAt: number | null;
  /** When a socket to the peer broke, if nothing was heard since. */
  readonly brokenAt: number | null;
}

export type Verdict = "alive" | "suspect" | "down";

export function watch(now: number): Liveness {
  return { since: now, lastHeardAt: null, brokenAt: null };
}

/** A heartbeat arrived: the peer is alive, and a broken socket is forgiven (it reconnected). */
export function heard(l: Liveness, now: number): Liveness {
  return { since: l.since, lastHeardAt: now, brokenAt: null };
}

/** A socket to the peer broke: down at once, until it is heard again. */
export function broke(l: Liveness, now: number): Liveness {
  return { since: l.since, lastHeardAt: l.lastHeardAt, brokenAt: now };
}

/** Milliseconds of silence, counted from the last heartbeat or from `since` if none came. */
export function silenceMs(l: Liveness, now: number): number {
  return now - (l.lastHeardAt ?? l.since);
}

/**
 * Time this machine itself was not running (process stopped, event loop
 * blocked) is not the peer's silence: shift the baseline by it, so that after
 * a stall a peer is judged only on time we could have heard it.
 */
export function excusePause(l: Liveness, pausedMs: number): Liveness {
  if (!(pausedMs > 0)) return l;
  return { since: l.since + pausedMs, lastHeardAt: l.lastHeardAt === null ? null : l.lastHeardAt + pausedMs, brokenAt: l.brokenAt };
}

/** Ticks a runner gives per heartbeat period: bounds how late a deadline is noticed. */
export const TICKS_PER_HEARTBEAT = 5;

export function tickPeriodMs(heartbeatMs: number): number {
  return Math.max(1, Math.floor(heartbeatMs / TICKS_PER_HEARTBEAT));
}

/**
 * A gap between two steps longer than this is a stall. The runner ticks
 * TICKS_PER_HEARTBEAT times per heartbeat, so half a heartbeat is two and a
 * half missed ticks: not jitter.
 */
export function stallThresholdMs(t: Timings): number {
  return t.heartbeatMs / 2;
}

/** How long this machine stalled, from the time since its previous step; 0 when it did not. */
export function stallMs(previousStepAt: number, now: number, t: Timings): number {
  const gap = now - previousStepAt;
  return gap > stallThresholdMs(t) ? gap : 0;
}

export function verdict(l: Liveness, now: number, t: Timings): Verdict {
  if (l.brokenAt !== null) return "down";
  const silence = silenceMs(l, now);
  if (silence >= t.failoverTimeoutMs) return "down";
  if (silence >= SUSPECT_AFTER_HEARTBEATS * t.heartbeatMs) return "suspect";
  return "alive";
}

export function isDown(l: Liveness, now: number, t: Timings): boolean {
  return verdict(l, now, t) === "down";
}

/**
 * What goes into a heartbeat's `msSinceHeard*` fields: how long ago the peer
 * was last heard, or null when it was never heard or its socket broke since
 * (so a witness whose socket to the main broke stops vouching for it at once).
 */
export function msSinceHeard(l: Liveness, now: number): number | null {
  if (l.lastHeardAt === null || l.brokenAt !== null) return null;
  return now - l.lastHeardAt;
}

/** Heartbeats built ahead, at most: as many periods as alive tokens are signed ahead (net/alive-presigner.ts). */
export const MAX_AHEAD_PERIODS = 3;

/**
 * How many of the next periods' heartbeats a machine hands its socket's thread with each regular
 * one (docs/design.md §Heartbeats and freshness, "Heartbeats that keep time"): they cover an event loop held that long by a
 * copy or a collection, so its peers hear it on time, and they are all it can send while its loop
 * stands still, so a loop stalled for good goes silent that much later than its process would.
 * At most 60 % of a timeout: detecting a dead loop is never delayed by more than that.
 */
export function aheadPeriods(t: Timings): number {
  return Math.max(0, Math.min(MAX_AHEAD_PERIODS, Math.floor((0.6 * t.failoverTimeoutMs) / t.heartbeatMs)));
}

