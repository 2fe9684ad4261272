/**
 * Snapshots: how a backup that is new, follows another log, or fell behind a
 * trimmed log gets everything the main holds, in pages, with progress.
 *
 * A snapshot covers every item (revision or manifest) whose log seq is at most
 * `throughSeq`, fixed when it starts. Items are immutable once written, so pages
 * read in separate transactions, even across a restart of the main, still add up
 * to the state at `throughSeq`; the log then continues from `throughSeq + 1`.
 * Pages are the same entries the log carries, rebuilt from the data and ordered by
 * seq. The backup records its cursor with each page, so after a restart it asks
 * for the page after its cursor, and a page applied twice changes nothing.
 */
import type { Database } from "bun:sqlite";
import { z } from "zod";
import type { AssetTables } from "./asset-tables.ts";
import { entryBytes, entryForSeq, replicationEntrySchema, type ReplicationEntry } from "./replication-entries.ts";
import type { ShowFileTables } from "./show-file-tables.ts";
import { InvalidReplicationEntry, SnapshotMismatch } from "./store-errors.ts";
import { readTransaction, writeTransaction } from "./write-transaction.ts";

export const DEFAULT_SNAPSHOT_PAGE_ITEMS = 256;
/** Bounds a page's size (and the time its transaction holds the write lock on the backup). */
export const DEFAULT_SNAPSHOT_PAGE_BYTES = 4 * 1024 * 1024;

export type SnapshotStart = { readonly logId: string; readonly throughSeq: number; readonly totalItems: number };

export type SnapshotPageRequest = {
  readonly logId: string;
  readonly throughSeq: number;
  /** The backup's cursor: the seq of the last item it applied (0 at the start). */
  readonly after: number;
  readonly limit?: number;
  readonly maxBytes?: number;
};

export type SnapshotPage = {
  readonly logId: string;
  readonly throughSeq: number;
  readonly entries: ReplicationEntry[];
  /** Where the next page starts; equals throughSeq on the last page. */
  readonly cursor: number;
  readonly done: boolean;
  /** Items done after this page / items in the snapshot, 0..1, for the "syncing N %" status. */
  readonly fraction: number;
};

export type SnapshotProgress = { readonly logId: string; readonly throughSeq: number; readonly cursor: number; readonly totalItems: number; readonly fraction: number };

// Every item of the snapshot with its seq: revisions and manifests, merged in log order.
const ITEMS = "SELECT log_seq AS seq FROM revisions UNION ALL SELECT log_seq AS seq FROM assets";

function countItems(db: Database, after: number, through: number): number {
  return (db.query(`SELECT COUNT(*) AS n FROM (${ITEMS}) WHERE seq > ? AND seq <= ?`).get(after, through) as { n: number }).n;
}

/** Main: what a snapshot started now covers. */
export function snapshotStart(db: Database, logId: string, lastSeq: number): SnapshotStart {
  return { logId, throughSeq: lastSeq, totalItems: countItems(db, 0, lastSeq) };
}

/** Main: the items after `request.after`, up to `limit` items or `maxBytes` (at least one item). */
export function snapshotPage(db: Database, show: ShowFileTables, assets: AssetTables, logId: string, request: SnapshotPageRequest): SnapshotPage {
  const { throughSeq, after, limit = DEFAULT_SNAPSHOT_PAGE_ITEMS, maxBytes = DEFAULT_SNAPSHOT_PAGE_BYTES } = request;
  if (request.logId !== logId) {
    throw new SnapshotMismatch(`This snapshot was of log ${request.logId}, but this server now holds log ${logId} (its database was replaced). Start a new snapshot.`);
  }
  return readTransaction(db, () => {
    const seqs = db.query(`SELECT seq FROM (${ITEMS}) WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`).all(after, throughSeq, limit) as { seq: number }[];
    const entries: ReplicationEntry[] = [];
    let bytes = 0;
    for (const { seq } of seqs) {
      const entry = entryForSeq(show, assets, seq);
      if (!entry) continue;
      bytes += entryBytes(entry);
      if (entries.length > 0 && bytes > maxBytes) break;
      entries.push(entry);
    }
    const last = entries.at(-1)?.seq ?? after;
    const remaining = countItems(db, last, throughSeq);
    const done = remaining === 0;
    const total = countItems(db, 0, throughSeq);
    return { logId, throughSeq, entries, cursor: done ? throughSeq : last, done, fraction: total === 0 ? 1 : (total - remaining) / total };
  });
}

