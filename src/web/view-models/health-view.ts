/**
 * The Health panel's view-model: per backup group, each engine's state (the
 * core's words, core/engine-failover-views.ts), when it was last heard, its
 * frame counter, and per destination the route and lock the router reports;
 * the failovers that would not happen (a locked destination) before any
 * engine fails; and whether this page may switch by hand.
 */
import { engineSwitchRefusal } from "../../core/backup-group-offers.ts";
import type { BackupGroup } from "../../core/backup-groups.ts";
import { engineStatusLine } from "../../core/engine-failover-views.ts";
import type { EngineSignals, EngineStatus, RouteWarning } from "../../core/engine-failover.ts";
import type { Permission } from "../../core/permissions.ts";
import type { LockState } from "../../core/router.ts";
import type { MachineStatus } from "../../core/status.ts";
import { statusBarView, type StatusBarView } from "./status-bar-view.ts";

/** What the engine runner shows (machine/engine-watch.ts view()). */
export type EngineWatchView = {
  active: boolean;
  router: { address: string | null; connected: boolean; routes: readonly (number | null)[]; locks: readonly LockState[] };
  engines: Record<string, EngineStatus>;
  signals: Record<string, EngineSignals>;
  warnings: RouteWarning[];
  groups: readonly BackupGroup[];
};

export type EngineRow = {
  id: string;
  name: string;
  role: "main" | "backup";
  line: string;
  failed: boolean;
  lastHeardMsAgo: number | null;
  frames: number | null;
  /** Per output: destination, the source the router reports on it and its lock (ports from 1). */
  outputs: { destination: number; onAir: number | null; lock: LockState | null }[];
  /** The switch this page offers for a main engine, or null. */
  offer: "backup" | "main" | null;
};

export type HealthView = {
  status: MachineStatus;
  bar: StatusBarView;
  /** Null where this machine runs no engine runner (a client, a stand-alone machine). */
  watch: { active: boolean; router: string | null; connected: boolean; groups: { id: string; name: string; rows: EngineRow[] }[]; warnings: string[] } | null;
  switchRefusal: string | null;
};

export function healthView(status: MachineStatus, permission: Permission, watch: EngineWatchView | null): HealthView {
  const switchRefusal = engineSwitchRefusal(status, permission, watch?.active ?? false);
  if (!watch) return { status, bar: statusBarView(status), watch: null, switchRefusal };
  const peers = status.failover?.peers ?? [];
  const nameOf = (id: string) => peers.find((p) => p.id === id)?.name ?? id;
  const heardOf = (id: string) => peers.find((p) => p.id === id)?.lastHeardMsAgo ?? null;
  /** The core's line names engines by machine id; the panel by their names. */
  const named = (line: string) => line.replace(/\b[0-9a-f]{16}\b/g, (id) => nameOf(id));
  const port = (p: number | null | undefined) => (p === null || p === undefined ? null : p + 1);
  const row = (id: string, role: "main" | "backup", destinations: number[]): EngineRow => {
    const s = watch.engines[id];
    return {
      id,
      name: nameOf(id),
      role,
      line: s ? named(engineStatusLine(id, s)) : `${nameOf(id)} – not decided yet`,
      failed: s !== undefined && s.condition !== "ok",
      lastHeardMsAgo: heardOf(id),
      frames: watch.signals[id]?.frames ?? null,
      outputs: destinations.map((d) => ({ destination: d + 1, onAir: port(watch.router.routes[d]), lock: watch.router.locks[d] ?? null })),
      offer: role === "backup" || !s ? null : s.kind === "replaced" ? "main" : "backup",
    };
  };
  const groups = watch.groups.map((g) => ({
    id: g.id,
    name: g.name,
    rows: [...g.mains.map((m) => row(m.machineId, "main", m.outputs.map((o) => o.destination))), row(g.backup.machineId, "backup", [])],
  }));
  return { status, bar: statusBarView(status), watch: { active: watch.active, router: watch.router.address, connected: watch.router.connected, groups, warnings: watch.warnings.map((w) => warningWords(w, watch.groups, nameOf)) }, switchRefusal };
}

/** A warning in the panel's words: ports from 1 as on the router, engines by name (the core's message counts from 0 and names ids). */
function warningWords(w: RouteWarning, groups: readonly BackupGroup[], nameOf: (id: string) => string): string {
  const group = groups.find((g) => g.id === w.groupId);
  if (w.problem === "router-disconnected") return `Group "${group?.name ?? w.groupId}": the router is not connected, so a failover cannot switch.`;
  const feeder = group?.mains.find((m) => m.outputs.some((o) => o.destination === w.destination));
  const fedBy = feeder ? ` (fed by ${nameOf(feeder.machineId)})` : "";
  return `Destination ${w.destination + 1}${fedBy} is LOCKED by another router client: a failover onto it would not happen. Unlock it on the router.`;
}
