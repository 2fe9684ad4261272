/**
 * Gives back the space of chunks nothing names any more: those of an aborted
 * upload, of an upload that stopped (no chunk stored for the grace period), of
 * a removed asset, of a push that never came. They are kept for the grace
 * period first, since an uploader may resume and a pusher may be about to
 * commit; a chunk named again meanwhile is simply kept.
 *
 * A push the main gave up is given back on the backup at once too (`reclaimNow`).
 *
 * The grace is measured from the first sweep that found a chunk unnamed (or an
 * upload unchanged), in this process: after a restart it starts again, which
 * only ever keeps things longer. `sweep(now)` is one synchronous step; the
 * runner calls it on a timer with the injected clock.
 */
import type { Database, Statement } from "bun:sqlite";
import { ChunkFiles, chunkDirFor } from "./chunk-files.ts";
import { writeTransaction } from "./write-transaction.ts";

/** Chunks removed per transaction, so a big reclaim never holds the write lock for long. */
const REMOVE_BATCH = 256;

/** Removes chunk ?1 unless something names it, checked at delete time: a chunk named since it was picked stays. */
const DELETE_UNNAMED = `DELETE FROM chunks WHERE hash = ?1
   AND NOT EXISTS (SELECT 1 FROM asset_chunks WHERE hash = ?1)
   AND NOT EXISTS (SELECT 1 FROM upload_chunks WHERE hash = ?1)
   AND NOT EXISTS (SELECT 1 FROM blob_chunks WHERE chunk = ?1)`;

/**
 * Removes now, not after the grace period, those of `hashes` nothing names: the backup's copy of
 * a push the main gave up (a full disk, a pusher gone), which the main has removed already. A
 * chunk an entry names (a later push, an asset) is kept; one not here is skipped.
 */
export function reclaimNow(db: Database, hashes: readonly string[]): { chunksRemoved: number; bytesFreed: number } {
  const dir = chunkDirFor(db.filename);
  const files = dir === null ? null : new ChunkFiles(dir);
  const select = db.query("SELECT size, in_file FROM chunks WHERE hash = ?");
  const remove = db.query(DELETE_UNNAMED);
  let chunksRemoved = 0;
  let bytesFreed = 0;
  for (let i = 0; i < hashes.length; i += REMOVE_BATCH) {
    const batch = hashes.slice(i, i + REMOVE_BATCH);
    const removed = writeTransaction(db, "giving back a failed push's chunks", () =>
      batch.flatMap((hash) => {
        const row = select.get(hash) as { size: number; in_file: number } | null;
        return row && remove.run(hash).changes > 0 ? [{ hash, size: row.size, inFile: row.in_file === 1 }] : [];
      }),
    );
    // Rows first, then files, as in sweep.
    for (const chunk of removed) {
      if (chunk.inFile) files?.remove(chunk.hash);
      chunksRemoved++;
      bytesFreed += chunk.size;
    }
  }
  return { chunksRemoved, bytesFreed };
}

export type SweepResult = { readonly uploadsDropped: number; readonly chunksRemoved: number; readonly bytesFreed: number };

export class ChunkReclaimer {
  private readonly files: ChunkFiles | null;
  /** Unnamed chunk → when a sweep first found it unnamed. */
  private readonly unnamedSince = new Map<string, number>();
  /** Upload → its stored chunk count and since when that count has not changed. */
  private readonly uploadsSeen = new Map<string, { count: number; since: number }>();
  private readonly selectUnnamed: Statement;
  private readonly selectUploads: Statement;
  private readonly deleteChunk: Statement;

  constructor(
    private readonly db: Database,
    private readonly graceMs: number,
  ) {
    const dir = chunkDirFor(db.filename);
    this.files = dir === null ? null : new ChunkFiles(dir);
    this.selectUnnamed = db.query(
      `SELECT hash, size, in_file FROM chunks AS c
       WHERE NOT EXISTS (SELECT 1 FROM asset_chunks AS a WHERE a.hash = c.hash)
         AND NOT EXISTS (SELECT 1 FROM upload_chunks AS u WHERE u.hash = c.hash)
         AND NOT EXISTS (SELECT 1 FROM blob_chunks AS b WHERE b.chunk = c.hash)`,
    );
    this.selectUploads = db.query("SELECT u.id, (SELECT COUNT(*) FROM upload_chunks AS c WHERE c.upload_id = u.id) AS count FROM uploads AS u");
    // Checked again at delete time: a chunk named since the select stays.
    this.deleteChunk = db.query(DELETE_UNNAMED);
  }

  /** One sweep at wall-clock `now`: drops uploads idle past the grace, then removes chunks unnamed past it. */
  sweep(now: number): SweepResult {
    const uploadsDropped = this.dropIdleUploads(now);
    const unnamed = this.selectUnnamed.all() as { hash: string; size: number; in_file: number }[];
    const present = new Set<string>();
    const due: { hash: string; size: number; inFile: boolean }[] = [];
    for (const row of unnamed) {
      present.add(row.hash);
      const since = this.unnamedSince.get(row.hash);
      if (since === undefined) this.unnamedSince.set(row.hash, now);
      else if (now - since >= this.graceMs) due.push({ hash: row.hash, size: row.size, inFile: row.in_file === 1 });
    }
    for (const hash of this.unnamedSince.keys()) if (!present.has(hash)) this.unnamedSince.delete(hash);
    let chunksRemoved = 0;
    let bytesFreed = 0;
    for (let i = 0; i < due.length; i += REMOVE_BATCH) {
      const batch = due.slice(i, i + REMOVE_BATCH);
      const removed = writeTransaction(this.db, "reclaiming unused chunks", () => batch.filter((c) => this.deleteChunk.run(c.hash).changes > 0));
      // Rows first, then files: a crash in between leaves an unindexed file, which the next write of it replaces.
      for (const chunk of removed) {
        if (chunk.inFile) this.files?.remove(chunk.hash);
        this.unnamedSince.delete(chunk.hash);
        chunksRemoved++;
        bytesFreed += chunk.size;
      }
    }
    return { uploadsDropped, chunksRemoved, bytesFreed };
  }

  private dropIdleUploads(now: number): number {
    const uploads = this.selectUploads.all() as { id: string; count: number }[];
    const idle: string[] = [];
    const present = new Set<string>();
    for (const { id, count } of uploads) {
      present.add(id);
      const seen = this.uploadsSeen.get(id);
      if (!seen || seen.count !== count) this.uploadsSeen.set(id, { count, since: now });
      else if (now - seen.since >= this.graceMs) idle.push(id);
    }
    for (const id of this.uploadsSeen.keys()) if (!present.has(id)) this.uploadsSeen.delete(id);
    if (idle.length === 0) return 0;
    writeTransaction(this.db, "dropping uploads that stopped", () => {
      for (const id of idle) this.db.run("DELETE FROM uploads WHERE id = ?", [id]);
    });
    for (const id of idle) this.uploadsSeen.delete(id);
    return idle.length;
  }
}
