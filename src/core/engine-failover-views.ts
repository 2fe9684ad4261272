/**
 * What the Health panel and the Data Hub show of the engine failover
 * (docs/design.md §Render-engine backups): each engine's status, the
 * failovers that would not happen (a locked destination, no router), and
 * whom each backup stands in for. Pure reads of the decision's state.
 */
import { engineCondition, type EngineFailoverState, type EngineStatus, type RouteCommand, type RouteWarning } from "./engine-failover.ts";
import { InvalidInput } from "./errors.ts";
import { routerSwitchEventSchema, type RouterSwitchEvent } from "./router.ts";

/** Each engine of every group, by machine id. */
export function engineStatuses(state: EngineFailoverState, now: number): Record<string, EngineStatus> {
  const statuses: Record<string, EngineStatus> = {};
  for (const group of state.groups) {
    const standIn = state.decisions[group.id]?.standIn ?? null;
    const backupId = group.backup.machineId;
    const backupCondition = engineCondition(state, backupId, now);
    for (const main of group.mains) {
      const condition = engineCondition(state, main.machineId, now);
      if (standIn?.mainId === main.machineId) {
        statuses[main.machineId] = { kind: "replaced", by: backupId, condition, reason: standIn.reason };
      } else if (condition === "ok") {
        statuses[main.machineId] = { kind: "on-air", condition };
      } else {
        const why = backupCondition !== "ok" ? "backup-unfit" : standIn ? "backup-busy" : "manual-mode";
        statuses[main.machineId] = { kind: "failed-no-backup", condition, why };
      }
    }
    statuses[backupId] = standIn
      ? { kind: "standing-in", for: standIn.mainId, condition: backupCondition }
      : { kind: "standby", condition: backupCondition };
  }
  return statuses;
}

/** One line per status, for the panel and the chip: "Green Main – FAILED → switched to Backup". */
export function engineStatusLine(machineId: string, status: EngineStatus): string {
  switch (status.kind) {
    case "on-air":
      return `${machineId} – OK`;
    case "replaced":
      return status.condition === "ok"
        ? `${machineId} – OK, backup ${status.by} on air (${status.reason})`
        : `${machineId} – FAILED (${status.condition}) → switched to ${status.by}`;
    case "failed-no-backup":
      return status.why === "manual-mode"
        ? `${machineId} – FAILED (${status.condition}), manual failover: switch by hand`
        : `${machineId} – FAILED (${status.condition}), no backup free`;
    case "standing-in":
      return `${machineId} – on air for ${status.for}`;
    case "standby":
      return status.condition === "ok" ? `${machineId} – ready` : `${machineId} – backup unfit (${status.condition})`;
  }
}

/** Failovers that would silently not happen, shown before any engine fails. */
export function routeWarnings(state: EngineFailoverState): RouteWarning[] {
  const warnings: RouteWarning[] = [];
  for (const group of state.groups) {
    if (!state.router.connected) {
      warnings.push({
        groupId: group.id,
        destination: group.mains[0]?.outputs[0]?.destination ?? 0,
        problem: "router-disconnected",
        message: `group "${group.name}": the router is not connected, a failover cannot switch`,
      });
      continue;
    }
    for (const main of group.mains) {
      for (const output of main.outputs) {
        if (state.router.locks[output.destination] !== "L") continue;
        warnings.push({
          groupId: group.id,
          destination: output.destination,
          problem: "locked",
          message: `destination ${output.destination} (fed by ${main.machineId}) is locked by another router client: a failover would not happen; unlock it on the router or force it here`,
        });
      }
    }
  }
  return warnings;
}

/** Backup machine id → the main it stands in for (null when none): the retained `replaces` values. */
export function standIns(state: EngineFailoverState): Record<string, string | null> {
  const result: Record<string, string | null> = {};
  for (const group of state.groups) result[group.backup.machineId] = state.decisions[group.id]?.standIn?.mainId ?? null;
  return result;
}

/** The "via API" event for a switch the router confirmed (published on ROUTER_SWITCH_TOPIC, MQTT and /api). */
export function switchEvent(command: RouteCommand, wallMs: number): RouterSwitchEvent {
  return routerSwitchEventSchema.parse({
    groupId: command.groupId,
    destination: command.destination,
    source: command.source,
    from: command.from,
    to: command.to,
    reason: command.reason,
    at: Math.max(0, Math.round(wallMs)),
  });
}

/**
 * An engine's retained health value: "ok" / "unhealthy", a boolean, or
 * `{ "healthy": boolean }`; anything else is an InvalidInput and changes nothing.
 */
export function parseEngineHealth(value: unknown): boolean {
  if (value === "ok" || value === true) return true;
  if (value === "unhealthy" || value === false) return false;
  if (typeof value === "object" && value !== null && typeof (value as { healthy?: unknown }).healthy === "boolean") {
    return (value as { healthy: boolean }).healthy;
  }
  throw new InvalidInput(`an engine's health is "ok", "unhealthy", true, false or {"healthy": …}; got ${JSON.stringify(value)?.slice(0, 40)}`, "health");
}

/** An engine's retained frame counter: a non-negative integer. */
export function parseEngineFrames(value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new InvalidInput(`an engine's frame counter is a non-negative integer; got ${JSON.stringify(value)?.slice(0, 40)}`, "frames");
}
