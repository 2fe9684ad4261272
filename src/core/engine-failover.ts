/**
 * Render-engine failover, decided (docs/design.md §Render-engine backups).
 *
 * A pure state machine: `transition(state, event, now)` returns the next
 * state and the router commands to send. The runner on the active server
 * feeds it heartbeats heard, the engines' retained health and frame values,
 * the router's reported routes and locks, operator switches and ticks; it
 * sends the commands and publishes the views. Nothing here reads a clock.
 *
 * The routes wanted are derived from who stands in for whom; a command is
 * sent only where the router's reported route differs, so a new active
 * server (after a server failover) converges from what the router says.
 */
import type { BackupGroup } from "./backup-groups.ts";
import type { LockState, SwitchReason } from "./router.ts";

export const DEFAULT_ENGINE_SILENCE_MS = 3_000;
export const DEFAULT_FRAMES_FROZEN_MS = 1_000;
/** A command the router has not confirmed is sent again after this long. */
export const DEFAULT_ROUTE_RETRY_MS = 2_000;

export interface EngineFailoverTimings {
  /** An engine whose machine has not been heard for this long is dead. */
  silenceMs: number;
  /** An engine whose frame counter has not advanced for this long is frozen. */
  framesFrozenMs: number;
  routeRetryMs: number;
}

export const DEFAULT_ENGINE_TIMINGS: EngineFailoverTimings = {
  silenceMs: DEFAULT_ENGINE_SILENCE_MS,
  framesFrozenMs: DEFAULT_FRAMES_FROZEN_MS,
  routeRetryMs: DEFAULT_ROUTE_RETRY_MS,
};

/** Data Hub keys an engine's software publishes (retained), and the one the backup reads. */
export const engineHealthKey = (machineId: string) => `$understudy/engine/${machineId}/health`;
export const engineFramesKey = (machineId: string) => `$understudy/engine/${machineId}/frames`;
/** Retained: the main engine the backup stands in for (null when none), so it can load that scene first. */
export const engineReplacesKey = (backupId: string) => `$understudy/engine/${backupId}/replaces`;

/** What the servers know of one engine. */
export interface EngineSignals {
  lastHeardAt: number | null;
  /** The engine's own word; null until it has said. */
  healthy: boolean | null;
  frames: number | null;
  /** When `frames` last changed (or was first seen). */
  framesChangedAt: number | null;
}

/** Why an engine is not fit for air, or "ok". */
export type EngineCondition = "ok" | "silent" | "unhealthy" | "frozen";

export interface StandIn {
  mainId: string;
  since: number;
  /** A switch the operator made stays until the operator switches back. */
  manual: boolean;
  reason: SwitchReason;
}

export interface GroupDecision {
  standIn: StandIn | null;
  /** Why the routes last changed (the reason the commands carry). */
  lastChange: SwitchReason;
  /** Mains the operator sent back to air while unfit: not taken again until fit once more. */
  declined: readonly string[];
  /** The router's routes have been read once: a new active server adopts what it finds. */
  adopted: boolean;
  /** Per main: since when it has been unfit (null when fit), and since when fit. */
  failedSince: Record<string, number | null>;
  fitSince: Record<string, number | null>;
}

export interface RouterView {
  connected: boolean;
  routes: readonly (number | null)[];
  locks: readonly LockState[];
}

export interface PendingRoute {
  source: number;
  sentAt: number;
}

export interface EngineFailoverState {
  groups: readonly BackupGroup[];
  timings: EngineFailoverTimings;
  /** When the decision started: an engine never heard counts as heard then. */
  startedAt: number;
  engines: Record<string, EngineSignals>;
  decisions: Record<string, GroupDecision>;
  router: RouterView;
  /** Commands sent and not yet confirmed, by destination. */
  pending: Record<number, PendingRoute>;
}

/** A group's decision as the previous active server kept it (core/engine-decision-record.ts), in this server's clock. */
export type RestoredDecision = Pick<GroupDecision, "standIn" | "declined"> & { holdSince: number | null };

export type EngineFailoverEvent =
  /** The engine's machine was heard at `at` (default: now); an older time than the one known changes nothing. */
  | { kind: "heard"; machineId: string; at?: number }
  | { kind: "health"; machineId: string; healthy: boolean }
  | { kind: "frames"; machineId: string; frames: number }
  | { kind: "router"; connected: boolean; routes: readonly (number | null)[]; locks: readonly LockState[] }
  /** The operator puts the backup on air for `mainId`, or back to the main. */
  | { kind: "manual"; groupId: string; mainId: string; to: "backup" | "main" }
  | { kind: "groups"; groups: readonly BackupGroup[] }
  /** A new active server takes the decision its predecessor kept, before it reads the router. */
  | { kind: "restore"; groupId: string; decision: RestoredDecision }
  | { kind: "tick" };

