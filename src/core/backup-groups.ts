/**
 * Backup groups for render engines (docs/design.md §Render-engine backups):
 * one or more main engines and one backup engine; each main's router
 * sources and the destination each feeds, the backup's sources in the same
 * order (output i of a main is replaced by source i of the backup).
 *
 * The schema is the single source of truth for the store, the form and the
 * copy to the backup server; `groupProblems` holds the checks that span
 * groups (a destination in two groups) and the license warning.
 */
import { z } from "zod";
import { AppError } from "./errors.ts";

/** Largest router port number we accept (Videohubs have at most 288 ports; zero-based). */
export const MAX_ROUTER_PORT = 1023;
/** Outputs per engine: render machines have a handful of SDI/2110 outputs. */
export const MAX_ENGINE_OUTPUTS = 16;
export const MAX_MAINS_PER_GROUP = 16;
export const MAX_BACKUP_GROUPS = 64;

export const MIN_HOLD_TIME_MS = 1_000;
export const DEFAULT_HOLD_TIME_MS = 10_000;
export const MAX_HOLD_TIME_MS = 600_000;

/** A zero-based router port (input = source, output = destination). */
export const routerPortSchema = z.number().int().min(0).max(MAX_ROUTER_PORT);

const machineIdSchema = z.string().min(1).max(128);

/** One output of a main engine: the router source it arrives on and the destination it feeds. */
export const engineOutputSchema = z.strictObject({
  source: routerPortSchema,
  destination: routerPortSchema,
});
export type EngineOutput = z.infer<typeof engineOutputSchema>;

export const mainEngineSchema = z.strictObject({
  machineId: machineIdSchema,
  outputs: z.array(engineOutputSchema).min(1).max(MAX_ENGINE_OUTPUTS),
});
export type MainEngine = z.infer<typeof mainEngineSchema>;

export const backupEngineSchema = z.strictObject({
  machineId: machineIdSchema,
  /** Router sources of the backup's outputs, in the order of the mains' outputs. */
  sources: z.array(routerPortSchema).min(1).max(MAX_ENGINE_OUTPUTS),
});
export type BackupEngine = z.infer<typeof backupEngineSchema>;

export const FAILOVER_MODES = ["auto", "manual"] as const;
export type FailoverMode = (typeof FAILOVER_MODES)[number];

export const backupGroupSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "a group id is lower-case letters, digits and '-'"),
    name: z.string().trim().min(1).max(80),
    mains: z.array(mainEngineSchema).min(1).max(MAX_MAINS_PER_GROUP),
    backup: backupEngineSchema,
    /** auto: a failed main is replaced without the operator; manual: the Health panel offers the switch. */
    failoverMode: z.enum(FAILOVER_MODES),
    /** auto: back to the main once it has been healthy for `holdTimeMs`; manual: the operator switches back. */
    switchBack: z.enum(FAILOVER_MODES),
    holdTimeMs: z.number().int().min(MIN_HOLD_TIME_MS).max(MAX_HOLD_TIME_MS),
  })
  .superRefine((group, ctx) => {
    for (const problem of withinGroupProblems(group)) ctx.addIssue({ code: "custom", message: problem });
  });
export type BackupGroup = z.infer<typeof backupGroupSchema>;

export const backupGroupsSchema = z.array(backupGroupSchema).max(MAX_BACKUP_GROUPS);

/** A group the checks refuse (a destination already fed by another group, …). */
export class BackupGroupRefused extends AppError {
  constructor(message: string) {
    super("BACKUP_GROUP_REFUSED", message, { status: 400 });
  }
}

function withinGroupProblems(group: {
  mains: readonly MainEngine[];
  backup: BackupEngine;
}): string[] {
  const problems: string[] = [];
  const machines = new Set<string>();
  for (const id of [...group.mains.map((m) => m.machineId), group.backup.machineId]) {
    if (machines.has(id)) problems.push(`machine "${id}" appears twice in the group: each engine is either a main or the backup, once`);
    machines.add(id);
  }
  const destinations = new Set<number>();
  for (const main of group.mains) {
    if (main.outputs.length !== group.backup.sources.length) {
      problems.push(
        `main "${main.machineId}" has ${main.outputs.length} output(s) but the backup "${group.backup.machineId}" has ${group.backup.sources.length}: a main and its backup need the same number of outputs`,
      );
    }
    for (const output of main.outputs) {
      if (destinations.has(output.destination)) problems.push(`destination ${output.destination} is fed by two outputs of the group`);
      destinations.add(output.destination);
    }
  }
  return problems;
}

export interface GroupProblems {
  /** Reasons the group is refused (nothing is saved). */
  refusals: string[];
  /** Reasons the group is saved but the operator should look (licenses differ). */
  warnings: string[];
}

/**
 * The checks for saving `group` beside `others` (the other groups, the one
 * being edited left out). `licenseOf` names each machine's license type, or
 * undefined when the servers do not know it.
 */
export function groupProblems(
  group: BackupGroup,
  others: readonly BackupGroup[],
  licenseOf: (machineId: string) => string | undefined,
): GroupProblems {
  const refusals = withinGroupProblems(group);
  const taken = new Map<number, string>();
  const engines = new Map<string, string>();
  for (const other of others) {
    if (other.id === group.id) continue;
    for (const main of other.mains) for (const output of main.outputs) taken.set(output.destination, other.name);
    for (const id of [...other.mains.map((m) => m.machineId), other.backup.machineId]) engines.set(id, other.name);
  }
  for (const main of group.mains) {
    for (const output of main.outputs) {
      const owner = taken.get(output.destination);
      if (owner !== undefined) refusals.push(`destination ${output.destination} is already fed by group "${owner}": a destination belongs to one group`);
    }
  }
  for (const id of [...group.mains.map((m) => m.machineId), group.backup.machineId]) {
    const owner = engines.get(id);
    if (owner !== undefined) refusals.push(`machine "${id}" is already in group "${owner}": an engine belongs to one group`);
  }
  return { refusals, warnings: licenseWarnings(group, licenseOf) };
}

/** "Licenses differ" for a group whose engines report different license types (engines not heard are left out). */
export function licenseWarnings(group: Pick<BackupGroup, "mains" | "backup">, licenseOf: (machineId: string) => string | undefined): string[] {
  const licenses = new Map<string, string[]>();
  for (const id of [...group.mains.map((m) => m.machineId), group.backup.machineId]) {
    const license = licenseOf(id);
    if (license === undefined) continue;
    licenses.set(license, [...(licenses.get(license) ?? []), id]);
  }
  if (licenses.size < 2) return [];
  const list = [...licenses].map(([license, ids]) => `${ids.join(", ")}: ${license}`).join("; ");
  return [`the engines of this group have different licenses (${list}): a backup may not run what its main runs`];
}

/** Throws BackupGroupRefused when the checks refuse `group`; returns the warnings otherwise. */
export function checkGroup(
  group: BackupGroup,
  others: readonly BackupGroup[],
  licenseOf: (machineId: string) => string | undefined,
): string[] {
  const problems = groupProblems(group, others, licenseOf);
  if (problems.refusals.length > 0) throw new BackupGroupRefused(problems.refusals.join("; "));
  return problems.warnings;
}
