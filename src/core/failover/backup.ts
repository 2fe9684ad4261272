/**
 * The backup server's failover state machine.
 *
 *   unpaired ──paired──▶ syncing ──(confirmed, first Data Hub copy, every lane caught up)──▶ idle
 *   idle     ──(a lane behind the main's heads for a timeout)──▶ syncing
 *   idle | syncing ──(main down, no client heard it within a timeout; may serve)──▶ active
 *   idle     ──(main down, but a client still hears it)──▶ idle + "main-unreachable-from-backup"
 *   active   ──(the main is active at a higher epoch: fencing)──▶ idle
 *   any      ──(unpaired, or the main's heartbeat names another backup)──▶ unpaired
 *
 * "Main down" is the failure detector's verdict: silence for a timeout, or
 * the replication socket broke. A backup may serve only when the main
 * confirmed the pairing (its heartbeat named this backup) and a first
 * complete copy of the Data Hub state is in: both persisted, so a backup
 * restarted while the main is down still takes over. While the show-file and
 * asset log is still catching up it may serve too (it holds the Data Hub
 * state); the lanes in its heartbeat say what it lacks.
 */
import { clampTimings, isDown, watch, type Timings } from "../failure-detector.ts";
import { claimEpoch } from "./epoch.ts";
import { lanesBehind, logFraction, type Lanes } from "./lanes.ts";
import {
  absorbHeartbeat,
  absorbLinkBroken,
  initBase,
  learnEpoch,
  mayClaim,
  msSinceHeardOther,
  noteStall,
  otherActiveEpoch,
  pruneClients,
  sendBeats,
  witnessHearsMain,
  type ServerBase,
  settlePhases,
} from "./server-common.ts";
import type { BackupEvent, BeatBody, Condition, Effect, PairingRecord, Peer, Step } from "./types.ts";

export type BackupPhase =
  | { readonly kind: "unpaired" }
  | { readonly kind: "syncing" }
  | { readonly kind: "idle"; readonly condition: Condition | null }
  | { readonly kind: "active"; readonly epoch: number; readonly since: number };

export interface BackupState extends ServerBase {
  readonly role: "backup";
  readonly selfId: string;
  readonly pairing: (PairingRecord & { readonly since: number }) | null;
  /** Since when a lane has been behind the main's announced heads (null: caught up). */
  readonly behindSince: number | null;
  /** The log snapshot's progress, 0..1, while the log lane is copied as a snapshot. */
  readonly snapshot: number;
  readonly phase: BackupPhase;
}

export interface BackupOptions {
  readonly timings?: Partial<Timings>;
  readonly selfId: string;
  /** The persisted pairing: with a confirmed pairing and a first copy, a restarted backup starts `idle`. */
  readonly pairing: PairingRecord | null;
  readonly epoch: number;
}

export function startBackup(opts: BackupOptions, now: number): Step<BackupState> {
  const p = opts.pairing;
  const state: BackupState = {
    ...initBase(clampTimings(opts.timings), Math.max(0, opts.epoch), p?.peerId ?? null, now),
    role: "backup",
    selfId: opts.selfId,
    pairing: p === null ? null : { ...p, since: now },
    behindSince: null,
    snapshot: 0,
    phase: p === null ? { kind: "unpaired" } : mayServe(p) ? { kind: "idle", condition: null } : { kind: "syncing" },
  };
  return settle(null, state, now, [], null, false);
}

function mayServe(p: PairingRecord | null): boolean {
  return p !== null && p.confirmed && p.hubCopied;
}

