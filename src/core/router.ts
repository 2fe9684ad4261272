/**
 * The video router as the servers see it (docs/design.md §Render-engine backups):
 * one driver interface so Videohub is one file and other switchers can follow.
 * Types only; the Videohub driver lives in `src/services/router/`.
 *
 * Ports are zero-based everywhere. A route counts only when the router's own
 * status confirms it: `route()` resolves after the confirmation, not after ACK.
 */
import { z } from "zod";
import { AppError } from "./errors.ts";
import { routerPortSchema } from "./backup-groups.ts";

/** O: locked by us; L: locked by another client (our routes are refused); U: unlocked. */
export const LOCK_STATES = ["O", "L", "U"] as const;
export type LockState = (typeof LOCK_STATES)[number];

/** What the router reported last, whole. */
export interface RouterSnapshot {
  /** e.g. "Blackmagic Smart Videohub 12G 40x40". */
  model: string;
  inputCount: number;
  outputCount: number;
  inputLabels: readonly string[];
  outputLabels: readonly string[];
  /** routes[destination] = source, or null when the router has not said. */
  routes: readonly (number | null)[];
  /** locks[destination]; "U" when the router has not said. */
  locks: readonly LockState[];
}

export type RouterEvent =
  /** Connected and the full state read (the prelude ended). */
  | { kind: "connected"; snapshot: RouterSnapshot }
  /** The router reported routes (ours or another client's). */
  | { kind: "routes"; changes: readonly { destination: number; source: number }[]; snapshot: RouterSnapshot }
  | { kind: "locks"; changes: readonly { destination: number; lock: LockState }[]; snapshot: RouterSnapshot }
  | { kind: "labels"; snapshot: RouterSnapshot }
  /** The router sent something we could not read; it was ignored and nothing changed. */
  | { kind: "error"; error: RouterError }
  /** The connection ended; the driver retries with back-off until closed. */
  | { kind: "disconnected"; error: RouterError };

/**
 * A video router. `connect` starts the connection (and its reconnects) and
 * resolves with the first full state; `close` ends it for good.
 */
export interface RouterDriver {
  connect(): Promise<RouterSnapshot>;
  close(): void;
  /** The last full state, or null while not connected. */
  state(): RouterSnapshot | null;
  /** Routes `source` to `destination`; resolves once the router's status confirms it. */
  route(destination: number, source: number): Promise<void>;
  /** Takes ("O") or releases ("U") our lock; "F" forces another client's lock open (operator only). */
  setLock(destination: number, lock: "O" | "U" | "F"): Promise<void>;
  /** Listens to the router's events; returns the function that stops listening. */
  onEvent(listener: (event: RouterEvent) => void): () => void;
}

export const ROUTER_ERROR_CODES = [
  "ROUTER_UNREACHABLE",
  "ROUTER_NOT_CONNECTED",
  "ROUTER_TIMEOUT",
  "ROUTER_NAK",
  "ROUTER_NOT_CONFIRMED",
  "ROUTER_LOCKED",
  "ROUTER_BAD_PORT",
  "ROUTER_PROTOCOL",
  "ROUTER_TOO_LARGE",
  "ROUTER_CLOSED",
] as const;
export type RouterErrorCode = (typeof ROUTER_ERROR_CODES)[number];

/** Everything a router driver can fail with; the message says what the operator can do. */
export class RouterError extends AppError {
  override readonly code: RouterErrorCode;
  constructor(code: RouterErrorCode, message: string, cause?: unknown) {
    super(code, message, { status: 502, cause });
    this.code = code;
  }
}

/** Reasons a route changes (the switch event's `reason`). */
export const SWITCH_REASONS = ["silent", "unhealthy", "frozen", "manual", "switch-back", "backup-failed"] as const;
export type SwitchReason = (typeof SWITCH_REASONS)[number];

/** Data Hub topic on which every switch is published ("via API"; also MQTT and /api). */
export const ROUTER_SWITCH_TOPIC = "$understudy/router/switch";

/**
 * One switch, as published for a studio's own scripts to drive any switcher.
 * `at` is wall-clock milliseconds (the wiring stamps it).
 */
export const routerSwitchEventSchema = z.strictObject({
  groupId: z.string().min(1).max(64),
  destination: routerPortSchema,
  source: routerPortSchema,
  /** Engine whose picture leaves air, and the one put on air. */
  from: z.string().min(1).max(128),
  to: z.string().min(1).max(128),
  reason: z.enum(SWITCH_REASONS),
  at: z.number().int().nonnegative(),
});
export type RouterSwitchEvent = z.infer<typeof routerSwitchEventSchema>;
