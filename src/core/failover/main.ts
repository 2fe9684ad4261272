/**
 * The main server's failover state machine.
 *
 *   rejoining ──(backup heard: copied its state; it is not active, or failback auto)──▶ active
 *   rejoining ──(backup silent a timeout, and no client says it is active)──▶ active
 *   rejoining ──(backup idle, but copying from it failed for a timeout)──▶ active
 *   rejoining ──(copied, backup active, failback manual)──▶ standby ──switchBack──▶ rejoining
 *   standby   ──(the backup no longer serves)──▶ rejoining
 *   active    ──(the backup is active at a higher epoch: fencing)──▶ rejoining
 *   active    (served without the backup's latest state) ──(hears it, not serving)──▶ copies it in, still serving
 *   active    ──(paired, heard neither the backup nor any client for a timeout)──▶ isolated
 *   rejoining ──(backup silent a timeout, and no client heard either)──▶ isolated
 *   isolated  ──(hears the backup or a client again)──▶ rejoining
 *
 * Every start is `rejoining`: the main always asks the backup first, so it
 * never serves over a backup that took over while it was gone. It copies the
 * Data Hub state from any backup that is idle or active (copying nothing new
 * is cheap; missing a term the backup served after a crash is not). It does
 * not take over while clients say the backup is active but the backup cannot
 * be reached to copy from: those clients are served, and the data stays whole.
 * A backup it removed stays a former partner until it says it let go
 * (former-partners.ts), so one that missed the message is still told.
 */
import { clampTimings, isDown, watch, type Timings } from "../failure-detector.ts";
import { claimEpoch } from "./epoch.ts";
import { forgetFormer, rememberFormer } from "./former-partners.ts";
import {
  absorbHeartbeat,
  absorbLinkBroken,
  initBase,
  isIsolated,
  learnEpoch,
  mayClaim,
  msSinceHeardOther,
  noteStall,
  otherActiveEpoch,
  pruneClients,
  sendBeats,
  type ServerBase,
  settlePhases,
} from "./server-common.ts";
import type { BeatBody, Effect, Failback, MainEvent, PairingRecord, Peer, Step } from "./types.ts";

export type CatchUp =
  | { readonly kind: "idle"; readonly retryAt: number }
  | { readonly kind: "running"; readonly epoch: number }
  | { readonly kind: "done" };

export type MainPhase =
  | {
      readonly kind: "active";
      readonly epoch: number;
      readonly since: number;
      /** "done" once this main holds every write the backup took; else it copies them when it hears the backup (handBack). */
      readonly catchUp: CatchUp;
      /** Copies of them failed in a row: each wait doubles (handBackRetryMs), as every try costs both a handshake. */
      readonly catchUpFailures: number;
    }
  | {
      readonly kind: "rejoining";
      readonly since: number;
      readonly catchUp: CatchUp;
      /** When copying from the backup first failed in this rejoin (see decideRejoining). */
      readonly copyFailingSince: number | null;
      readonly switchBack: boolean;
    }
  | { readonly kind: "standby"; readonly since: number }
  /** Paired, and heard nobody for a timeout: refuses writes until it hears the network again. */
  | { readonly kind: "isolated"; readonly since: number };

export interface MainState extends ServerBase {
  readonly role: "main";
  readonly selfId: string;
  readonly failback: Failback;
  readonly phase: MainPhase;
  /** Since when the paired backup's heartbeats say it is not paired with this main; null while they name it. */
  readonly disownedSince: number | null;
  /** When the pairing exchange was last asked for again (askToPairAgain). */
  readonly pairAgainAt: number;
  /** Removed backups not yet heard letting go: their heartbeats are answered (former-partners.ts). */
  readonly formerPartners: readonly string[];
}

export interface MainOptions {
  readonly timings?: Partial<Timings>;
  readonly failback?: Failback;
  /** This machine's id (a backup's heartbeat names the main it paired with). */
  readonly selfId: string;
  /** The persisted pairing: the backup this main paired with, or null. */
  readonly pairing: PairingRecord | null;
  /** The persisted epoch (0 on a fresh data dir). */
  readonly epoch: number;
  /** The persisted removed backups not yet heard letting go. */
  readonly formerPartners?: readonly string[];
}

