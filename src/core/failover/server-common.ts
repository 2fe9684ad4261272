/**
 * What the main and the backup share: learning epochs, remembering clients'
 * reports, judging the other server (fencing evidence, witness rule) and
 * sending heartbeats. Pure functions over plain state; effects are pushed
 * onto the array the caller passes, in the order the runner must run them.
 */
import { broke, excusePause, heard, isDown, msSinceHeard, stallMs, tickPeriodMs, watch, type Timings } from "../failure-detector.ts";
import type { Lanes } from "./lanes.ts";
import type { BeatBody, ClientReport, Effect, Peer, ServerRole, ServerView } from "./types.ts";

export interface ServerBase {
  readonly timings: Timings;
  /** Highest epoch known; always already persisted (see learnEpoch). */
  readonly epoch: number;
  /** The machine id of the server this one is paired with (see PairingRecord), or null. */
  readonly peerId: string | null;
  /** This server's own lane positions (heads on the main, the copy on the backup). */
  readonly lanes: Lanes | null;
  /** When this server last heard any peer (the other server or a client); stalls excused. */
  readonly heardNetworkAt: number;
  /** The other server (the backup, seen from the main; the main, seen from the backup). */
  readonly other: ServerView;
  /** Latest heartbeat of each client, by machine id. */
  readonly clients: ReadonlyMap<string, ClientReport>;
  readonly nextBeatAt: number;
  /** When the last transition ran: a long gap since means this machine stalled. */
  readonly lastStepAt: number;
  /** No takeover before this: set past a stall, until a step on time shows input queued meanwhile was read (noteStall). */
  readonly claimHoldUntil: number;
  /** When the last stall was noted (-Infinity: none yet). */
  readonly stallNotedAt: number;
}

/** Clients silent this many timeouts are forgotten (they no longer get announcements). */
export const FORGET_CLIENT_AFTER_TIMEOUTS = 10;

export function otherRole(role: ServerRole): ServerRole {
  return role === "main" ? "backup" : "main";
}

export function initBase(timings: Timings, epoch: number, peerId: string | null, now: number): ServerBase {
  return {
    timings, epoch, peerId, lanes: null, heardNetworkAt: now, other: { live: watch(now), beat: null }, clients: new Map(), nextBeatAt: now,
    lastStepAt: now, claimHoldUntil: now, stallNotedAt: -Infinity,
  };
}

/**
 * Runs first in every transition. After a stall (SIGSTOP, a blocked event
 * loop) the other server's silence during it is excused, and takeovers wait
 * for the next step on time at least a tick after the stall (at most a
 * heartbeat): the runner may tick before it reads the datagrams that queued
 * up, and those may say the other server is fine; a step on time a tick later
 * comes after the loop has read them. Steps in the same turn as the stall
 * (input queued meanwhile, an overdue tick) are on time too, but prove
 * nothing: the overdue tick took over before the main's queued heartbeats
 * were read (sim seed 106898, I8). Not a whole heartbeat after every stall: on
 * a loaded machine, stalls of half a heartbeat come more often than once a
 * heartbeat and held a takeover for seconds after the main's socket broke
 * (kill -9 under load, bench/RESULTS.md).
 */
export function noteStall<S extends ServerBase>(s: S, now: number, fx: Effect[]): S {
  const paused = stallMs(s.lastStepAt, now, s.timings);
  if (paused === 0) {
    const read = Math.max(now, s.stallNotedAt + tickPeriodMs(s.timings.heartbeatMs));
    return { ...s, lastStepAt: now, claimHoldUntil: Math.min(s.claimHoldUntil, read) };
  }
  fx.push({ type: "log", level: "warn", message: `This machine stalled for ${paused} ms; judging peers on time it was running.` });
  return {
    ...s,
    lastStepAt: now,
    claimHoldUntil: now + s.timings.heartbeatMs,
    stallNotedAt: now,
    heardNetworkAt: s.heardNetworkAt + paused,
    other: { live: excusePause(s.other.live, paused), beat: s.other.beat },
  };
}

/** Whether this server may claim an epoch now (see noteStall). */
export function mayClaim(s: ServerBase, now: number): boolean {
  return now >= s.claimHoldUntil;
}

