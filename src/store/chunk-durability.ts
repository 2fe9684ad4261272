/**
 * Chunks written to files but not yet durable, made durable in groups (the top of
 * asset-store.ts tells the whole story): an upload's chunks every `flushGroup`
 * chunks, with the fsyncs on the runtime's I/O threads, and the chunks the backup
 * fetches by hash. An upload's chunk files are written on the I/O threads too
 * (`putUploadChunkAsync`): a chunk joins its group only once its file is written,
 * so a group's fsync never runs ahead of a write. A stored row always names a durable file; a file that cannot be
 * made durable is removed and forgotten, so it is asked for again.
 */
import type { Database } from "bun:sqlite";
import type { AssetTables } from "./asset-tables.ts";
import { DiskFull } from "./store-errors.ts";
import { isDiskFull, writeTransaction } from "./write-transaction.ts";

/** A chunk of an upload whose file is written but whose rows are not (not yet flushed). */
type PendingChunk = { hash: string; size: number };

/** The uploads' own rows, which the asset store keeps. */
export type UploadRows = {
  /** Whether the upload is still stored (not committed, aborted or dropped). */
  isOpen(uploadId: string): boolean;
  /** Records that chunk `idx` of the upload is `hash` (inside the caller's transaction). */
  index(uploadId: string, idx: number, hash: string): void;
};