function rejoining(now: number, switchBack = false): MainPhase {
  return { kind: "rejoining", since: now, catchUp: { kind: "idle", retryAt: now }, copyFailingSince: null, switchBack };
}

/** A (re)started main: `rejoining`, or straight to `active` when no backup is paired. */
export function startMain(opts: MainOptions, now: number): Step<MainState> {
  const state: MainState = {
    ...initBase(clampTimings(opts.timings), Math.max(0, opts.epoch), opts.pairing?.peerId ?? null, now),
    role: "main",
    selfId: opts.selfId,
    failback: opts.failback ?? "auto",
    phase: rejoining(now),
    disownedSince: null,
    pairAgainAt: -Infinity,
    formerPartners: opts.formerPartners ?? [],
  };
  return settle(null, state, now, [], null, false);
}

export function mainTransition(prev: MainState, ev: MainEvent, now: number): Step<MainState> {
  const fx: Effect[] = [];
  const s = noteStall(prev, now, fx);
  let replyTo: Peer | null = null;
  let next: MainState = s;
  switch (ev.type) {
    case "tick":
      next = pruneClients(s, now);
      break;
    case "heartbeat": {
      const r = absorbHeartbeat(s, "main", ev.id, ev.beat, now, fx, ev.witnessMsAgo);
      next = ev.beat.role === "backup" && ev.id === s.peerId ? noteDisowned(r.state, ev.beat, now) : r.state;
      replyTo = r.replyTo;
      break;
    }
    case "linkBroken":
      next = absorbLinkBroken(s, "main", ev.peer, now);
      break;
    case "catchUpDone":
      if (s.phase.kind === "rejoining" && s.phase.catchUp.kind === "running") {
        next = { ...s, phase: { ...s.phase, catchUp: { kind: "done" } } };
      } else if (s.phase.kind === "active" && s.phase.catchUp.kind === "running") {
        fx.push({ type: "log", level: "info", message: "Copied the Data Hub writes the backup took that this main had not copied yet." });
        next = { ...s, phase: { ...s.phase, catchUp: { kind: "done" } } };
      }
      break;
    case "catchUpFailed":
      // Retry after a heartbeat, not in a tight loop with a runner that fails at once.
      if (s.phase.kind === "rejoining" && s.phase.catchUp.kind === "running") {
        const copyFailingSince = s.phase.copyFailingSince ?? now;
        next = { ...s, phase: { ...s.phase, catchUp: { kind: "idle", retryAt: now + s.timings.heartbeatMs }, copyFailingSince } };
      } else if (s.phase.kind === "active" && s.phase.catchUp.kind === "running") {
        const failures = s.phase.catchUpFailures + 1;
        next = { ...s, phase: { ...s.phase, catchUp: { kind: "idle", retryAt: now + handBackRetryMs(s.timings, failures) }, catchUpFailures: failures } };
      }
      break;
    case "switchBack":
      if (s.phase.kind === "standby") {
        fx.push({ type: "log", level: "info", message: "Switching back to the main: copying the backup's Data Hub state first." });
        next = { ...s, phase: rejoining(now, true) };
      } else if (s.phase.kind === "rejoining") {
        next = { ...s, phase: { ...s.phase, switchBack: true } };
      }
      break;
    case "setFailback":
      next = { ...s, failback: ev.failback };
      // Automatic now: a main waiting in standby goes back as if someone had switched back.
      if (ev.failback === "auto" && s.phase.kind === "standby") next = { ...next, phase: rejoining(now, true) };
      break;
    case "paired":
      if (s.peerId === ev.peerId) break;
      fx.push({ type: "persistPairing", pairing: { peerId: ev.peerId, confirmed: true, hubCopied: false } });
      fx.push({ type: "log", level: "info", message: `Paired with the backup ${ev.peerId}.` });
      // Added again, it is the partner, no longer a former one.
      next = withFormer({ ...s, peerId: ev.peerId, other: { live: watch(now), beat: null }, heardNetworkAt: now, disownedSince: null }, forgetFormer(s.formerPartners, ev.peerId), fx);
      break;
    case "unpaired":
      if (s.peerId === null) break;
      fx.push({ type: "persistPairing", pairing: null });
      fx.push({ type: "log", level: "info", message: `Removed the backup ${s.peerId}.` });
      next = withFormer({ ...s, peerId: null, other: { live: watch(now), beat: null }, disownedSince: null }, rememberFormer(s.formerPartners, s.peerId), fx);
      break;
    case "formerPartnerHeard":
      if (ev.pairedWith === s.selfId || !s.formerPartners.includes(ev.id)) break;
      fx.push({ type: "log", level: "info", message: `The removed backup ${ev.id} has let go of this main.` });
      next = withFormer(s, forgetFormer(s.formerPartners, ev.id), fx);
      break;
    case "lanes":
      next = { ...s, lanes: ev.lanes };
      break;
  }
  return settle(prev, ev.type === "tick" ? askToPairAgain(next, now, fx) : next, now, fx, replyTo, ev.type === "tick");
}

