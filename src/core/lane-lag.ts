/**
 * How far the backup's copy is behind the main, per replication lane, in
 * entries (the Status panel and /metrics). Pure: the lanes are what each
 * server announces in its heartbeats (core/failover/lanes.ts).
 */
import { z } from "zod";
import type { Lanes } from "./failover/index.ts";

/** Entries the copy lacks per lane; null where a side has not announced its lanes yet. */
export const laneLagSchema = z.object({ hubState: z.number().nullable(), log: z.number().nullable() });
export type LaneLag = z.infer<typeof laneLagSchema>;

/**
 * The Data Hub's versions restart their seq at each epoch, so a copy from an
 * older epoch lacks at least every write of the new one; a log under another id
 * (a snapshot is due) lacks all of it.
 */
export function laneLag(heads: Lanes | null, copy: Lanes | null): LaneLag {
  if (heads === null || copy === null) return { hubState: null, log: null };
  const hubState =
    copy.hubEpoch > heads.hubEpoch ? 0 : copy.hubEpoch === heads.hubEpoch ? Math.max(0, heads.hubSeq - copy.hubSeq) : heads.hubSeq;
  const log = copy.logId === heads.logId ? Math.max(0, heads.logSeq - copy.logSeq) : heads.logSeq;
  return { hubState, log };
}