export function backupTransition(prev: BackupState, ev: BackupEvent, now: number): Step<BackupState> {
  const fx: Effect[] = [];
  const s = noteStall(prev, now, fx);
  let replyTo: Peer | null = null;
  let next: BackupState = s;
  switch (ev.type) {
    case "tick":
      next = pruneClients(s, now);
      break;
    case "heartbeat": {
      const r = absorbHeartbeat(s, "backup", ev.id, ev.beat, now, fx, ev.witnessMsAgo);
      next = ev.beat.role === "main" && r.state.pairing !== null && ev.id === r.state.pairing.peerId ? hearMain(r.state, ev.beat, now, fx) : r.state;
      replyTo = r.replyTo;
      break;
    }
    case "linkBroken":
      next = absorbLinkBroken(s, "backup", ev.peer, now);
      break;
    case "paired":
      if (s.pairing?.peerId === ev.peerId) break;
      next = unpair(s, fx, null);
      fx.push({ type: "persistPairing", pairing: { peerId: ev.peerId, confirmed: false, hubCopied: false } });
      fx.push({ type: "log", level: "info", message: `Paired with the main ${ev.peerId}: copying its data.` });
      next = {
        ...next,
        peerId: ev.peerId,
        pairing: { peerId: ev.peerId, confirmed: false, hubCopied: false, since: now },
        other: { live: watch(now), beat: null },
        heardNetworkAt: now,
        phase: { kind: "syncing" },
      };
      break;
    case "syncProgress":
      next = { ...s, snapshot: Math.min(1, Math.max(0, Number.isFinite(ev.progress) ? ev.progress : 0)) };
      break;
    case "syncDone":
      if (s.pairing !== null && !s.pairing.hubCopied) next = updatePairing(s, { hubCopied: true }, fx);
      break;
    case "unpaired":
      next = unpair(s, fx, "The main removed this backup.");
      break;
    case "lanes":
      next = { ...s, lanes: ev.lanes };
      break;
  }
  return settle(prev, next, now, fx, replyTo, ev.type === "tick");
}

function updatePairing(s: BackupState, change: Partial<PairingRecord>, fx: Effect[]): BackupState {
  if (s.pairing === null) return s;
  const pairing = { ...s.pairing, ...change };
  fx.push({ type: "persistPairing", pairing: { peerId: pairing.peerId, confirmed: pairing.confirmed, hubCopied: pairing.hubCopied } });
  return { ...s, pairing };
}

function unpair(s: BackupState, fx: Effect[], why: string | null): BackupState {
  if (s.pairing === null) return s;
  if (s.phase.kind === "active") fx.push({ type: "stopServing", epoch: s.phase.epoch });
  fx.push({ type: "persistPairing", pairing: null });
  if (why !== null) fx.push({ type: "log", level: "warn", message: `${why} It no longer copies or stands in for it.` });
  return { ...s, peerId: null, pairing: null, behindSince: null, phase: { kind: "unpaired" } };
}

/**
 * How many failover timeouts a new pairing waits for the main's heartbeats to name this backup:
 * a loaded main may record its side well after the backup accepted (331 ms was seen with a
 * 250 ms timeout). Should it still give up too early, the main asks again (main.ts askToPairAgain).
 */
export const UNCONFIRMED_PAIRING_GRACE_TIMEOUTS = 3;

/**
 * A fresh heartbeat of the paired main: it confirms the pairing when it names
 * this backup, ends it when it names another (or none) — but a pairing not yet
 * confirmed gets a timeout first, as the main may still be writing its side.
 */
function hearMain(s: BackupState, beat: BeatBody, now: number, fx: Effect[]): BackupState {
  const p = s.pairing!;
  if (beat.pairedWith === s.selfId) return p.confirmed ? s : updatePairing(s, { confirmed: true }, fx);
  if (!p.confirmed && now - p.since < UNCONFIRMED_PAIRING_GRACE_TIMEOUTS * s.timings.failoverTimeoutMs) return s;
  const letGo = unpair(s, fx, "The main is no longer paired with this backup.");
  // Unpaired, it sends the main nothing more: this one beat tells a main that removed it that it let go (main.ts formerPartnerHeard).
  fx.push({ type: "send", to: { role: "main" }, beat: backupBeat(letGo, now) });
  return letGo;
}

/**
 * Applies the rules, then sends what is due. Taking over happens only on a
 * tick: the runner handles all waiting input first (datagrams queued while
 * the process was stopped may hold the main's heartbeats), so the silence is
 * judged on everything it has. Stepping down happens at once.
 */
function settle(
  prev: BackupState | null,
  s: BackupState,
  now: number,
  fx: Effect[],
  replyTo: Peer | null,
  onTick: boolean,
): Step<BackupState> {
  const tracked = trackLanes(s, now);
  // Three passes at most: a step-down to idle may be followed by the idle rules, never by more.
  const cur = settlePhases(tracked, 3, (c) => decide(c, now, fx, onTick));
  // Announce any change of what others see (a start counts): state, condition or pairing.
  const changed =
    prev === null ||
    cur.phase.kind !== prev.phase.kind ||
    conditionOf(cur) !== conditionOf(prev) ||
    cur.peerId !== prev.peerId ||
    cur.pairing?.hubCopied !== prev.pairing?.hubCopied;
  const state = sendBeats(cur, backupBeat(cur, now), now, { announce: changed, replyTo }, fx);
  return { state, effects: fx };
}