/** The removed backups still answered, persisted before anything else happens. */
function withFormer(s: MainState, formerPartners: readonly string[], fx: Effect[]): MainState {
  if (formerPartners === s.formerPartners) return s;
  fx.push({ type: "persistFormerPartners", ids: formerPartners });
  return { ...s, formerPartners };
}

/** The paired backup says whom it is paired with in every heartbeat: note since when that is not this main. */
function noteDisowned(s: MainState, beat: BeatBody, now: number): MainState {
  const disowned = beat.pairedWith !== s.selfId;
  if (disowned === (s.disownedSince !== null)) return s;
  return { ...s, disownedSince: disowned ? now : null };
}

/** Silence of the paired backup, in failover timeouts, after which the main runs the pairing exchange again. */
export const PAIR_AGAIN_AFTER_SILENT_TIMEOUTS = 4;

/**
 * The main runs the pairing exchange again (the runner's keeper backs off on its own) when its
 * backup has disowned it for a timeout, or has been silent for PAIR_AGAIN_AFTER_SILENT_TIMEOUTS:
 * a backup that lost its pairing record no longer knows this main's machine key, so its
 * heartbeats do not even count here. The exchange is idempotent for a backup still paired with
 * this main, and fails harmlessly for a dead one. Without this, the two would stay apart.
 */
function askToPairAgain(s: MainState, now: number, fx: Effect[]): MainState {
  if (s.peerId === null) return s;
  const T = s.timings.failoverTimeoutMs;
  const heardAt = s.other.live.lastHeardAt ?? s.other.live.since;
  const disowned = s.disownedSince !== null && now - s.disownedSince >= T && !isDown(s.other.live, now, s.timings);
  if (!disowned && now - heardAt < PAIR_AGAIN_AFTER_SILENT_TIMEOUTS * T) return s;
  // One streak of asking per disowning (or silence): said once in the log, asked again each period.
  const askedInStreak = s.pairAgainAt >= (disowned ? s.disownedSince! : heardAt);
  if (askedInStreak && now - s.pairAgainAt < (disowned ? T : PAIR_AGAIN_AFTER_SILENT_TIMEOUTS * T)) return s;
  if (!askedInStreak) {
    fx.push({
      type: "log",
      level: disowned ? "warn" : "info",
      message: disowned ? `The backup ${s.peerId} says it is not paired with this main: pairing with it again.` : `The backup ${s.peerId} has been silent: running the pairing exchange with it again.`,
    });
  }
  fx.push({ type: "pairAgain", peerId: s.peerId });
  return { ...s, pairAgainAt: now };
}

/**
 * Applies the rules until the phase is stable, then sends what is due.
 * Taking over because the backup is silent happens only on a tick: a runner
 * handles all input that is waiting (say, datagrams queued while the process
 * was stopped) before its next tick, so silence is judged on everything it
 * has. Stepping down, or taking over on the backup's own word, happens at once.
 */
function settle(
  prev: MainState | null,
  s: MainState,
  now: number,
  fx: Effect[],
  replyTo: Peer | null,
  onTick: boolean,
): Step<MainState> {
  // A few passes at most (active → rejoining → catch-up started).
  const cur = settlePhases(s, 4, (c) => decide(c, now, fx, onTick));
  // Announce any change of what others see (a start counts): state or active epoch.
  const changed = prev === null || cur.phase.kind !== prev.phase.kind || activeEpoch(cur) !== activeEpoch(prev) || cur.peerId !== prev.peerId;
  const state = sendBeats(cur, mainBeat(cur, now), now, { announce: changed, replyTo }, fx);
  return { state, effects: fx };
}

