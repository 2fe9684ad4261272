/**
 * Replication lanes: what a backup must hold before it is "idle". The Data
 * Hub state (its last version) and the replication log that carries the
 * show file and the Asset Hub (an asset manifest is applied only once its
 * chunks are in, so the log position covers the asset cache too). The main
 * announces its heads, the backup its copy, in every heartbeat.
 */

export interface Lanes {
  /** Data Hub state: the last (epoch, seq) version. */
  readonly hubEpoch: number;
  readonly hubSeq: number;
  /** Show-file and asset log: which log, and the last applied seq. */
  readonly logId: string;
  readonly logSeq: number;
}

export const EMPTY_LANES: Lanes = { hubEpoch: 0, hubSeq: 0, logId: "", logSeq: 0 };

/** The lanes of `copy` that are not yet at `heads`; empty when caught up. */
export function lanesBehind(copy: Lanes, heads: Lanes): ("hub" | "log")[] {
  const behind: ("hub" | "log")[] = [];
  if (copy.hubEpoch < heads.hubEpoch || (copy.hubEpoch === heads.hubEpoch && copy.hubSeq < heads.hubSeq)) behind.push("hub");
  if (heads.logSeq > 0 && (copy.logId !== heads.logId || copy.logSeq < heads.logSeq)) behind.push("log");
  return behind;
}

/** How much of the log lane is copied, 0..1 (a log under another id counts as nothing yet). */
export function logFraction(copy: Lanes, heads: Lanes): number {
  if (heads.logSeq === 0) return 1;
  if (copy.logId !== heads.logId) return 0;
  return Math.min(1, copy.logSeq / heads.logSeq);
}

export function sameLanes(a: Lanes | null, b: Lanes | null): boolean {
  if (a === null || b === null) return a === b;
  return a.hubEpoch === b.hubEpoch && a.hubSeq === b.hubSeq && a.logId === b.logId && a.logSeq === b.logSeq;
}