export class ChunkDurability {
  /** Per upload: chunks written to files but not yet durable and indexed (idx → chunk). In memory only. */
  private readonly pending = new Map<string, Map<number, PendingChunk>>();
  /** Chunk files written by this process and not yet fsync'd (hash → size); a chunk here is not written again. */
  private readonly unsynced = new Map<string, number>();
  /** Chunk files being written on the I/O threads (hash → the write): a second put of the chunk waits for it instead of writing again. */
  private readonly writing = new Map<string, Promise<void>>();
  /** Per upload: its last put on the I/O threads, settled either way; the next put finishes after it. */
  private readonly lastPut = new Map<string, Promise<void>>();
  /** Per upload: its full groups being made durable on the I/O threads, one after the other. */
  private readonly flushing = new Map<string, Promise<void>>();
  /** Per upload: why a group could not be made durable; its next chunk or commit is refused with it. */
  private readonly flushFailed = new Map<string, Error>();
  /** Chunks in groups being made durable (hash → how many groups): their files are not removed meanwhile. */
  private readonly syncing = new Map<string, number>();
  /** Chunks fetched by hash (the backup's lane) whose files are written but not yet durable and indexed (hash → size). */
  private readonly pendingByHash = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly tables: AssetTables,
    private readonly upload: UploadRows,
    private readonly flushGroup: number,
  ) {}

  /** Writes chunk `idx` of an upload to its file unless it is already there, and flushes the upload's group once full. Whether bytes were written. */
  putUploadChunk(uploadId: string, idx: number, hash: string, bytes: Uint8Array, what: string): boolean {
    const stored = !this.tables.hasChunk(hash) && this.writeUnsynced(hash, bytes, what);
    this.joinGroup(uploadId, idx, hash, bytes.length);
    return stored;
  }

  /**
   * `putUploadChunk` with the file written on the runtime's I/O threads, so a gigabyte of chunks
   * never holds the event loop in `writeSync`. The chunk joins its group once its file is written.
   * An upload dropped meanwhile keeps nothing: its orphan file is removed (the caller reports it gone).
   * Files are written side by side, but an upload's puts finish in the order they came, as when
   * each was written on arrival (the uploader's acknowledgements and resume expect that order).
   */
  async putUploadChunkAsync(uploadId: string, idx: number, hash: string, bytes: Uint8Array, what: string): Promise<boolean> {
    const write = this.tables.hasChunk(hash) ? Promise.resolve(false) : this.writeUnsyncedAsync(hash, bytes, what);
    // Its failure is this put's, told in its turn: not an unhandled rejection while an earlier put finishes.
    write.catch(() => {});
    const previous = this.lastPut.get(uploadId);
    const turn = previous ? previous.then(() => write) : write;
    const settled = turn.then(
      () => {},
      () => {},
    );
    this.lastPut.set(uploadId, settled);
    let stored: boolean;
    try {
      stored = await turn;
    } finally {
      if (this.lastPut.get(uploadId) === settled) this.lastPut.delete(uploadId);
    }
    if (!this.upload.isOpen(uploadId)) this.forget(uploadId);
    else this.joinGroup(uploadId, idx, hash, bytes.length);
    return stored;
  }

  /** A written chunk joins its upload's group; a full group is made durable behind. */
  private joinGroup(uploadId: string, idx: number, hash: string, size: number): void {
    let group = this.pending.get(uploadId);
    if (!group) this.pending.set(uploadId, (group = new Map()));
    group.set(idx, { hash, size });
    if (group.size >= this.flushGroup) this.flushBehind(uploadId, `chunks of upload ${uploadId} up to chunk ${idx}`);
  }

  /** Writes a chunk fetched by hash to its file unless it is already there; it is indexed with its group. Whether bytes were written. */
  putChunkByHash(hash: string, bytes: Uint8Array): boolean {
    if (this.tables.hasChunk(hash)) return false;
    const stored = this.writeUnsynced(hash, bytes, `chunk ${hash}`);
    this.pendingByHash.set(hash, bytes.length);
    if (this.pendingByHash.size >= this.flushGroup) this.flushChunksByHash();
    return stored;
  }

  /** Whether a chunk fetched by hash waits for its flush. */
  awaitsFlush(hash: string): boolean {
    return this.pendingByHash.has(hash);
  }

  /** Whether chunks of the upload arrived that are not flushed yet. */
  hasPending(uploadId: string): boolean {
    return (this.pending.get(uploadId)?.size ?? 0) > 0;
  }

  /** Uploads with chunks held in memory. */
  uploads(): string[] {
    return [...this.pending.keys()];
  }

  /** Makes the chunks fetched by hash durable (fsync files, each folder once), then indexes them in one transaction. */
  flushChunksByHash(): void {
    if (this.pendingByHash.size === 0) return;
    this.syncThenIndex([...this.pendingByHash.keys()], `${this.pendingByHash.size} chunks fetched by hash`, () => {
      for (const [hash, size] of this.pendingByHash) this.tables.indexSyncedChunk(hash, size);
    });
    this.pendingByHash.clear();
  }

  /** Resolves once every full group of the upload handed to the I/O threads is durable and indexed (or failed). */
  groupsFlushed(uploadId: string): Promise<void> {
    return this.flushing.get(uploadId) ?? Promise.resolve();
  }

  /** Throws (once) why a group of the upload could not be made durable. */
  throwFlushFailure(uploadId: string): void {
    const failed = this.flushFailed.get(uploadId);
    if (!failed) return;
    this.flushFailed.delete(uploadId);
    throw failed;
  }

  /** The upload was committed: its chunks are indexed and nothing of it is held any more. */
  committed(uploadId: string): void {
    this.pending.delete(uploadId);
  }

  /** Drops an upload's in-memory state; its unindexed chunk files no one else waits for are removed (their space is not kept). */
  forget(uploadId: string): void {
    this.pending.delete(uploadId);
    this.flushFailed.delete(uploadId);
    const wanted = new Set([...this.pending.values()].flatMap((group) => [...group.values()].map((c) => c.hash)));
    for (const hash of this.pendingByHash.keys()) wanted.add(hash);
    for (const hash of this.syncing.keys()) wanted.add(hash);
    const orphans = [...this.unsynced.keys()].filter((hash) => !wanted.has(hash));
    for (const hash of orphans) this.unsynced.delete(hash);
    try {
      if (this.tables.storesFiles) this.tables.removeChunkFiles(orphans.filter((hash) => !this.tables.hasChunk(hash)));
    } catch {
      // A file still open elsewhere (Windows) stays; unindexed files are harmless and the next write of that chunk replaces them.
    }
  }

  /**
   * `writeUnsynced` on the I/O threads. A chunk another put is writing now is waited for, not
   * written twice (and that write's failure is this put's too).
   */
  private async writeUnsyncedAsync(hash: string, bytes: Uint8Array, what: string): Promise<boolean> {
    const underWay = this.writing.get(hash);
    if (underWay) {
      await underWay;
      return false;
    }
    if (this.unsynced.has(hash)) return false;
    const write = this.tables.writeChunkFileUnsyncedAsync(hash, bytes).catch((error: unknown) => {
      throw this.asDiskFull(error, what);
    });
    this.writing.set(hash, write);
    try {
      await write;
    } finally {
      this.writing.delete(hash);
    }
    this.unsynced.set(hash, bytes.length);
    return true;
  }

  /** Writes the chunk's file, not yet fsync'd, unless this process wrote it already. Whether bytes were written. */
  private writeUnsynced(hash: string, bytes: Uint8Array, what: string): boolean {
    if (this.unsynced.has(hash)) return false;
    try {
      this.tables.writeChunkFileUnsynced(hash, bytes);
    } catch (error) {
      throw this.asDiskFull(error, what);
    }
    this.unsynced.set(hash, bytes.length);
    return true;
  }

  /** A full disk as the studio engineer's DiskFull naming `what`; any other error as it was. */
  private asDiskFull(error: unknown, what: string): unknown {
    return isDiskFull(error) ? new DiskFull(what, this.db.filename, error) : error;
  }

  /**
   * `flush` with the fsyncs on the I/O threads: the group leaves `pending` now and is indexed once
   * its files are durable. Every chunk of the group not indexed yet is fsync'd here (also one
   * another group is writing out), so no row is written for a file this flush did not see durable.
   * A failure forgets the group's unsynced files and is told to the upload's next chunk or commit.
   */
  private flushBehind(uploadId: string, what: string): void {
    const group = this.pending.get(uploadId);
    if (!group || group.size === 0) return;
    this.pending.delete(uploadId);
    const hashes = [...new Set([...group.values()].map((c) => c.hash))].filter((hash) => !this.tables.hasChunk(hash));
    for (const hash of hashes) this.syncing.set(hash, (this.syncing.get(hash) ?? 0) + 1);
    const release = () => {
      for (const hash of hashes) {
        const n = this.syncing.get(hash)! - 1;
        if (n === 0) this.syncing.delete(hash);
        else this.syncing.set(hash, n);
      }
    };
    const previous = this.groupsFlushed(uploadId);
    const done = previous
      .then(() => this.tables.syncChunkFilesAsync(hashes))
      .then(
        () => {
          release();
          for (const hash of hashes) this.unsynced.delete(hash);
          writeTransaction(this.db, what, () => {
            // An upload aborted meanwhile still gets its chunks indexed (durable now); the reclaimer removes them after the grace period.
            const open = this.upload.isOpen(uploadId);
            for (const [idx, chunk] of group) {
              this.tables.indexSyncedChunk(chunk.hash, chunk.size);
              if (open) this.upload.index(uploadId, idx, chunk.hash);
            }
          });
        },
        (error: unknown) => {
          release();
          this.forgetUnsynced(hashes.filter((hash) => this.unsynced.has(hash)));
          if (this.upload.isOpen(uploadId)) this.flushFailed.set(uploadId, this.asDiskFull(error, what) as Error);
        },
      )
      .catch((error: unknown) => {
        if (this.upload.isOpen(uploadId)) this.flushFailed.set(uploadId, error as Error);
      })
      .finally(() => {
        if (this.flushing.get(uploadId) === done) this.flushing.delete(uploadId);
      });
    this.flushing.set(uploadId, done);
  }

  /**
   * Makes the upload's pending chunks durable and indexed: fsync their files (and each folder
   * once), then write all their rows in one transaction. If the files cannot be made durable
   * (ENOSPC at fsync), they are removed and forgotten, so the uploader is asked for them again.
   */
  flush(uploadId: string, what: string): void {
    const group = this.pending.get(uploadId);
    if (!group || group.size === 0) return;
    this.syncThenIndex([...group.values()].map((c) => c.hash), what, () => {
      for (const [idx, chunk] of group) {
        this.tables.indexSyncedChunk(chunk.hash, chunk.size);
        this.upload.index(uploadId, idx, chunk.hash);
      }
    });
    this.pending.delete(uploadId);
  }

  /**
   * The one order for making chunks durable: fsync the files of `hashes` not yet synced
   * (each folder once), then write their rows with `index` in one transaction. Files
   * that cannot be made durable are removed and forgotten; ENOSPC becomes DISK_FULL.
   */
  private syncThenIndex(hashes: readonly string[], what: string, index: () => void): void {
    const toSync = [...new Set(hashes)].filter((hash) => this.unsynced.has(hash));
    try {
      this.tables.syncChunkFiles(toSync);
    } catch (error) {
      this.forgetUnsynced(toSync);
      throw this.asDiskFull(error, what);
    }
    for (const hash of toSync) this.unsynced.delete(hash);
    writeTransaction(this.db, what, index);
  }

  /** Drops chunk files that could not be made durable, and every pending chunk naming them. */
  private forgetUnsynced(hashes: readonly string[]): void {
    const lost = new Set(hashes);
    try {
      // A file another group is making durable stays: that group sees for itself whether it can.
      this.tables.removeChunkFiles([...lost].filter((hash) => !this.syncing.has(hash)));
    } catch {
      // Unindexed files are harmless: the next write of that chunk replaces them.
    }
    for (const hash of lost) {
      this.unsynced.delete(hash);
      this.pendingByHash.delete(hash);
    }
    for (const group of this.pending.values()) {
      for (const [idx, chunk] of group) if (lost.has(chunk.hash)) group.delete(idx);
    }
  }
}