function activeEpoch(s: MainState): number | null {
  return s.phase.kind === "active" ? s.phase.epoch : null;
}

function decide(s: MainState, now: number, fx: Effect[], onTick: boolean): MainState {
  const phase = s.phase;
  switch (phase.kind) {
    case "active": {
      if (s.peerId === null) return s;
      if (isIsolated(s, now) && onTick && mayClaim(s, now)) {
        fx.push({ type: "stopServing", epoch: phase.epoch });
        fx.push({ type: "log", level: "warn", message: "Main isolated: it hears neither the backup nor any client, so it stops accepting writes." });
        return { ...s, phase: { kind: "isolated", since: now } };
      }
      const theirs = otherActiveEpoch(s, "main", now);
      if (theirs !== null && theirs > phase.epoch) {
        fx.push({ type: "stopServing", epoch: phase.epoch });
        fx.push({ type: "log", level: "warn", message: `The backup is active at epoch ${theirs} (ours ${phase.epoch}): stepping down.` });
        return { ...s, phase: rejoining(now) };
      }
      // The backup names a later epoch and no longer serves it: it took over while this main was stopped or
      // cut off, then restarted. It may hold writes this main lacks, and it never copies anything older than
      // its own newest: copy them in, and claim above its epoch.
      const beat = s.other.beat;
      if (beat === null || !(beat.epoch > phase.epoch) || beat.pairedWith !== s.selfId || isDown(s.other.live, now, s.timings)) return handBack(s, phase, now, fx);
      fx.push({ type: "stopServing", epoch: phase.epoch });
      fx.push({ type: "log", level: "warn", message: `The backup served epoch ${beat.epoch} while this main was away (ours ${phase.epoch}): copying its Data Hub state first.` });
      return { ...s, phase: rejoining(now) };
    }
    case "isolated":
      if (s.peerId === null) return becomeActive(s, now, fx, true);
      if (isIsolated(s, now)) return s;
      fx.push({ type: "log", level: "info", message: "The main hears the network again: rejoining." });
      return { ...s, phase: rejoining(now) };
    case "standby": {
      if (s.peerId === null) return becomeActive(s, now, fx, true);
      // Standby only makes sense while the backup serves; if it stopped, the main must.
      if (backupServing(s, now)) return s;
      fx.push({ type: "log", level: "info", message: "The backup is no longer active: the main takes over." });
      return { ...s, phase: rejoining(now) };
    }
    case "rejoining":
      return decideRejoining(s, phase, now, fx, onTick);
  }
}

function backupServing(s: MainState, now: number): boolean {
  return otherActiveEpoch(s, "main", now) !== null;
}

function decideRejoining(
  s: MainState,
  phase: Extract<MainPhase, { kind: "rejoining" }>,
  now: number,
  fx: Effect[],
  onTick: boolean,
): MainState {
  if (s.peerId === null) return becomeActive(s, now, fx, true);
  const beat = s.other.beat;
  if (isDown(s.other.live, now, s.timings)) {
    // Backup silent for a timeout: wait while clients say it serves (its state could not be copied), else
    // take over. A copy still running from a silent backup is abandoned: startServing tells the runner.
    if (backupServing(s, now) || !onTick || !mayClaim(s, now)) return s;
    // Hearing nobody at all, it cannot tell a dead backup from its own cut cable: it waits for the network.
    if (isIsolated(s, now)) return { ...s, phase: { kind: "isolated", since: now } };
    return becomeActive(s, now, fx, false);
  }
  // Asked, no answer yet (a fresh start): give the backup a timeout to answer.
  if (beat === null) return s;
  // A backup without a first copy of the Data Hub state, or paired elsewhere, has nothing to hand back.
  if (!holdsData(s, beat)) return becomeActive(s, now, fx, true);
  // An idle backup we hear but cannot copy from (one-way partition, blocked port): nobody serves, so
  // after a timeout of failed copies the main serves without, and copies the rest once it can (handBack).
  const failing = phase.copyFailingSince;
  const gaveUp = failing !== null && now - failing >= s.timings.failoverTimeoutMs;
  if (beat.state === "idle" && gaveUp && onTick && phase.catchUp.kind !== "done") {
    fx.push({ type: "log", level: "warn", message: "Cannot copy from the idle backup: the main serves without its latest Data Hub state." });
    return becomeActive(s, now, fx, false);
  }
  switch (phase.catchUp.kind) {
    case "idle":
      if (now < phase.catchUp.retryAt) return s;
      fx.push({ type: "startCatchUp", epoch: beat.epoch });
      return { ...s, phase: { ...phase, catchUp: { kind: "running", epoch: beat.epoch } } };
    case "running":
      return s;
    case "done":
      // A backup still serving takes writes until it hears this main's epoch: those are copied once it stops (handBack).
      if (beat.state !== "active" || phase.switchBack || s.failback === "auto") return becomeActive(s, now, fx, beat.state !== "active");
      fx.push({ type: "log", level: "info", message: "Caught up with the backup; waiting for someone to switch back (failback manual)." });
      return { ...s, phase: { kind: "standby", since: now } };
  }
}

