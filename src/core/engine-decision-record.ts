/**
 * The engine failover's decision per backup group, kept where the next active
 * server finds it (docs/design.md §Render-engine backups): a retained Data Hub
 * value the runner writes whenever it changes. The Data Hub's retained state
 * is copied to the backup server and handed back to a returning main (§Data
 * Hub, §Failover), so a server failover in either direction keeps who stands
 * in for whom, whether the operator made that switch, the mains the operator
 * declined, and when the replaced main's hold time started.
 *
 * Times are wall-clock milliseconds on the wire (each server's own clock only
 * measures differences); the runner converts with `wallOffset`
 * (wall now − clock now) on both sides.
 */
import { z } from "zod";
import type { EngineFailoverState, RestoredDecision } from "./engine-failover.ts";
import { SWITCH_REASONS } from "./router.ts";

/** Retained: the decision of group `groupId`, for the server that serves next. */
export const engineDecisionKey = (groupId: string) => `$understudy/engine-group/${groupId}/decision`;

const engineId = z.string().min(1).max(128);
const wallMs = z.number().int().nonnegative();

/** A record that does not parse (a local app wrote garbage there) is ignored: the router's routes decide then. */
export const engineDecisionRecordSchema = z.strictObject({
  standIn: z.strictObject({ mainId: engineId, manual: z.boolean(), reason: z.enum(SWITCH_REASONS), since: wallMs }).nullable(),
  declined: z.array(engineId).max(64),
  /** Since when the replaced main has been fit (its hold time's start); null while it is unfit or none is replaced. */
  holdSince: wallMs.nullable(),
});
export type EngineDecisionRecord = z.infer<typeof engineDecisionRecordSchema>;

/** What the runner keeps of `groupId`'s decision now; null before the group was decided. */
export function decisionRecord(state: EngineFailoverState, groupId: string, wallOffset: number): EngineDecisionRecord | null {
  const d = state.decisions[groupId];
  if (!d) return null;
  const toWall = (t: number) => Math.max(0, Math.round(t + wallOffset));
  const fit = d.standIn ? d.fitSince[d.standIn.mainId] : null;
  return {
    standIn: d.standIn ? { mainId: d.standIn.mainId, manual: d.standIn.manual, reason: d.standIn.reason, since: toWall(d.standIn.since) } : null,
    declined: [...d.declined],
    holdSince: fit == null ? null : toWall(fit),
  };
}

/** The record as the decision's part of a `restore` event, in this server's clock. */
export function restoredDecision(record: EngineDecisionRecord, wallOffset: number): RestoredDecision {
  const toLocal = (t: number) => t - wallOffset;
  const s = record.standIn;
  return {
    standIn: s ? { mainId: s.mainId, manual: s.manual, reason: s.reason, since: toLocal(s.since) } : null,
    declined: record.declined,
    holdSince: record.holdSince === null ? null : toLocal(record.holdSince),
  };
}

/** The record a retained value holds, or null when it holds none (deleted, never set, or not a record). */
export function parseDecisionRecord(value: unknown): EngineDecisionRecord | null {
  const parsed = engineDecisionRecordSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