export interface RouteCommand {
  groupId: string;
  destination: number;
  source: number;
  from: string;
  to: string;
  reason: SwitchReason;
}

export interface TransitionResult {
  state: EngineFailoverState;
  commands: RouteCommand[];
  /** Why a manual switch was not made, for the operator. */
  refusal?: string;
}

/** What the Health panel shows of one engine. */
export type EngineStatus =
  | { kind: "on-air"; condition: EngineCondition }
  | { kind: "replaced"; by: string; condition: EngineCondition; reason: SwitchReason }
  | { kind: "failed-no-backup"; condition: EngineCondition; why: "backup-busy" | "backup-unfit" | "manual-mode" }
  | { kind: "standing-in"; for: string; condition: EngineCondition }
  | { kind: "standby"; condition: EngineCondition };

/** A failover that would not happen, shown before it matters. */
export interface RouteWarning {
  groupId: string;
  destination: number;
  problem: "locked" | "router-disconnected";
  message: string;
}

export function initialEngineFailover(
  groups: readonly BackupGroup[],
  now: number,
  timings: EngineFailoverTimings = DEFAULT_ENGINE_TIMINGS,
): EngineFailoverState {
  return {
    groups,
    timings,
    startedAt: now,
    engines: {},
    decisions: {},
    router: { connected: false, routes: [], locks: [] },
    pending: {},
  };
}

/** Why an engine is unfit for air at `now`, or "ok". An engine never heard counts from the start. */
export function engineCondition(state: EngineFailoverState, machineId: string, now: number): EngineCondition {
  const signals = state.engines[machineId];
  const lastHeard = signals?.lastHeardAt ?? state.startedAt;
  if (now - lastHeard > state.timings.silenceMs) return "silent";
  if (signals?.healthy === false) return "unhealthy";
  if (signals?.frames != null && signals.framesChangedAt != null && now - signals.framesChangedAt > state.timings.framesFrozenMs) {
    return "frozen";
  }
  return "ok";
}

const NO_SIGNALS: EngineSignals = { lastHeardAt: null, healthy: null, frames: null, framesChangedAt: null };

/**
 * The machine was heard at `at` (never moving lastHeardAt back), with no
 * decision: a runner records every heartbeat of a step this way and then
 * decides once, so the order it reads them in never puts a backup on air.
 */
export function heardAt(state: EngineFailoverState, machineId: string, at: number): EngineFailoverState {
  return withSignals(state, machineId, (s) => ({ ...s, lastHeardAt: Math.max(s.lastHeardAt ?? -Infinity, at) }));
}

function withSignals(state: EngineFailoverState, machineId: string, change: (s: EngineSignals) => EngineSignals): EngineFailoverState {
  return { ...state, engines: { ...state.engines, [machineId]: change(state.engines[machineId] ?? NO_SIGNALS) } };
}

function freshDecision(): GroupDecision {
  return { standIn: null, lastChange: "switch-back", declined: [], adopted: false, failedSince: {}, fitSince: {} };
}

/** The next state and the router commands for `event` at `now`. */
export function transition(state: EngineFailoverState, event: EngineFailoverEvent, now: number): TransitionResult {
  let next = state;
  let refusal: string | undefined;
  switch (event.kind) {
    case "heard": {
      const at = Math.min(event.at ?? now, now);
      next = withSignals(state, event.machineId, (s) => (s.lastHeardAt !== null && s.lastHeardAt >= at ? s : { ...s, lastHeardAt: at }));
      break;
    }
    case "health":
      next = withSignals(state, event.machineId, (s) => ({ ...s, healthy: event.healthy }));
      break;
    case "frames":
      next = withSignals(state, event.machineId, (s) =>
        s.frames === event.frames && s.framesChangedAt !== null ? s : { ...s, frames: event.frames, framesChangedAt: now },
      );
      break;
    case "router":
      next = { ...state, router: { connected: event.connected, routes: event.routes, locks: event.locks } };
      break;
    case "groups": {
      const ids = new Set(event.groups.map((g) => g.id));
      const decisions = Object.fromEntries(Object.entries(state.decisions).filter(([id]) => ids.has(id)));
      next = { ...state, groups: event.groups, decisions };
      break;
    }
    case "manual": {
      const manual = manualSwitch(state, event, now);
      next = manual.state;
      refusal = manual.refusal;
      break;
    }
    case "restore":
      next = restore(state, event);
      break;
    case "tick":
      break;
  }
  const decided = decide(next, now);
  const routed = routeCommands(decided, now);
  return refusal === undefined ? routed : { ...routed, refusal };
}