/** Whether the backup's heartbeat says it holds Data Hub state for this main: paired with it, and copied at least once. */
function holdsData(s: MainState, beat: BeatBody): boolean {
  return beat.pairedWith === s.selfId && beat.state !== "unpaired" && (beat.state !== "syncing" || beat.hubCopied === true);
}

/**
 * A main that began serving without the backup's latest state copies it once it hears the backup
 * again, not serving: writes the backup acknowledged exist nowhere else. That is a main that took
 * over while the backup was silent or could not be copied from, and a main back from the backup
 * (failback): the backup takes writes until it hears the new epoch, after the catch-up's answer.
 * It keeps serving meanwhile; newer versions win the import, so this main's own writes since stay.
 */
function handBack(s: MainState, phase: Extract<MainPhase, { kind: "active" }>, now: number, fx: Effect[]): MainState {
  const beat = s.other.beat;
  if (phase.catchUp.kind !== "idle" || now < phase.catchUp.retryAt) return s;
  if (beat === null || beat.state === "active" || isDown(s.other.live, now, s.timings) || !holdsData(s, beat)) return s;
  fx.push({ type: "startCatchUp", epoch: beat.epoch });
  return { ...s, phase: { ...phase, catchUp: { kind: "running", epoch: beat.epoch } } };
}

/** The wait after `failures` failed copies while serving: a heartbeat, doubling, at most HAND_BACK_RETRY_MAX_TIMEOUTS timeouts. */
export function handBackRetryMs(t: Timings, failures: number): number {
  return Math.min(t.heartbeatMs * 2 ** Math.min(failures - 1, 20), HAND_BACK_RETRY_MAX_TIMEOUTS * t.failoverTimeoutMs);
}

/** The longest wait between copies of a backup heard but not copyable while the main serves (a blocked port, another key). */
export const HAND_BACK_RETRY_MAX_TIMEOUTS = 10;

/** Claims a fresh epoch (persisted first), then serves; `caughtUp` says whether it holds everything the backup took. */
function becomeActive(s: MainState, now: number, fx: Effect[], caughtUp: boolean): MainState {
  const epoch = claimEpoch("main", s.epoch);
  const learned = learnEpoch(s, epoch, fx);
  fx.push({ type: "startServing", epoch });
  fx.push({ type: "log", level: "info", message: `The main is active at epoch ${epoch}.` });
  const catchUp: CatchUp = caughtUp ? { kind: "done" } : { kind: "idle", retryAt: now };
  return { ...learned, phase: { kind: "active", epoch, since: now, catchUp, catchUpFailures: 0 } };
}

export function mainBeat(s: MainState, now: number): BeatBody {
  return {
    role: "main",
    state: s.phase.kind,
    epoch: s.epoch,
    activeEpoch: activeEpoch(s),
    msSinceHeardMain: 0,
    msSinceHeardBackup: msSinceHeardOther(s, now),
    condition: null,
    syncProgress: null,
    pairedWith: s.peerId,
    lanes: s.lanes,
    hubCopied: null,
  };
}
