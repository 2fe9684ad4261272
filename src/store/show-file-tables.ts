/**
 * The show file's rows: revisions, files (history), head_files (the show file at
 * head) and blobs. Shared by ShowFileStore (pushes on the main) and replication
 * (entries applied on the backup), so both write a revision the same way.
 * Callers run writes inside a transaction; nothing here starts one.
 *
 * A blob's content is a list of 1 MiB chunks in the asset cache (blob_chunks), so a file of
 * any size is stored, pushed, pulled and replicated a chunk at a time, and a chunk any file or
 * asset already has is never stored or sent again. Its hash is fileHashOfChunks(chunks).
 * Blobs written before that keep their bytes inline (chunked = 0) until `chunkInlineBlobs`.
 */
import type { Database, Statement } from "bun:sqlite";
import { ancestorFoldKeys, showPathFoldKey } from "../core/show-paths.ts";
import { ASSET_CHUNK_BYTES, AssetTables } from "./asset-tables.ts";
import { fileHashOfChunks, sha256Hex } from "./content-hash.ts";
import { CorruptBlob } from "./store-errors.ts";

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

/** A file's content: its size and its chunks' hashes in order (hash = fileHashOfChunks(chunks)). */
export type BlobRecord = { readonly hash: string; readonly size: number; readonly chunks: readonly string[] };

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
  private readonly selectBlobChunks: Statement;
  private readonly insertBlobChunk: Statement;
  private readonly chunkStore: AssetTables;

  constructor(db: Database) {
    this.db = db;
    this.chunkStore = new AssetTables(db);
    this.selectBlobChunks = db.query("SELECT chunk FROM blob_chunks WHERE hash = ? ORDER BY idx");
    this.insertBlobChunk = db.query("INSERT INTO blob_chunks (hash, idx, chunk) VALUES (?, ?, ?)");
    this.selectHead = db.query("SELECT COALESCE(MAX(rev), 0) AS head FROM revisions");
    this.selectRevision = db.query("SELECT * FROM revisions WHERE rev = ?");
    this.selectRevisionByPushId = db.query("SELECT * FROM revisions WHERE push_id = ?");
    this.selectRevisionBySeq = db.query("SELECT * FROM revisions WHERE log_seq = ?");
    this.selectLastChange = db.query("SELECT MAX(rev) AS rev FROM files WHERE path = ?");
    this.selectFileAt = db.query("SELECT path, hash, size, deleted, rev FROM files WHERE path = ? AND rev <= ? ORDER BY rev DESC LIMIT 1");
    this.selectHeadFile = db.query("SELECT path, hash, size, rev FROM head_files WHERE path = ?");
    this.selectRevisionFiles = db.query("SELECT path, hash, size, deleted FROM files WHERE rev = ? ORDER BY path");
    this.selectBlob = db.query("SELECT data, chunked FROM blobs WHERE hash = ?");
    this.selectBlobExists = db.query("SELECT 1 AS found FROM blobs WHERE hash = ?");
    this.insertRevision = db.query(
      "INSERT INTO revisions (rev, parent, base, message, author, created, push_id, log_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.insertFile = db.query("INSERT INTO files (path, rev, hash, size, deleted) VALUES (?, ?, ?, ?, ?)");
    this.insertBlob = db.query("INSERT OR IGNORE INTO blobs (hash, size, data, chunked) VALUES (?, ?, X'', 1)");
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

  /** A blob's chunk hashes in order (checked against the blob's hash). `path` names it in the error. */
  blobChunks(hash: string, path: string): string[] {
    const row = this.selectBlob.get(hash) as { data: Uint8Array; chunked: number } | null;
    if (!row) throw new CorruptBlob(path, hash);
    if (row.chunked === 0) throw new CorruptBlob(path, hash); // chunkInlineBlobs runs at open, so none is left
    const chunks = (this.selectBlobChunks.all(hash) as { chunk: string }[]).map((r) => r.chunk);
    if (fileHashOfChunks(chunks) !== hash) throw new CorruptBlob(path, hash);
    return chunks;
  }

  /** A blob's whole content, each chunk's hash checked. For small files and tests: pulls stream chunk by chunk. */
  readBlob(hash: string, path: string): Uint8Array {
    const pieces = this.blobChunks(hash, path).map((chunk) => {
      let data: Uint8Array | undefined;
      try {
        data = this.chunkStore.readChunk(chunk, `the show file's ${JSON.stringify(path)}`);
      } catch (error) {
        throw new CorruptBlob(path, hash, error);
      }
      if (!data) throw new CorruptBlob(path, hash);
      return data;
    });
    return pieces.length === 1 ? pieces[0]! : new Uint8Array(Buffer.concat(pieces));
  }

  /**
   * Splits `content` into chunks, stores each durably unless it is stored already, and returns its
   * record. Inside a transaction (the chunk files are durable before their rows, as for assets).
   */
  storeContent(content: Uint8Array): BlobRecord {
    const chunks: string[] = [];
    for (const { piece, hash } of chunksOf(content)) {
      this.chunkStore.insertChunk(hash, piece);
      chunks.push(hash);
    }
    return { hash: fileHashOfChunks(chunks), size: content.length, chunks };
  }

  /** The size of each stored chunk in `chunks` (undefined where one is not stored). */
  chunkSizes(chunks: readonly string[]): (number | undefined)[] {
    return chunks.map((hash) => this.chunkStore.chunkSize(hash));
  }

  /**
   * Moves blobs written before chunking (bytes inline) into chunks, one transaction each; their
   * hash (SHA-256 of the content) becomes fileHashOfChunks, and every row naming it follows.
   * Returns how many moved. Runs once at open; a database with none does nothing.
   */
  chunkInlineBlobs(): number {
    const inline = (this.db.query("SELECT hash FROM blobs WHERE chunked = 0").all() as { hash: string }[]).map((r) => r.hash);
    for (const old of inline) {
      this.db.transaction(() => {
        const { data } = this.db.query("SELECT data FROM blobs WHERE hash = ?").get(old) as { data: Uint8Array };
        const record = this.storeContent(data);
        if (record.hash !== old) {
          this.insertBlob.run(record.hash, record.size);
          for (const table of ["files", "head_files"]) this.db.run(`UPDATE ${table} SET hash = ? WHERE hash = ?`, [record.hash, old]);
          this.db.run("DELETE FROM blobs WHERE hash = ?", [old]);
        } else {
          this.db.run("UPDATE blobs SET data = X'', chunked = 1 WHERE hash = ?", [old]);
        }
        if (this.selectBlobChunks.all(record.hash).length === 0) record.chunks.forEach((chunk, idx) => this.insertBlobChunk.run(record.hash, idx, chunk));
      }).immediate();
    }
    return inline.length;
  }

  /** Whether the blob is stored (its chunks with it). */
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
    for (const blob of blobs) {
      if (this.insertBlob.run(blob.hash, blob.size).changes === 0) continue; // stored already, with its chunks
      blob.chunks.forEach((chunk, idx) => this.insertBlobChunk.run(blob.hash, idx, chunk));
    }
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
    for (const table of ["head_files", "files", "revisions", "blob_chunks", "blobs"]) this.db.run(`DELETE FROM ${table}`);
  }
}

/** `content` cut into 1 MiB chunks, each with its SHA-256. */
function* chunksOf(content: Uint8Array): Generator<{ piece: Uint8Array; hash: string }> {
  for (let at = 0; at < content.length; at += ASSET_CHUNK_BYTES) {
    const piece = content.subarray(at, Math.min(content.length, at + ASSET_CHUNK_BYTES));
    yield { piece, hash: sha256Hex(piece) };
  }
}

/** The hash `storeContent` would give `content`, without storing it. */
export function fileHashOfContent(content: Uint8Array): string {
  return fileHashOfChunks(Array.from(chunksOf(content), (c) => c.hash));
}