/**
 * Backup: empties the show file and the asset manifests (chunks stay: they are
 * content-addressed, so still valid), adopts the main's log id, and records the
 * snapshot so it can resume. Discards a snapshot already in progress.
 */
export function beginSnapshot(db: Database, show: ShowFileTables, assets: AssetTables, start: SnapshotStart): void {
  writeTransaction(db, "the start of a snapshot", () => {
    show.clear();
    assets.clearManifests();
    db.run("DELETE FROM replication_log");
    db.run(
      "UPDATE replication_state SET log_id = ?, applied_seq = 0, snapshot_through = ?, snapshot_cursor = 0, snapshot_total = ? WHERE id = 1",
      [start.logId, start.throughSeq, start.totalItems],
    );
  });
}

const pageSchema = z.object({
  logId: z.string().min(1),
  throughSeq: z.number().int().nonnegative(),
  entries: z.array(replicationEntrySchema),
  cursor: z.number().int().nonnegative(),
  done: z.boolean(),
  fraction: z.number().min(0).max(1),
});

/**
 * Backup: applies one page in one transaction (entries at or before the cursor are skipped,
 * so a page applied again is harmless) and records the cursor. The last page sets the
 * applied seq to throughSeq and ends the snapshot; then it returns null.
 */
export function applySnapshotPage(db: Database, input: SnapshotPage, apply: (entry: ReplicationEntry) => void): SnapshotProgress | null {
  const parsed = pageSchema.safeParse(input);
  if (!parsed.success) throw new InvalidReplicationEntry(`A snapshot page is malformed: ${parsed.error.issues[0]?.message ?? "unknown problem"}.`);
  const page = parsed.data;
  const state = snapshotProgress(db);
  if (!state) throw new SnapshotMismatch("No snapshot is being applied here; begin one first.");
  if (page.logId !== state.logId || page.throughSeq !== state.throughSeq) {
    throw new SnapshotMismatch(`This page belongs to snapshot ${page.logId}@${page.throughSeq}, but the one in progress is ${state.logId}@${state.throughSeq}.`);
  }
  let previous = state.cursor;
  writeTransaction(db, `a snapshot page (after ${state.cursor})`, () => {
    for (const entry of page.entries) {
      if (entry.seq <= state.cursor) continue;
      if (entry.seq <= previous || entry.seq > page.throughSeq) throw new InvalidReplicationEntry(`Snapshot entry ${entry.seq} is out of order or beyond ${page.throughSeq}.`);
      apply(entry);
      previous = entry.seq;
    }
    if (page.done) {
      db.run(
        "UPDATE replication_state SET applied_seq = ?, snapshot_through = NULL, snapshot_cursor = NULL, snapshot_total = NULL WHERE id = 1",
        [page.throughSeq],
      );
    } else {
      db.run("UPDATE replication_state SET snapshot_cursor = ? WHERE id = 1", [Math.max(state.cursor, page.cursor)]);
    }
  });
  return snapshotProgress(db);
}

/** The snapshot being applied here, or null. */
export function snapshotProgress(db: Database): SnapshotProgress | null {
  const row = db.query("SELECT log_id, snapshot_through, snapshot_cursor, snapshot_total FROM replication_state WHERE id = 1").get() as {
    log_id: string;
    snapshot_through: number | null;
    snapshot_cursor: number | null;
    snapshot_total: number | null;
  };
  if (row.snapshot_through === null) return null;
  const total = row.snapshot_total ?? 0;
  const done = countItems(db, 0, row.snapshot_cursor ?? 0);
  return { logId: row.log_id, throughSeq: row.snapshot_through, cursor: row.snapshot_cursor ?? 0, totalItems: total, fraction: total === 0 ? 1 : Math.min(1, done / total) };
}