/** Adopts a higher epoch, emitting persistEpoch first so nothing can announce it unpersisted. */
export function learnEpoch<S extends ServerBase>(s: S, epoch: number, fx: Effect[]): S {
  if (!(epoch > s.epoch)) return s;
  fx.push({ type: "persistEpoch", epoch });
  return { ...s, epoch };
}

/**
 * Records a heartbeat. Returns whom to answer at once: a client heard for the
 * first time (or again after a timeout of silence), so a client that just
 * started or just got through learns the server's state in one round trip
 * instead of waiting for the next periodic heartbeat.
 */
export function absorbHeartbeat<S extends ServerBase>(
  s: S,
  self: ServerRole,
  id: string,
  beat: BeatBody,
  now: number,
  fx: Effect[],
  witnessMsAgo?: number | null,
): { state: S; replyTo: Peer | null } {
  if (beat.role === "client") {
    const heardMainAt = beat.msSinceHeardMain === null ? null : now - beat.msSinceHeardMain;
    const report: ClientReport = {
      lastAt: now,
      heardMainAt,
      witnessedMainAt: witnessMsAgo === undefined ? heardMainAt : witnessMsAgo === null ? null : now - witnessMsAgo,
      heardBackupAt: beat.msSinceHeardBackup === null ? null : now - beat.msSinceHeardBackup,
      following: beat.state === "follow-main" ? "main" : beat.state === "follow-backup" ? "backup" : null,
      followingEpoch: beat.activeEpoch,
      epoch: beat.epoch,
    };
    const previous = s.clients.get(id);
    const isNew = previous === undefined || previous.lastAt <= now - s.timings.failoverTimeoutMs;
    const clients = new Map(s.clients);
    clients.set(id, report);
    return { state: learnEpoch({ ...s, clients, heardNetworkAt: now }, beat.epoch, fx), replyTo: isNew ? { role: "client", id } : null };
  }
  if (beat.role === otherRole(self)) {
    // Only the server this one paired with has a say; another machine in that role is ignored.
    if (s.peerId === null || id !== s.peerId) return { state: s, replyTo: null };
    const other: ServerView = { live: heard(s.other.live, now), beat };
    return { state: learnEpoch({ ...s, other, heardNetworkAt: now }, beat.epoch, fx), replyTo: null };
  }
  // A second machine claiming our own role is a configuration mistake; it gets no say.
  fx.push({ type: "log", level: "warn", message: `Ignoring a heartbeat from ${id}: it also claims to be the ${self} server.` });
  return { state: s, replyTo: null };
}

export function absorbLinkBroken<S extends ServerBase>(s: S, self: ServerRole, peer: ServerRole, now: number): S {
  if (peer !== otherRole(self)) return s;
  return { ...s, other: { live: broke(s.other.live, now), beat: s.other.beat } };
}

/**
 * Fencing evidence: the epoch the other server is active at, as far as this
 * server can tell now, or null. Two sources, the freshest wins:
 * - its own heartbeats, while it is heard (silent for less than a timeout);
 * - clients: one following it at epoch e, having heard it within a timeout,
 *   says it is active at e. That is how two servers cut from each other still
 *   fence each other through a client that reaches both.
 * Which is fresher is told by epochs, not clocks: a server's known epoch only
 * grows, so a direct heartbeat that already knew epoch e is newer than a
 * client's word about e, and a client's word about an epoch above it is newer
 * than that heartbeat.
 */
export function otherActiveEpoch(s: ServerBase, self: ServerRole, now: number): number | null {
  const direct = isDown(s.other.live, now, s.timings) ? null : s.other.beat;
  let best = direct !== null && direct.state === "active" ? direct.activeEpoch : null;
  const other = otherRole(self);
  const freshAfter = now - s.timings.failoverTimeoutMs;
  for (const r of s.clients.values()) {
    if (r.following !== other || r.followingEpoch === null) continue;
    if (direct !== null && r.followingEpoch <= direct.epoch) continue;
    const heardAt = other === "main" ? r.heardMainAt : r.heardBackupAt;
    if (heardAt === null || heardAt <= freshAfter) continue;
    if (best === null || r.followingEpoch > best) best = r.followingEpoch;
  }
  return best;
}