/** Which lanes are behind the heads the main last announced. */
function behind(s: BackupState): ("hub" | "log")[] {
  const heads = s.other.beat?.lanes ?? null;
  if (heads === null) return [];
  return lanesBehind(s.lanes ?? { hubEpoch: 0, hubSeq: 0, logId: "", logSeq: 0 }, heads);
}

function trackLanes(s: BackupState, now: number): BackupState {
  const isBehind = behind(s).length > 0;
  if (isBehind === (s.behindSince !== null)) return s;
  return { ...s, behindSince: isBehind ? now : null };
}

function conditionOf(s: BackupState): Condition | null {
  return s.phase.kind === "idle" ? s.phase.condition : null;
}

function decide(s: BackupState, now: number, fx: Effect[], onTick: boolean): BackupState {
  const phase = s.phase;
  switch (phase.kind) {
    case "unpaired":
      return s;
    case "syncing":
      // Heads unknown (main not heard yet) count as not caught up: idle is a claim about the main's data.
      if (mayServe(s.pairing) && s.behindSince === null && s.other.beat?.lanes) return { ...s, phase: { kind: "idle", condition: null } };
      return mayServe(s.pairing) ? considerTakeover(s, now, fx, onTick, null) : s;
    case "active": {
      const theirs = otherActiveEpoch(s, "backup", now);
      if (theirs === null || theirs <= phase.epoch) return s;
      fx.push({ type: "stopServing", epoch: phase.epoch });
      // Idle again only with every lane caught up; else it copies first.
      const caughtUp = s.behindSince === null;
      fx.push({ type: "log", level: "info", message: `The main is active at epoch ${theirs}: the backup goes ${caughtUp ? "idle" : "back to copying"}.` });
      return { ...s, phase: caughtUp ? { kind: "idle", condition: null } : { kind: "syncing" } };
    }
    case "idle": {
      // Behind for a timeout (the main writes faster than it copies, or the log lane broke): not idle.
      if (s.behindSince !== null && now - s.behindSince >= s.timings.failoverTimeoutMs && !isDown(s.other.live, now, s.timings)) {
        return { ...s, phase: { kind: "syncing" } };
      }
      return considerTakeover(s, now, fx, onTick, phase.condition);
    }
  }
}

/** The main down and no client vouching for it: take over (only on a tick, after any stall hold). */
function considerTakeover(s: BackupState, now: number, fx: Effect[], onTick: boolean, condition: Condition | null): BackupState {
  if (!isDown(s.other.live, now, s.timings)) {
    return condition === null || s.phase.kind !== "idle" ? s : { ...s, phase: { kind: "idle", condition: null } };
  }
  if (witnessHearsMain(s, now)) {
    if (s.phase.kind !== "idle" || condition !== null) return s;
    fx.push({ type: "log", level: "warn", message: "Main unreachable from backup, but clients still hear it: not taking over." });
    return { ...s, phase: { kind: "idle", condition: "main-unreachable-from-backup" } };
  }
  if (!onTick || !mayClaim(s, now)) return s;
  const epoch = claimEpoch("backup", s.epoch);
  const learned = learnEpoch(s, epoch, fx);
  const lacking = behind(s).includes("log") ? " (its copy of the show file and assets is still incomplete)" : "";
  fx.push({ type: "startServing", epoch });
  fx.push({ type: "log", level: "warn", message: `The main is down: the backup takes over at epoch ${epoch}${lacking}.` });
  return { ...learned, phase: { kind: "active", epoch, since: now } };
}

/** Copy progress of the syncing backup, 0..1: none before the Data Hub copy, then the log lane's share. */
export function syncProgress(s: BackupState): number {
  if (!s.pairing?.hubCopied) return 0;
  const heads = s.other.beat?.lanes ?? null;
  if (heads === null || s.lanes === null) return s.snapshot;
  return s.lanes.logId === heads.logId ? logFraction(s.lanes, heads) : s.snapshot;
}

export function backupBeat(s: BackupState, now: number): BeatBody {
  return {
    role: "backup",
    state: s.phase.kind,
    epoch: s.epoch,
    activeEpoch: s.phase.kind === "active" ? s.phase.epoch : null,
    msSinceHeardMain: msSinceHeardOther(s, now),
    msSinceHeardBackup: 0,
    condition: conditionOf(s),
    syncProgress: s.phase.kind === "syncing" ? syncProgress(s) : null,
    pairedWith: s.peerId,
    lanes: s.lanes,
    hubCopied: s.pairing?.hubCopied ?? false,
  };
}
