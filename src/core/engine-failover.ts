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

export type EngineFailoverEvent =
  | { kind: "heard"; machineId: string }
  | { kind: "health"; machineId: string; healthy: boolean }
  | { kind: "frames"; machineId: string; frames: number }
  | { kind: "router"; connected: boolean; routes: readonly (number | null)[]; locks: readonly LockState[] }
  /** The operator puts the backup on air for `mainId`, or back to the main. */
  | { kind: "manual"; groupId: string; mainId: string; to: "backup" | "main" }
  | { kind: "groups"; groups: readonly BackupGroup[] }
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
