/**
 * The Backup groups panel's view-model: the groups (or why they cannot be
 * read now), the machines an engine may be chosen from (those this machine's
 * server hears, and any a group already names) and whether this page may
 * change them (core/backup-group-offers.ts), built once so the template only draws it.
 */
import { backupGroupEditRefusal } from "../../core/backup-group-offers.ts";
import { licenseWarnings, type BackupGroup } from "../../core/backup-groups.ts";
import type { EngineBackups, RouterSetting } from "../../store/backup-groups-file.ts";
import type { RouterProbe } from "../../services/router/videohub-probe.ts";
import type { Permission } from "../../core/permissions.ts";
import type { MachineStatus } from "../../core/status.ts";
import { statusBarView, type StatusBarView } from "./status-bar-view.ts";

export type { BackupGroup, EngineBackups, RouterSetting };

export type EngineChoice = { id: string; name: string };

export type BackupGroupsView = {
  status: MachineStatus;
  bar: StatusBarView;
  groups: BackupGroup[] | { error: string };
  router: RouterSetting | null;
  /** Machines an engine may be, by name (the heard ones first, then any only a group names). */
  machines: EngineChoice[];
  /** Null when this page may create, edit and delete groups. */
  editRefusal: string | null;
  /** Per group id: what the operator should look at (engines with different licenses), engines by name. */
  warnings: Record<string, string[]>;
};

/** What a form left behind: what was typed, the refusals beside their fields, and the outcome. */
export type GroupFormEcho = { values?: Record<string, string>; errors?: Record<string, string>; saved?: string; tested?: { ok: boolean; text: string } };

/** What "Test connection" found, in the panel's words (ports from 1, as on the router). */
export function routerTestWords(address: string, found: RouterProbe): string {
  const locked = found.lockedByOthers.map((d) => d + 1);
  const locks =
    locked.length === 0
      ? "no destination is locked by another client"
      : `destination${locked.length === 1 ? "" : "s"} ${locked.join(", ")} ${locked.length === 1 ? "is" : "are"} LOCKED by another client: a failover onto ${locked.length === 1 ? "it" : "them"} would not happen, unlock ${locked.length === 1 ? "it" : "them"} on the router`;
  return `Connected to ${address}: ${found.model}, ${found.inputs} inputs, ${found.outputs} outputs; ${locks}. Nothing was saved: press Save router to keep it.`;
}

export function backupGroupsView(status: MachineStatus, permission: Permission, backups: EngineBackups | { error: string }, licenses: Record<string, string> = {}): BackupGroupsView {
  const groups = "error" in backups ? backups : backups.groups;
  const heard = (status.failover?.peers ?? []).filter((p) => p.role !== "main" && p.role !== "backup").map((p) => ({ id: p.id, name: p.name }));
  const named = Array.isArray(groups) ? groups.flatMap((g) => [...g.mains.map((m) => m.machineId), g.backup.machineId]) : [];
  const machines = [...heard];
  for (const id of named) if (!machines.some((m) => m.id === id)) machines.push({ id, name: `machine ${id} (not heard now)` });
  const nameOf = (id: string) => machines.find((m) => m.id === id && !m.name.endsWith("(not heard now)"))?.name ?? id;
  const warnings = Object.fromEntries(
    (Array.isArray(groups) ? groups : []).map((g) => [g.id, licenseWarnings(g, (id) => licenses[id]).map((w) => `Warning: ${w.replace(/\b[0-9a-f]{16}\b/g, nameOf)}.`)]),
  );
  return { status, bar: statusBarView(status), groups, router: "error" in backups ? null : backups.router, machines, editRefusal: backupGroupEditRefusal(status, permission), warnings };
}

/** The machine's name as the panel shows it. */
export function engineName(view: BackupGroupsView, id: string): string {
  return view.machines.find((m) => m.id === id)?.name ?? id;
}

/** Router ports as the router's panel labels them (from 1). */
export const portsText = (ports: readonly number[]) => ports.map((p) => p + 1).join(", ");

/** A group as the form's fields, for editing it. */
export function formValuesOf(g: BackupGroup): Record<string, string> {
  const values: Record<string, string> = {
    id: g.id,
    name: g.name,
    backup: g.backup.machineId,
    backupSources: portsText(g.backup.sources),
    mode: g.failoverMode,
    switchBack: g.switchBack,
    holdSeconds: String(Math.round(g.holdTimeMs / 1000)),
  };
  g.mains.forEach((m, i) => {
    values[`main${i}`] = m.machineId;
    values[`main${i}Sources`] = portsText(m.outputs.map((o) => o.source));
    values[`main${i}Destinations`] = portsText(m.outputs.map((o) => o.destination));
  });
  return values;
}