function manualSwitch(
  state: EngineFailoverState,
  event: Extract<EngineFailoverEvent, { kind: "manual" }>,
  now: number,
): { state: EngineFailoverState; refusal?: string } {
  const group = state.groups.find((g) => g.id === event.groupId);
  if (!group || !group.mains.some((m) => m.machineId === event.mainId)) {
    return { state, refusal: `no main engine "${event.mainId}" in backup group "${event.groupId}"` };
  }
  const d = state.decisions[group.id] ?? freshDecision();
  if (event.to === "backup") {
    const backupCondition = engineCondition(state, group.backup.machineId, now);
    if (backupCondition !== "ok") {
      return { state, refusal: `the backup engine "${group.backup.machineId}" is ${backupCondition}: it is not put on air` };
    }
    const current = d.standIn;
    if (current && current.mainId !== event.mainId && engineCondition(state, current.mainId, now) !== "ok") {
      return { state, refusal: `the backup engine is standing in for "${current.mainId}", which is still unfit: switch that one back first` };
    }
    const standIn: StandIn = { mainId: event.mainId, since: now, manual: true, reason: "manual" };
    return { state: withDecision(state, group.id, { ...d, standIn, lastChange: "manual", declined: d.declined.filter((id) => id !== event.mainId) }) };
  }
  if (d.standIn?.mainId !== event.mainId) return { state };
  const unfit = engineCondition(state, event.mainId, now) !== "ok";
  const declined = unfit ? [...d.declined.filter((id) => id !== event.mainId), event.mainId] : d.declined;
  return { state: withDecision(state, group.id, { ...d, standIn: null, lastChange: "manual", declined }) };
}

/** The kept decision replaces this server's own for the group (a stand-in for a main no longer in it is dropped). */
function restore(state: EngineFailoverState, event: Extract<EngineFailoverEvent, { kind: "restore" }>): EngineFailoverState {
  const group = state.groups.find((g) => g.id === event.groupId);
  if (!group) return state;
  const mains = new Set(group.mains.map((m) => m.machineId));
  const { standIn, declined, holdSince } = event.decision;
  const kept = standIn && mains.has(standIn.mainId) ? standIn : null;
  const d = state.decisions[group.id] ?? freshDecision();
  const fitSince = kept && holdSince !== null ? { ...d.fitSince, [kept.mainId]: holdSince } : d.fitSince;
  return withDecision(state, group.id, { ...d, standIn: kept, lastChange: kept?.reason ?? d.lastChange, declined: declined.filter((id) => mains.has(id)), fitSince });
}

function withDecision(state: EngineFailoverState, groupId: string, d: GroupDecision): EngineFailoverState {
  return { ...state, decisions: { ...state.decisions, [groupId]: d } };
}

function decide(state: EngineFailoverState, now: number): EngineFailoverState {
  let next = state;
  for (const group of state.groups) next = withDecision(next, group.id, decideGroup(next, group, now));
  return next;
}