/**
 * The witness rule (docs/design.md §Failover, step 2): did any client hear
 * the main less than a timeout ago, as a token the main signed proves
 * (core/signed-claims.ts)? Counted in absolute time, so a report goes stale by
 * itself: a client that lost the main stops vouching for it one timeout after
 * the main signed what it relays, and a client whose socket to the main broke
 * stops at once (it sends null). A key holder can relay only tokens the main
 * really signed, so it cannot keep the backup from taking over a dead main.
 * Clients that cannot reach the backup simply are not heard, so they never
 * block a takeover.
 */
export function witnessHearsMain(s: ServerBase, now: number): boolean {
  const freshAfter = now - s.timings.failoverTimeoutMs;
  for (const r of s.clients.values()) {
    if (r.witnessedMainAt !== null && r.witnessedMainAt > freshAfter) return true;
  }
  return false;
}

/**
 * Isolation (docs/design.md §Failover, step 6): a paired server that heard neither the other server
 * nor any client for a timeout cannot tell "the others died" from "I am cut
 * off", and the other side may already serve. Stalls of this machine are
 * excused (heardNetworkAt moves with them).
 */
export function isIsolated(s: ServerBase, now: number): boolean {
  return s.peerId !== null && now - s.heardNetworkAt >= s.timings.failoverTimeoutMs;
}

export function pruneClients<S extends ServerBase>(s: S, now: number): S {
  const forgetBefore = now - FORGET_CLIENT_AFTER_TIMEOUTS * s.timings.failoverTimeoutMs;
  let stale = false;
  for (const r of s.clients.values()) if (r.lastAt < forgetBefore) stale = true;
  if (!stale) return s;
  const clients = new Map([...s.clients].filter(([, r]) => r.lastAt >= forgetBefore));
  return { ...s, clients };
}

/** How long ago this server heard the other one, for the heartbeat's msSinceHeard* fields. */
export function msSinceHeardOther(s: ServerBase, now: number): number | null {
  return msSinceHeard(s.other.live, now);
}

/**
 * Sends what is due. Servers heartbeat the other server and every client
 * heard within a timeout, every period: a client then sees a server's silence
 * exactly as the backup sees the main's, so a blip that does not fail over
 * the backup does not move a client either. A state change is announced to
 * all of them at once; a first-contact client gets an immediate reply.
 */
export function sendBeats<S extends ServerBase>(
  s: S,
  body: BeatBody,
  now: number,
  how: { announce: boolean; replyTo: Peer | null },
  fx: Effect[],
): S {
  const due = now >= s.nextBeatAt;
  if (how.announce || due) {
    if (s.peerId !== null) fx.push({ type: "send", to: { role: otherRole(body.role === "backup" ? "backup" : "main") }, beat: body });
    const recentAfter = now - s.timings.failoverTimeoutMs;
    for (const [id, r] of s.clients) {
      if (r.lastAt > recentAfter) fx.push({ type: "send", to: { role: "client", id }, beat: body });
    }
  } else if (how.replyTo !== null) {
    fx.push({ type: "send", to: how.replyTo, beat: body });
  }
  if (!due) return s;
  // Keep the cadence on the grid (prev + period) so coarse ticks don't stretch it; resync if far behind.
  const next = s.nextBeatAt + s.timings.heartbeatMs;
  return { ...s, nextBeatAt: next > now ? next : now + s.timings.heartbeatMs };
}

/**
 * Applies `decide` until the phase stops changing, at most `maxPasses` times:
 * one event may move a server through several phases (active → rejoining →
 * catch-up started), and each pass only moves forward.
 */
export function settlePhases<S extends { readonly phase: { readonly kind: string } }>(s: S, maxPasses: number, decide: (s: S) => S): S {
  let cur = s;
  for (let i = 0; i < maxPasses; i++) {
    const after = decide(cur);
    const same = after.phase.kind === cur.phase.kind;
    cur = after;
    if (same) break;
  }
  return cur;
}
