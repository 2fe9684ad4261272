/**
 * The status chip's engine state (docs/design.md §Render-engine backups): when
 * any render engine is on its backup, or failed with no backup free, the
 * serving server's chip says so ("render-1 – FAILED → switched to
 * render-spare"). The status carries the engines that need the operator
 * (`engineAlerts`, from the engine watch); `engineChip` words them, naming
 * machines as the servers hear them.
 */
import { z } from "zod";
import type { EngineStatus } from "./engine-failover.ts";

export const engineAlertSchema = z.object({
  /** The main engine. */
  engine: z.string(),
  /** The backup engine on air in its place; null when none is free. */
  backup: z.string().nullable(),
  /** The main's condition now: "ok" when it is fit again but the backup still serves. */
  condition: z.enum(["ok", "silent", "unhealthy", "frozen"]),
  /** Failed in manual failover mode: the operator switches it. */
  manual: z.boolean(),
});
export type EngineAlert = z.infer<typeof engineAlertSchema>;

/** The engines that need the operator, failed ones first; none unless this server runs the engines now. */
export function engineAlerts(watch: { active: boolean; engines: Record<string, EngineStatus> } | null): EngineAlert[] {
  if (!watch?.active) return [];
  const alerts: EngineAlert[] = [];
  for (const [engine, status] of Object.entries(watch.engines)) {
    if (status.kind === "replaced") alerts.push({ engine, backup: status.by, condition: status.condition, manual: false });
    if (status.kind === "failed-no-backup") alerts.push({ engine, backup: null, condition: status.condition, manual: status.why === "manual-mode" });
  }
  return alerts.sort((a, b) => Number(a.backup !== null) - Number(b.backup !== null));
}

type Chip = { text: string; tone: "warn" | "alert"; hint: string };

/** The chip for the first alert, or null when every engine is on air; failed with no backup is red, on the backup amber. */
export function engineChip(alerts: readonly EngineAlert[], nameOf: (id: string) => string): Chip | null {
  const first = alerts[0];
  if (!first) return null;
  const more = alerts.length > 1 ? ` (+${alerts.length - 1} more)` : "";
  const engine = nameOf(first.engine);
  if (first.backup === null) {
    return first.manual
      ? { text: `${engine} – FAILED, switch by hand${more}`, tone: "alert", hint: "Manual failover: put the backup on air on the Health panel." }
      : { text: `${engine} – FAILED, no backup free${more}`, tone: "alert", hint: "Its group's backup engine is already on air or unfit: see the Health panel." };
  }
  const backup = nameOf(first.backup);
  return first.condition === "ok"
    ? { text: `${engine} – OK, ${backup} still on air${more}`, tone: "warn", hint: "The main engine is fit again: it returns after the hold time, or switch back on the Health panel." }
    : { text: `${engine} – FAILED → switched to ${backup}${more}`, tone: "warn", hint: "The backup engine is on air in its place: nothing stands by if it fails too. See the Health panel." };
}
