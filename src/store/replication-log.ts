/**
 * The replication log (docs/design.md §Lanes and replication): one ordered log on
 * the main. ShowFileStore and AssetStore append an entry in the same transaction
 * as the write it describes, so the log and the data never disagree.
 *
 * Main: `entriesSince(seq)` hands the backup what it lacks. Backup: `applyEntry`
 * applies one entry in one transaction, keeps the main's log row (same seq, so the
 * backup is a full copy) and records it as applied; applying a seq again is a no-op.
 * A backup that is new, follows another log, or fell behind a trimmed log gets a
 * snapshot instead (replication-snapshot.ts; decide with planCatchUp in replication-plan.ts).
 * Asset chunks are not in the log: the backup fetches them by hash (`missingChunksFor`).
 */
import type { Database, Statement } from "bun:sqlite";
import { AssetTables } from "./asset-tables.ts";
import {
  applyEntryData,
  buildEntry,
  chunksNeeded,
  entryBytes,
  entryCreated,
  logPayload,
  replicationEntrySchema,
  type ReplicationEntry,
} from "./replication-entries.ts";
import {
  applySnapshotPage,
  beginSnapshot,
  snapshotPage,
  snapshotProgress,
  snapshotStart,
  type SnapshotPage,
  type SnapshotPageRequest,
  type SnapshotProgress,
  type SnapshotStart,
} from "./replication-snapshot.ts";
import { ShowFileTables } from "./show-file-tables.ts";
import { InvalidReplicationEntry, LogTrimmed, ReplicationGap, SnapshotMismatch } from "./store-errors.ts";
import { writeTransaction } from "./write-transaction.ts";

/** entriesSince stops at whichever comes first (but always returns at least one entry when there is one). */
export const DEFAULT_ENTRIES_LIMIT = 256;
export const DEFAULT_ENTRIES_MAX_BYTES = 8 * 1024 * 1024;

/** Where a database stands in its log. */
export type LogPosition = {
  /** Names the history this database holds; a backup takes its main's at a snapshot. */
  readonly logId: string;
  /** The oldest entry entriesSince can still return (lastSeq + 1 when the log is empty). */
  readonly firstSeq: number;
  /** The last entry whose effect is in this database (on the main: the last appended). */
  readonly lastSeq: number;
  /** Set while a snapshot is being applied here. */
  readonly snapshot: SnapshotProgress | null;
};

type StateRow = { log_id: string; applied_seq: number };

export class ReplicationLog {
  private readonly db: Database;
  private readonly show: ShowFileTables;
  private readonly assets: AssetTables;
  private readonly insertEntry: Statement;
  private readonly insertEntryWithSeq: Statement;
  private readonly setApplied: Statement;
  private readonly selectState: Statement;
  private readonly selectEntries: Statement;
  private readonly selectFirstSeq: Statement;
  private flushChunks: () => void = () => {};

  /** The database this log is in (for its disk usage). */
  get database(): Database {
    return this.db;
  }

  constructor(db: Database) {
    this.db = db;
    this.show = new ShowFileTables(db);
    this.assets = new AssetTables(db);
    this.insertEntry = db.query("INSERT INTO replication_log (kind, payload, created) VALUES (?, ?, ?)");
    this.insertEntryWithSeq = db.query("INSERT INTO replication_log (seq, kind, payload, created) VALUES (?, ?, ?, ?)");
    this.setApplied = db.query("UPDATE replication_state SET applied_seq = ? WHERE id = 1");
    this.selectState = db.query("SELECT log_id, applied_seq FROM replication_state WHERE id = 1");
    this.selectEntries = db.query("SELECT seq, kind, payload FROM replication_log WHERE seq > ? ORDER BY seq LIMIT ?");
    this.selectFirstSeq = db.query("SELECT MIN(seq) AS seq FROM replication_log");
  }

  /**
   * Main: appends an entry naming data written in the caller's transaction, and returns its
   * seq (the data's rows record it). Must be called inside that transaction.
   */
  /**
   * Backup: chunks fetched by hash may be written but not yet durable (AssetStore groups their
   * flushes). `flush` makes them durable and indexed; it runs before a manifest's chunks are
   * checked or applied, so a manifest never commits naming a chunk that is not durably on disk.
   */
  onFlushChunks(flush: () => void): void {
    this.flushChunks = flush;
  }

  append(kind: string, payload: string, created: number): number {
    if (!this.db.inTransaction) throw new Error("ReplicationLog.append must run inside the transaction of the write it describes");
    const seq = Number(this.insertEntry.run(kind, payload, created).lastInsertRowid);
    this.setApplied.run(seq);
    return seq;
  }

  logId(): string {
    return this.state().log_id;
  }

  /** The last entry whose effect is in this database. */
  lastApplied(): number {
    return this.state().applied_seq;
  }