function decideGroup(state: EngineFailoverState, group: BackupGroup, now: number): GroupDecision {
  const before = state.decisions[group.id] ?? freshDecision();
  const failedSince: Record<string, number | null> = {};
  const fitSince: Record<string, number | null> = {};
  const conditions = new Map<string, EngineCondition>();
  for (const main of group.mains) {
    const condition = engineCondition(state, main.machineId, now);
    conditions.set(main.machineId, condition);
    failedSince[main.machineId] = condition === "ok" ? null : (before.failedSince[main.machineId] ?? now);
    fitSince[main.machineId] = condition === "ok" ? (before.fitSince[main.machineId] ?? now) : null;
  }
  const declined = before.declined.filter((id) => conditions.get(id) !== "ok" && conditions.has(id));
  const backupFit = engineCondition(state, group.backup.machineId, now) === "ok";
  let d: GroupDecision = { ...before, failedSince, fitSince, declined };
  if (!d.adopted && state.router.connected) d = { ...adoptRouter(state, group, d, conditions, now), adopted: true };
  const standIn = d.standIn;
  if (standIn && !conditions.has(standIn.mainId)) d = { ...d, standIn: null, lastChange: "switch-back" };
  else if (standIn && !backupFit) d = { ...d, standIn: null, lastChange: "backup-failed" };
  else if (standIn && !standIn.manual && conditions.get(standIn.mainId) === "ok") {
    const fit = fitSince[standIn.mainId];
    // Only to a main this server has heard itself: one never heard counts as fit only for the silence grace.
    const heard = state.engines[standIn.mainId]?.lastHeardAt != null;
    const held = group.switchBack === "auto" && heard && fit != null && now - fit >= group.holdTimeMs;
    // A fit main waiting out its hold gives the backup up to a main that has failed since.
    const needed = group.failoverMode === "auto" && group.mains.some((m) => failedSince[m.machineId] != null && !declined.includes(m.machineId));
    if (held || needed) d = { ...d, standIn: null, lastChange: "switch-back" };
  }
  if (d.standIn === null && backupFit && group.failoverMode === "auto") {
    const failed = group.mains
      .map((m, index) => ({ id: m.machineId, index, since: failedSince[m.machineId] }))
      .filter((m): m is { id: string; index: number; since: number } => m.since != null && !declined.includes(m.id))
      .sort((a, b) => a.since - b.since || a.index - b.index);
    const first = failed[0];
    if (first) {
      const reason = conditions.get(first.id) as Exclude<EngineCondition, "ok">;
      d = { ...d, standIn: { mainId: first.id, since: now, manual: false, reason }, lastChange: reason };
    }
  }
  return d;
}

/** A new active server takes over a switch it finds on the router (all of a main's destinations on the backup). */
function adoptRouter(
  state: EngineFailoverState,
  group: BackupGroup,
  d: GroupDecision,
  conditions: ReadonlyMap<string, EngineCondition>,
  now: number,
): GroupDecision {
  if (d.standIn) return d;
  for (const main of group.mains) {
    if (d.declined.includes(main.machineId)) continue;
    const onBackup = main.outputs.every((o, i) => state.router.routes[o.destination] === group.backup.sources[i]);
    if (!onBackup) continue;
    const condition = conditions.get(main.machineId) ?? "ok";
    // Taken over as automatic: a fit main returns after its hold time (when switch-back is
    // automatic), so routes converge after a server failover; the previous server's manual
    // flag is not known here.
    const standIn: StandIn = { mainId: main.machineId, since: now, manual: false, reason: condition === "ok" ? "manual" : condition };
    return { ...d, standIn, lastChange: standIn.reason };
  }
  return d;
}

/** Destination → the source wanted on it, with the engines involved. */
export function wantedRoutes(state: EngineFailoverState): { groupId: string; destination: number; source: number; engine: string }[] {
  const wanted: { groupId: string; destination: number; source: number; engine: string }[] = [];
  for (const group of state.groups) {
    const standIn = state.decisions[group.id]?.standIn;
    for (const main of group.mains) {
      const replaced = standIn?.mainId === main.machineId;
      main.outputs.forEach((output, i) => {
        const backupSource = group.backup.sources[i];
        const source = replaced && backupSource !== undefined ? backupSource : output.source;
        const engine = replaced ? group.backup.machineId : main.machineId;
        wanted.push({ groupId: group.id, destination: output.destination, source, engine });
      });
    }
  }
  return wanted;
}

function engineOfSource(group: BackupGroup, source: number | null | undefined): string {
  if (group.backup.sources.includes(source ?? -1)) return group.backup.machineId;
  return group.mains.find((m) => m.outputs.some((o) => o.source === source))?.machineId ?? "unknown";
}

function routeCommands(state: EngineFailoverState, now: number): TransitionResult {
  const { router } = state;
  if (!router.connected) return { state, commands: [] };
  const pending: Record<number, PendingRoute> = {};
  const commands: RouteCommand[] = [];
  for (const want of wantedRoutes(state)) {
    const actual = router.routes[want.destination];
    if (actual === want.source) continue;
    // Another client's lock: never forced here (the Health panel shows it before it matters).
    if (router.locks[want.destination] === "L") continue;
    const sent = state.pending[want.destination];
    if (sent && sent.source === want.source && now - sent.sentAt < state.timings.routeRetryMs) {
      pending[want.destination] = sent;
      continue;
    }
    const group = state.groups.find((g) => g.id === want.groupId)!;
    pending[want.destination] = { source: want.source, sentAt: now };
    commands.push({
      groupId: want.groupId,
      destination: want.destination,
      source: want.source,
      from: engineOfSource(group, actual),
      to: want.engine,
      reason: state.decisions[group.id]?.lastChange ?? "switch-back",
    });
  }
  return { state: { ...state, pending }, commands };
}
