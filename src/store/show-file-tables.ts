/**
 * The show file's rows: revisions, files (history), head_files (the show file at
 * head) and blobs. Shared by ShowFileStore (pushes on the main) and replication
 * (entries applied on the backup), so both write a revision the same way.
 * Callers run writes inside a transaction; nothing here starts one.
 */
import type { Database, Statement } from "bun:sqlite";
import { ancestorFoldKeys, showPathFoldKey } from "../core/show-paths.ts";
import { sha256Hex } from "./content-hash.ts";
import { CorruptBlob } from "./store-errors.ts";

/** One show file's content. Large media belong in the Asset Hub, which streams them in chunks. */
export const MAX_SHOW_FILE_BYTES = 64 * 1024 * 1024;
export const MAX_PUSH_MESSAGE_CHARS = 4096;
export const MAX_AUTHOR_CHARS = 256;
export const MAX_PUSH_ID_CHARS = 128;

export type RevisionRecord = {
  readonly rev: number;
  /** The head this revision was written on: always rev - 1. */
  readonly parent: number;
  /** The revision the pusher had; below parent when the push was accepted over disjoint changes. */
  readonly base: number;
  readonly message: string;
  readonly author: string;
  /** Wall-clock ms. */
  readonly created: number;
  readonly pushId: string | null;
};

/** One path changed by a revision. A deletion has hash null and size 0. */
export type FileRecord = { readonly path: string; readonly hash: string | null; readonly size: number; readonly deleted: boolean };

export type BlobRecord = { readonly hash: string; readonly data: Uint8Array };

/** A file present in some revision. `rev` is the revision that last changed it. */
export type ShowFileEntry = { readonly path: string; readonly hash: string; readonly size: number; readonly rev: number };

type RevisionRow = { rev: number; parent: number; base: number; message: string; author: string; created: number; push_id: string | null; log_seq: number };
type FileRow = { path: string; hash: string | null; size: number; deleted: number };

const toRevision = (row: RevisionRow): RevisionRecord => ({
  rev: row.rev,
  parent: row.parent,
  base: row.base,
  message: row.message,
  author: row.author,
  created: row.created,
  pushId: row.push_id,
});

export class ShowFileTables {
  private readonly db: Database;
  private readonly selectHead: Statement;
  private readonly selectRevision: Statement;
  private readonly selectRevisionByPushId: Statement;
  private readonly selectRevisionBySeq: Statement;
  private readonly selectLastChange: Statement;
  private readonly selectFileAt: Statement;
  private readonly selectHeadFile: Statement;
  private readonly selectRevisionFiles: Statement;
  private readonly selectBlob: Statement;
  private readonly selectBlobExists: Statement;
  private readonly insertRevision: Statement;
  private readonly insertFile: Statement;
  private readonly insertBlob: Statement;
  private readonly upsertHeadFile: Statement;
  private readonly deleteHeadFile: Statement;
  private readonly selectHeadByFold: Statement;
  private readonly selectHeadUnderFold: Statement;