  position(): LogPosition {
    const state = this.state();
    const first = (this.selectFirstSeq.get() as { seq: number | null }).seq;
    return { logId: state.log_id, firstSeq: first ?? state.applied_seq + 1, lastSeq: state.applied_seq, snapshot: this.snapshotProgress() };
  }

  /**
   * Main: the entries after `seq`, oldest first, each rebuilt from the data with its blobs.
   * Throws LogTrimmed when entries after `seq` are no longer kept (the backup needs a snapshot).
   */
  entriesSince(seq: number, options: { limit?: number; maxBytes?: number } = {}): ReplicationEntry[] {
    const { limit = DEFAULT_ENTRIES_LIMIT, maxBytes = DEFAULT_ENTRIES_MAX_BYTES } = options;
    const { firstSeq, lastSeq } = this.position();
    if (seq >= lastSeq) return [];
    if (seq < firstSeq - 1) throw new LogTrimmed(seq, firstSeq);
    const entries: ReplicationEntry[] = [];
    let bytes = 0;
    for (const row of this.selectEntries.all(seq, limit) as { seq: number; kind: string; payload: string }[]) {
      const entry = buildEntry(this.show, this.assets, row.seq, row.kind, row.payload);
      bytes += entryBytes(entry);
      if (entries.length > 0 && bytes > maxBytes) break;
      entries.push(entry);
    }
    return entries;
  }

  /** Main: forgets log entries before `seq` (their data stays). A backup behind them will need a snapshot. */
  trimBefore(seq: number): number {
    return writeTransaction(this.db, "trimming the replication log", () => this.db.run("DELETE FROM replication_log WHERE seq < ?", [seq]).changes);
  }

  /** Backup: the chunks that `entries` (their manifests) need before they can be applied. Fetch these by hash. */
  missingChunksFor(entries: ReplicationEntry | readonly ReplicationEntry[]): string[] {
    this.flushChunks();
    return chunksNeeded(this.assets, Array.isArray(entries) ? entries : [entries as ReplicationEntry]);
  }

  /**
   * Backup: applies one entry in one transaction. An entry already applied is a no-op
   * ({ applied: false }); one that skips ahead throws ReplicationGap. A manifest whose
   * chunks are not all here throws ChunksMissing. Nothing is written when it throws.
   */
  applyEntry(input: ReplicationEntry): { applied: boolean; seq: number } {
    const parsed = replicationEntrySchema.safeParse(input);
    if (!parsed.success) throw new InvalidReplicationEntry(`A replication entry is malformed: ${parsed.error.issues[0]?.message ?? "unknown problem"}.`);
    const entry = parsed.data;
    if (this.snapshotProgress()) throw new SnapshotMismatch("A snapshot is being applied here; finish it before applying log entries.");
    const applied = this.lastApplied();
    if (entry.seq <= applied) return { applied: false, seq: entry.seq };
    if (entry.seq !== applied + 1) throw new ReplicationGap(applied + 1, entry.seq);
    this.flushChunks();
    writeTransaction(this.db, `replication entry ${entry.seq}`, () => this.applyInTransaction(entry));
    return { applied: true, seq: entry.seq };
  }

  /** Writes the entry's data, the main's log row for it, and the applied seq. Inside a transaction. */
  private applyInTransaction(entry: ReplicationEntry): void {
    applyEntryData(this.show, this.assets, entry);
    this.insertEntryWithSeq.run(entry.seq, entry.kind, logPayload(entry), entryCreated(entry));
    this.setApplied.run(entry.seq);
  }

  // Snapshots (replication-snapshot.ts): a backup that is new or too far behind copies every item in pages.

  /** Main: fixes what a new snapshot covers (everything up to the last entry now). */
  snapshotStart(): SnapshotStart {
    return snapshotStart(this.db, this.logId(), this.lastApplied());
  }

  /** Main: the next page of a snapshot, after the backup's cursor. */
  snapshotPage(request: SnapshotPageRequest): SnapshotPage {
    return snapshotPage(this.db, this.show, this.assets, this.logId(), request);
  }

  /**
   * Backup only: EMPTIES this database's show file and manifests (chunks stay, being content-addressed)
   * and records the snapshot it is taking. Also how a snapshot is restarted from scratch.
   */
  beginSnapshot(start: SnapshotStart): void {
    beginSnapshot(this.db, this.show, this.assets, start);
  }

  /** Backup: applies one page in one transaction; the last page sets the applied seq and ends the snapshot. */
  applySnapshotPage(page: SnapshotPage): SnapshotProgress | null {
    this.flushChunks();
    return applySnapshotPage(this.db, page, (entry) => this.applyInTransaction(entry));
  }

  /** Backup: the snapshot being applied here (to resume after a restart), or null. */
  snapshotProgress(): SnapshotProgress | null {
    return snapshotProgress(this.db);
  }

  private state(): StateRow {
    return this.selectState.get() as StateRow;
  }
}
