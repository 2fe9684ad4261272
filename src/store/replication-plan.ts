/**
 * How a backup catches up with its main, decided from both log positions. Pure,
 * so the replication runner's choice can be tested with a table.
 */
import type { LogPosition } from "./replication-log.ts";

export type CatchUp =
  /** Nothing to do. */
  | { readonly action: "in-sync" }
  /** Ask the main for entriesSince(fromSeq) and apply them in order. */
  | { readonly action: "log"; readonly fromSeq: number; readonly behind: number }
  /** Carry on with the snapshot already in progress: ask for the page after `after`. */
  | { readonly action: "resume-snapshot"; readonly after: number }
  /** Start a snapshot (snapshotStart on the main, beginSnapshot here). */
  | { readonly action: "snapshot"; readonly reason: string }
  /**
   * The backup holds entries the main does not (the main's database was restored from an
   * older copy). Never resolved automatically: a snapshot would throw those entries away.
   */
  | { readonly action: "ahead"; readonly reason: string };

export function planCatchUp(main: LogPosition, backup: LogPosition): CatchUp {
  const snapshot = backup.snapshot;
  if (snapshot) {
    if (snapshot.logId === main.logId && snapshot.throughSeq <= main.lastSeq) return { action: "resume-snapshot", after: snapshot.cursor };
    return { action: "snapshot", reason: "the main's history changed while a snapshot was in progress" };
  }
  if (backup.logId !== main.logId) {
    const reason = backup.lastSeq === 0 ? "the backup is new" : "the backup holds another server's history";
    return { action: "snapshot", reason };
  }
  if (backup.lastSeq > main.lastSeq) {
    return { action: "ahead", reason: `the backup has entries up to ${backup.lastSeq}, but the main only up to ${main.lastSeq}` };
  }
  if (backup.lastSeq === main.lastSeq) return { action: "in-sync" };
  if (backup.lastSeq < main.firstSeq - 1) {
    return { action: "snapshot", reason: `the backup is at ${backup.lastSeq}, but the main keeps entries only from ${main.firstSeq}` };
  }
  return { action: "log", fromSeq: backup.lastSeq, behind: main.lastSeq - backup.lastSeq };
}
