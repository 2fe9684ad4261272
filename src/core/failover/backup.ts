/**
 * The backup server's failover state machine.
 *
 *   unpaired ──paired──▶ syncing ──syncDone──▶ idle
 *   idle   ──(main down, and no client heard the main within a timeout)──▶ active
 *   idle   ──(main down, but a client still hears it)──▶ idle + "main-unreachable-from-backup"
 *   active ──(the main is active at a higher epoch: fencing)──▶ idle
 *   any    ──unpaired──▶ unpaired
 *
 * "Main down" is the failure detector's verdict: silence for a timeout, or
 * the replication socket broke. A backup that never finished its initial copy
 * (`syncing`) never takes over: it has nothing to serve.
 */
import { clampTimings, isDown, watch, type Timings } from "../failure-detector.ts";
import { claimEpoch } from "./epoch.ts";
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
import type { BackupEvent, BeatBody, Condition, Effect, Peer, Step } from "./types.ts";

export type BackupPhase =
  | { readonly kind: "unpaired" }
  | { readonly kind: "syncing"; readonly progress: number }
  | { readonly kind: "idle"; readonly condition: Condition | null }
  | { readonly kind: "active"; readonly epoch: number; readonly since: number };

export interface BackupState extends ServerBase {
  readonly role: "backup";
  readonly phase: BackupPhase;
}

export interface BackupOptions {
  readonly timings?: Partial<Timings>;
  readonly paired: boolean;
  /** Whether an initial copy completed before (persisted): a restarted backup that has the data is `idle` at once. */
  readonly synced: boolean;
  readonly epoch: number;
}

export function startBackup(opts: BackupOptions, now: number): Step<BackupState> {
  const phase: BackupPhase = !opts.paired
    ? { kind: "unpaired" }
    : opts.synced
      ? { kind: "idle", condition: null }
      : { kind: "syncing", progress: 0 };
  const state: BackupState = {
    ...initBase(clampTimings(opts.timings), Math.max(0, opts.epoch), opts.paired, now),
    role: "backup",
    phase,
  };
  return settle(null, state, now, [], null, false);
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
      const r = absorbHeartbeat(s, "backup", ev.id, ev.beat, now, fx);
      next = r.state;
      replyTo = r.replyTo;
      break;
    }
    case "linkBroken":
      next = absorbLinkBroken(s, "backup", ev.peer, now);
      break;
    case "paired":
      if (s.phase.kind === "unpaired") {
        next = { ...s, paired: true, other: { live: watch(now), beat: null }, phase: { kind: "syncing", progress: 0 } };
      }
      break;
    case "syncProgress":
      if (s.phase.kind === "syncing") {
        const progress = Math.min(1, Math.max(0, Number.isFinite(ev.progress) ? ev.progress : 0));
        next = { ...s, phase: { kind: "syncing", progress } };
      }
      break;
    case "syncDone":
      if (s.phase.kind === "syncing") next = { ...s, phase: { kind: "idle", condition: null } };
      break;
    case "unpaired":
      if (s.phase.kind === "active") fx.push({ type: "stopServing", epoch: s.phase.epoch });
      next = { ...s, paired: false, phase: { kind: "unpaired" } };
      break;
  }
  return settle(prev, next, now, fx, replyTo, ev.type === "tick");
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
  // Two passes at most: a step-down to idle may be followed by the idle rules, never by more.
  const cur = settlePhases(s, 2, (c) => decide(c, now, fx, onTick));
  // Announce any change of what others see (a start counts): state or condition.
  const changed = prev === null || cur.phase.kind !== prev.phase.kind || conditionOf(cur) !== conditionOf(prev);
  const state = sendBeats(cur, backupBeat(cur, now), now, { announce: changed, replyTo }, fx);
  return { state, effects: fx };
}

function conditionOf(s: BackupState): Condition | null {
  return s.phase.kind === "idle" ? s.phase.condition : null;
}

function decide(s: BackupState, now: number, fx: Effect[], onTick: boolean): BackupState {
  const phase = s.phase;
  switch (phase.kind) {
    case "unpaired":
    case "syncing":
      return s;
    case "active": {
      const theirs = otherActiveEpoch(s, "backup", now);
      if (theirs === null || theirs <= phase.epoch) return s;
      fx.push({ type: "stopServing", epoch: phase.epoch });
      fx.push({ type: "log", level: "info", message: `The main is active at epoch ${theirs}: the backup goes idle.` });
      return { ...s, phase: { kind: "idle", condition: null } };
    }
    case "idle": {
      if (!isDown(s.other.live, now, s.timings)) return phase.condition === null ? s : { ...s, phase: { kind: "idle", condition: null } };
      if (witnessHearsMain(s, now)) {
        if (phase.condition !== null) return s;
        fx.push({ type: "log", level: "warn", message: "Main unreachable from backup, but clients still hear it: not taking over." });
        return { ...s, phase: { kind: "idle", condition: "main-unreachable-from-backup" } };
      }
      if (!onTick || !mayClaim(s, now)) return s;
      const epoch = claimEpoch("backup", s.epoch);
      const learned = learnEpoch(s, epoch, fx);
      fx.push({ type: "startServing", epoch });
      fx.push({ type: "log", level: "warn", message: `The main is down: the backup takes over at epoch ${epoch}.` });
      return { ...learned, phase: { kind: "active", epoch, since: now } };
    }
  }
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
    syncProgress: s.phase.kind === "syncing" ? s.phase.progress : null,
  };
}