  constructor(db: Database) {
    this.db = db;
    this.selectHead = db.query("SELECT COALESCE(MAX(rev), 0) AS head FROM revisions");
    this.selectRevision = db.query("SELECT * FROM revisions WHERE rev = ?");
    this.selectRevisionByPushId = db.query("SELECT * FROM revisions WHERE push_id = ?");
    this.selectRevisionBySeq = db.query("SELECT * FROM revisions WHERE log_seq = ?");
    this.selectLastChange = db.query("SELECT MAX(rev) AS rev FROM files WHERE path = ?");
    this.selectFileAt = db.query("SELECT path, hash, size, deleted, rev FROM files WHERE path = ? AND rev <= ? ORDER BY rev DESC LIMIT 1");
    this.selectHeadFile = db.query("SELECT path, hash, size, rev FROM head_files WHERE path = ?");
    this.selectRevisionFiles = db.query("SELECT path, hash, size, deleted FROM files WHERE rev = ? ORDER BY path");
    this.selectBlob = db.query("SELECT data FROM blobs WHERE hash = ?");
    this.selectBlobExists = db.query("SELECT 1 AS found FROM blobs WHERE hash = ?");
    this.insertRevision = db.query(
      "INSERT INTO revisions (rev, parent, base, message, author, created, push_id, log_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.insertFile = db.query("INSERT INTO files (path, rev, hash, size, deleted) VALUES (?, ?, ?, ?, ?)");
    this.insertBlob = db.query("INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?, ?, ?)");
    this.upsertHeadFile = db.query(
      `INSERT INTO head_files (path, fold, hash, size, rev) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (path) DO UPDATE SET hash = excluded.hash, size = excluded.size, rev = excluded.rev`,
    );
    this.deleteHeadFile = db.query("DELETE FROM head_files WHERE path = ?");
    this.selectHeadByFold = db.query("SELECT path FROM head_files WHERE fold = ?");
    // Every fold key under folder F lies in [F + "/", F + "0"): "/" is 0x2F and "0" the next byte.
    this.selectHeadUnderFold = db.query("SELECT path FROM head_files WHERE fold >= ? AND fold < ?");
  }

  /** The newest revision; 0 when nothing was ever pushed. */
  head(): number {
    return (this.selectHead.get() as { head: number }).head;
  }

  revision(rev: number): (RevisionRecord & { logSeq: number }) | undefined {
    const row = this.selectRevision.get(rev) as RevisionRow | null;
    return row ? { ...toRevision(row), logSeq: row.log_seq } : undefined;
  }

  revisionByPushId(pushId: string): (RevisionRecord & { logSeq: number }) | undefined {
    const row = this.selectRevisionByPushId.get(pushId) as RevisionRow | null;
    return row ? { ...toRevision(row), logSeq: row.log_seq } : undefined;
  }

  revisionBySeq(seq: number): RevisionRecord | undefined {
    const row = this.selectRevisionBySeq.get(seq) as RevisionRow | null;
    return row ? toRevision(row) : undefined;
  }

  /** The last revision that changed `path` (0 if none ever did). */
  lastChange(path: string): number {
    return (this.selectLastChange.get(path) as { rev: number | null }).rev ?? 0;
  }

  /** `path` as of revision `rev`, or undefined if it did not exist then. */
  fileAt(path: string, rev: number): ShowFileEntry | undefined {
    const row = this.selectFileAt.get(path, rev) as (FileRow & { rev: number }) | null;
    if (!row || row.deleted === 1 || row.hash === null) return undefined;
    return { path: row.path, hash: row.hash, size: row.size, rev: row.rev };
  }

  headFile(path: string): ShowFileEntry | undefined {
    return (this.selectHeadFile.get(path) as ShowFileEntry | null) ?? undefined;
  }

  /** Every file of revision `rev` (head by default), sorted by path. */
  filesAt(rev: number, head: number): ShowFileEntry[] {
    if (rev === head) return this.db.query("SELECT path, hash, size, rev FROM head_files ORDER BY path").all() as ShowFileEntry[];
    // Older revisions: the newest history row per path at or before rev. Scans history; rare (diffs, audits).
    return this.db
      .query(
        `SELECT path, hash, size, rev FROM files AS f
         WHERE deleted = 0 AND rev = (SELECT MAX(g.rev) FROM files AS g WHERE g.path = f.path AND g.rev <= ?1)
         ORDER BY path`,
      )
      .all(rev) as ShowFileEntry[];
  }

  /** Paths changed by any revision after `rev`, sorted. */
  pathsChangedAfter(rev: number): string[] {
    return (this.db.query("SELECT DISTINCT path FROM files WHERE rev > ? ORDER BY path").all(rev) as { path: string }[]).map((r) => r.path);
  }

  revisionFiles(rev: number): FileRecord[] {
    return (this.selectRevisionFiles.all(rev) as FileRow[]).map((r) => ({ path: r.path, hash: r.hash, size: r.size, deleted: r.deleted === 1 }));
  }

  /** Blob content, checked against its hash on every read. `path` names it in the error. */
  readBlob(hash: string, path: string): Uint8Array {
    const row = this.selectBlob.get(hash) as { data: Uint8Array } | null;
    if (!row || sha256Hex(row.data) !== hash) throw new CorruptBlob(path, hash);
    return row.data;
  }

  hasBlob(hash: string): boolean {
    return this.selectBlobExists.get(hash) !== null;
  }

  /**
   * Head files that might collide with `path` (same fold key, a file where `path` needs a folder,
   * or files inside a folder named like `path`): the only candidates findShowPathCollisions needs.
   */
  collisionCandidates(path: string): string[] {
    const fold = showPathFoldKey(path);
    const found: string[] = [];
    for (const key of [fold, ...ancestorFoldKeys(path)]) {
      for (const row of this.selectHeadByFold.all(key) as { path: string }[]) found.push(row.path);
    }
    for (const row of this.selectHeadUnderFold.all(`${fold}/`, `${fold}0`) as { path: string }[]) found.push(row.path);
    return found;
  }

  /**
   * Writes one revision: its blobs (de-duplicated), its row, its history rows and the head.
   * Deletions update the head first so a rename that only changes letter case passes the fold key's UNIQUE.
   */
  writeRevision(revision: RevisionRecord, logSeq: number, files: readonly FileRecord[], blobs: readonly BlobRecord[]): void {
    for (const blob of blobs) this.insertBlob.run(blob.hash, blob.data.length, blob.data);
    const r = revision;
    this.insertRevision.run(r.rev, r.parent, r.base, r.message, r.author, r.created, r.pushId, logSeq);
    for (const file of files) this.insertFile.run(file.path, r.rev, file.hash, file.size, file.deleted ? 1 : 0);
    for (const file of files) if (file.deleted) this.deleteHeadFile.run(file.path);
    for (const file of files) {
      if (!file.deleted) this.upsertHeadFile.run(file.path, showPathFoldKey(file.path), file.hash, file.size, r.rev);
    }
  }

  /** Empties the show file (a backup about to receive a snapshot). */
  clear(): void {
    for (const table of ["head_files", "files", "revisions", "blobs"]) this.db.run(`DELETE FROM ${table}`);
  }
}
