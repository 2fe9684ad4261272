/**
 * The Asset Hub cache (docs/design.md §Lanes and replication): large media split
 * into 1 MiB chunks addressed by SHA-256, so identical chunks are stored once.
 *
 * Uploads stream: `beginUpload` records the upload; `putChunk` writes each chunk's file
 * at once but makes it durable in groups: every CHUNK_FLUSH_GROUP chunks of an upload the
 * group's files are fsync'd on the runtime's I/O threads (a gigabyte's fsyncs never stall the
 * heartbeats), then their index rows written in ONE transaction; `commit` waits for those and
 * flushes the rest, `missingChunks` flushes what is not yet under way. So a stored row always names a durable file,
 * and a crash loses at most the last unflushed group, whose rows were never written: resume
 * asks for those chunks again. `commit` checks the content (by the uploader's list of chunk
 * hashes when it sends one, else by re-reading the whole file), then writes the manifest
 * and its replication log entry in one transaction; only that is the acknowledgement an
 * uploader relies on. Until then the asset is invisible. Uploads in progress are stored,
 * so after a restart `missingChunks` tells the uploader what is left to send.
 *
 * Every chunk read checks the chunk's hash (CorruptChunk otherwise).
 */
import type { Database, Statement } from "bun:sqlite";
import { randomUUID } from "node:crypto";
import { InvalidInput } from "../core/errors.ts";
import {
  ASSET_CHUNK_BYTES,
  AssetTables,
  chunkCountFor,
  chunkLengthAt,
  type AssetInfo,
  type AssetManifest,
} from "./asset-tables.ts";
import { chunkHasher } from "./chunk-hasher.ts";
import { createSha256, fileHashOfChunks, isSha256Hex, sha256Hex } from "./content-hash.ts";
import { ASSET_MANIFEST, ASSET_REMOVED } from "./replication-entries.ts";
import type { ReplicationLog } from "./replication-log.ts";
import {
  AssetHashMismatch,
  AssetNotFound,
  ChunkNotFound,
  InvalidChunk,
  RangeNotSatisfiable,
  UploadIncomplete,
  UploadNotFound,
} from "./store-errors.ts";
import { writeTransaction } from "./write-transaction.ts";
import { ChunkDurability } from "./chunk-durability.ts";
import type { Clock } from "../core/clock.ts";
import { wallClock } from "../net/system-time.ts";

export { ASSET_CHUNK_BYTES, type AssetInfo, type AssetManifest } from "./asset-tables.ts";

export const MAX_ASSET_NAME_CHARS = 1024;
/** When commit re-reads an upload to hash it (no chunk list sent), it lets other work run after this many bytes. */
const REHASH_YIELD_BYTES = 16 * ASSET_CHUNK_BYTES;
/** How many chunks of an upload are written before their files are fsync'd and indexed together. */
export const CHUNK_FLUSH_GROUP = 32;

/** An upload in progress. `id` becomes the asset's id when it is committed. */
export type UploadHandle = { readonly id: string; readonly name: string; readonly size: number; readonly chunkCount: number; readonly chunkSize: number };

export type ByteRange = { readonly start: number; readonly end: number };

type UploadRow = { id: string; name: string; size: number; chunk_count: number; created: number };

export type AssetStoreOptions = { readonly flushGroup?: number };

export class AssetStore {
  private readonly db: Database;
  private readonly log: ReplicationLog;
  private readonly tables: AssetTables;
  private readonly clock: Clock;
  /** Chunks written but not yet durable, and their groups' flushes. */
  private readonly durability: ChunkDurability;
  private readonly selectUpload: Statement;
  private readonly selectUploadChunks: Statement;
  private readonly upsertUploadChunk: Statement;

  constructor(db: Database, log: ReplicationLog, clock: Clock = wallClock, options: AssetStoreOptions = {}) {
    this.db = db;
    // A manifest applied by replication must find its chunks durable and indexed.
    log.onFlushChunks(() => this.flushChunksByHash());
    this.log = log;
    this.tables = new AssetTables(db);
    this.clock = clock;
    this.selectUpload = db.query("SELECT * FROM uploads WHERE id = ?");
    this.selectUploadChunks = db.query("SELECT idx, hash FROM upload_chunks WHERE upload_id = ? ORDER BY idx");
    this.upsertUploadChunk = db.query(
      "INSERT INTO upload_chunks (upload_id, idx, hash) VALUES (?, ?, ?) ON CONFLICT (upload_id, idx) DO UPDATE SET hash = excluded.hash",
    );
    const uploads = { isOpen: (id: string) => this.selectUpload.get(id) !== null, index: (id: string, idx: number, hash: string) => void this.upsertUploadChunk.run(id, idx, hash) };
    this.durability = new ChunkDurability(db, this.tables, uploads, Math.max(1, options.flushGroup ?? CHUNK_FLUSH_GROUP));
  }

  /** Records a new upload of `size` bytes; send chunks 0..chunkCount-1, each exactly chunkSize bytes but the last. */
  beginUpload(name: string, size: number): UploadHandle {
    if (name.length === 0 || name.length > MAX_ASSET_NAME_CHARS || /[\u0000-\u001f\u007f]/.test(name)) {
      throw new InvalidInput(`An asset name must be 1 to ${MAX_ASSET_NAME_CHARS} characters without control characters.`, "name");
    }
    if (!Number.isSafeInteger(size) || size < 0) throw new InvalidInput(`An asset size must be a whole number of bytes, not ${size}.`, "size");
    const handle: UploadHandle = { id: randomUUID(), name, size, chunkCount: chunkCountFor(size), chunkSize: ASSET_CHUNK_BYTES };
    writeTransaction(this.db, `the start of the upload of ${JSON.stringify(name)}`, () => {
      this.db.run("INSERT INTO uploads (id, name, size, chunk_count, created) VALUES (?, ?, ?, ?, ?)", [
        handle.id,
        name,
        size,
        handle.chunkCount,
        this.clock.now(),
      ]);
    });
    return handle;
  }

  /** The upload `id` in progress, as beginUpload returned it (for an uploader resuming after a restart). */
  upload(id: string): UploadHandle {
    const row = this.uploadRow(id);
    return { id: row.id, name: row.name, size: row.size, chunkCount: row.chunk_count, chunkSize: ASSET_CHUNK_BYTES };
  }

  /** Every upload in progress, oldest first. */
  pendingUploads(): UploadHandle[] {
    const rows = this.db.query("SELECT * FROM uploads ORDER BY created, id").all() as UploadRow[];
    return rows.map((r) => ({ id: r.id, name: r.name, size: r.size, chunkCount: r.chunk_count, chunkSize: ASSET_CHUNK_BYTES }));
  }

  /**
   * Stores chunk `idx` of an upload. Its length must be exactly what that index needs (so byte
   * offsets map to chunks). A chunk already stored (by any asset, or written and awaiting its
   * flush) is not written again: `stored` says whether bytes were written. The chunk becomes
   * durable and indexed with its group (see the top of this file), not necessarily at once.
   * `hashed`: the bytes' SHA-256 as `putChunkAsync` computed it (never a peer's claim).
   */
  putChunk(uploadId: string, idx: number, bytes: Uint8Array, hashed?: string): { hash: string; stored: boolean } {
    const what = this.checkChunk(uploadId, idx, bytes);
    const hash = hashed ?? sha256Hex(bytes);
    let stored: boolean;
    if (!this.tables.storesFiles) {
      // An in-memory database keeps bytes inline and has nothing to make durable: one transaction per chunk.
      stored = writeTransaction(this.db, what, () => {
        const written = this.tables.insertChunk(hash, bytes);
        this.upsertUploadChunk.run(uploadId, idx, hash);
        return written;
      });
    } else {
      stored = this.durability.putUploadChunk(uploadId, idx, hash, bytes, what);
    }
    return { hash, stored };
  }

  /**
   * `putChunk` off the main's event loop, which carries heartbeats: the chunk is hashed on a worker
   * (chunk-hasher.ts) and its file written on the runtime's I/O threads (chunk-durability.ts).
   */
  async putChunkAsync(uploadId: string, idx: number, bytes: Uint8Array): Promise<{ hash: string; stored: boolean }> {
    const hash = await chunkHasher.sha256Hex(bytes);
    if (!this.tables.storesFiles) return this.putChunk(uploadId, idx, bytes, hash);
    const what = this.checkChunk(uploadId, idx, bytes);
    const stored = await this.durability.putUploadChunkAsync(uploadId, idx, hash, bytes, what);
    // Dropped while its file was written (the file is gone again): refused as a put after the drop is.
    this.uploadRow(uploadId);
    return { hash, stored };
  }

  /** Refuses a chunk that does not fit its upload, or an upload whose last group could not be made durable; names the chunk. */
  private checkChunk(uploadId: string, idx: number, bytes: Uint8Array): string {
    const upload = this.uploadRow(uploadId);
    if (!Number.isSafeInteger(idx) || idx < 0 || idx >= upload.chunk_count) {
      throw new InvalidChunk(`Chunk index ${idx} is outside upload ${uploadId} (chunks 0 to ${upload.chunk_count - 1}).`);
    }
    const expected = chunkLengthAt(upload.size, idx);
    if (bytes.length !== expected) throw new InvalidChunk(`Chunk ${idx} of upload ${uploadId} has ${bytes.length} bytes; it must have ${expected}.`);
    this.durability.throwFlushFailure(uploadId);
    return `chunk ${idx} of upload ${uploadId}`;
  }

  /** The chunk indexes the upload still needs, ascending. */
  missingChunks(uploadId: string): number[] {
    const upload = this.uploadRow(uploadId);
    // Only chunks durably stored count as there: flush what this upload has pending first.
    this.durability.flush(uploadId, `the chunks of upload ${uploadId} received so far`);
    const have = new Set((this.selectUploadChunks.all(uploadId) as { idx: number }[]).map((r) => r.idx));
    const missing: number[] = [];
    for (let idx = 0; idx < upload.chunk_count; idx++) if (!have.has(idx)) missing.push(idx);
    return missing;
  }

  /**
   * Checks the upload's content, then, in one transaction, writes the manifest and its log entry
   * and forgets the upload. With `chunkListHash` (fileHashOfChunks of the uploader's own chunk
   * hashes, computed in the same read as `sha256`) the check costs no byte read: every chunk was
   * hashed here as it arrived, so a matching list means these are the uploader's bytes, and
   * `sha256` is taken as the uploader computed it (one hash per byte on this machine, not two).
   * Without it the whole file is read back and hashed, yielding so heartbeats go on.
   * Committing an id already committed with the same hash returns that asset (a retried commit).
   */
  async commit(uploadId: string, sha256: string, chunkListHash?: string): Promise<{ asset: AssetInfo; seq: number }> {
    if (!isSha256Hex(sha256)) throw new InvalidInput(`${JSON.stringify(sha256)} is not a SHA-256 in lowercase hex.`, "sha256");
    if (chunkListHash !== undefined && !isSha256Hex(chunkListHash)) throw new InvalidInput(`${JSON.stringify(chunkListHash)} is not a SHA-256 in lowercase hex.`, "chunkListHash");
    const committed = this.tables.asset(uploadId);
    if (committed && committed.sha256 === sha256 && !this.selectUpload.get(uploadId)) {
      return { asset: committed, seq: this.seqOfAsset(uploadId) };
    }
    this.uploadRow(uploadId);
    // The chunks must be durable and indexed before the manifest (which names them) commits.
    await this.durability.groupsFlushed(uploadId);
    this.durability.throwFlushFailure(uploadId);
    const upload = this.uploadRow(uploadId);
    this.durability.flush(uploadId, `the chunks of upload ${uploadId}`);
    const chunks = this.uploadChunkHashes(upload);
    const missing = chunks.flatMap((hash, idx) => (hash === undefined ? [idx] : []));
    if (missing.length > 0) throw new UploadIncomplete(uploadId, missing);
    if (chunkListHash !== undefined) {
      const actual = fileHashOfChunks(chunks as string[]);
      if (actual !== chunkListHash) throw new AssetHashMismatch(uploadId, chunkListHash, actual);
    } else {
      const actual = await this.wholeFileHash(upload, chunks as string[]);
      if (actual !== sha256) throw new AssetHashMismatch(uploadId, sha256, actual);
    }
    return writeTransaction(this.db, `the asset ${JSON.stringify(upload.name)}`, () => {
      // A second commit of the same upload may have finished while this one was hashing.
      const raced = this.tables.asset(uploadId);
      if (raced && raced.sha256 === sha256 && !this.selectUpload.get(uploadId)) return { asset: raced, seq: this.seqOfAsset(uploadId) };
      // Re-read inside the transaction: a chunk replaced while the hash was computed must not slip in.
      const now = this.uploadChunkHashes(this.uploadRow(uploadId));
      const arrived = this.durability.hasPending(uploadId);
      if (arrived || now.some((hash, idx) => hash !== chunks[idx])) throw new InvalidChunk(`Upload ${uploadId} changed while it was being committed; commit it again.`);
      const manifest: AssetManifest = {
        id: upload.id,
        name: upload.name,
        size: upload.size,
        sha256,
        chunkCount: upload.chunk_count,
        created: this.clock.now(),
        chunks: chunks as string[],
      };
      const seq = this.log.append(ASSET_MANIFEST, JSON.stringify({ assetId: manifest.id }), manifest.created);
      this.tables.writeManifest(manifest, seq);
      this.db.run("DELETE FROM uploads WHERE id = ?", [uploadId]);
      this.durability.committed(uploadId);
      const { chunks: _, ...asset } = manifest;
      return { asset, seq };
    });
  }

  /**
   * Removes a committed asset, in one transaction with its replication log entry (the backup
   * removes it too). Its chunks stay until the reclaimer finds nothing names them for the grace
   * period. Throws AssetNotFound.
   */
  removeAsset(id: string): { seq: number } {
    return writeTransaction(this.db, `the removal of asset ${id}`, () => {
      if (!this.tables.asset(id)) throw new AssetNotFound(id);
      const seq = this.log.append(ASSET_REMOVED, JSON.stringify({ assetId: id }), this.clock.now());
      this.tables.removeManifest(id);
      return { seq };
    });
  }

  /** Forgets an upload in progress; throws UploadNotFound when there is none. Its chunks are reclaimed after the grace period unless another asset names them. */
  abortUpload(uploadId: string): void {
    const removed = writeTransaction(this.db, `aborting upload ${uploadId}`, () => this.db.run("DELETE FROM uploads WHERE id = ?", [uploadId]).changes);
    if (removed === 0) throw new UploadNotFound(uploadId);
    this.durability.forget(uploadId);
  }

  /**
   * Drops an upload and gives its space back now, not after the grace period: its chunks that
   * nothing else names are deleted (rows, then files). For an upload that hit a full disk, so the
   * show file and other uploads can go on at once. Whether there was such an upload.
   */
  discardUpload(uploadId: string): boolean {
    this.durability.forget(uploadId);
    const freed = writeTransaction(this.db, `giving back the space of upload ${uploadId}`, () => {
      const hashes = (this.selectUploadChunks.all(uploadId) as { hash: string }[]).map((r) => r.hash);
      const existed = this.db.run("DELETE FROM uploads WHERE id = ?", [uploadId]).changes > 0;
      const unnamed = [...new Set(hashes)].filter(
        (hash) =>
          this.db.run(
            `DELETE FROM chunks WHERE hash = ?1
               AND NOT EXISTS (SELECT 1 FROM asset_chunks WHERE hash = ?1)
               AND NOT EXISTS (SELECT 1 FROM upload_chunks WHERE hash = ?1)
               AND NOT EXISTS (SELECT 1 FROM blob_chunks WHERE chunk = ?1)`,
            [hash],
          ).changes > 0,
      );
      return { existed, unnamed };
    });
    if (this.tables.storesFiles) this.tables.removeChunkFiles(freed.unnamed);
    return freed.existed;
  }

  /**
   * Forgets what this process holds for uploads that are no longer stored (the reclaimer dropped
   * them as stalled): their chunks written but never indexed are removed at once.
   */
  forgetDroppedUploads(): void {
    for (const uploadId of this.durability.uploads()) {
      if (!this.selectUpload.get(uploadId)) this.durability.forget(uploadId);
    }
  }

  /**
   * The bytes [start, end) of an asset (the whole asset by default), one piece per chunk,
   * each chunk's hash checked as it is read. Range and asset are checked at the call; the
   * returned iterator reads lazily, so a gigabyte is never in memory at once.
   */
  read(id: string, range?: ByteRange): Generator<Uint8Array> {
    const asset = this.tables.asset(id);
    if (!asset) throw new AssetNotFound(id);
    const { start, end } = range ?? { start: 0, end: asset.size };
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > end || end > asset.size) {
      throw new RangeNotSatisfiable(start, end, asset.size);
    }
    return this.readChunks(asset, start, end);
  }

  /** Every asset, in the order they were committed. */
  list(): AssetInfo[] {
    return this.tables.list();
  }

  manifest(id: string): AssetManifest {
    const manifest = this.tables.manifest(id);
    if (!manifest) throw new AssetNotFound(id);
    return manifest;
  }

  /** Whether the chunk is durably stored and indexed (a chunk fetched by hash and awaiting its flush is flushed first). */
  hasChunk(hash: string): boolean {
    if (this.durability.awaitsFlush(hash)) this.durability.flushChunksByHash();
    return this.tables.hasChunk(hash);
  }

  /** The hashes in `hashes` not stored here, each once. */
  missingChunkHashes(hashes: Iterable<string>): string[] {
    this.durability.flushChunksByHash();
    return this.tables.missingChunks(hashes);
  }

  /** A stored chunk by hash, checked (the chunk lane on the main serves these). */
  chunk(hash: string): Uint8Array {
    if (this.durability.awaitsFlush(hash)) this.durability.flushChunksByHash();
    const data = this.tables.readChunk(hash, "the chunk lane");
    if (!data) throw new ChunkNotFound(hash);
    return data;
  }

  /** `chunk` with the file read off the main thread: the chunk lane and pulls serve from disks that seek. */
  async chunkAsync(hash: string): Promise<Uint8Array> {
    if (this.durability.awaitsFlush(hash)) this.durability.flushChunksByHash();
    const data = await this.tables.readChunkAsync(hash, "the chunk lane");
    if (!data) throw new ChunkNotFound(hash);
    return data;
  }

  /**
   * Stores a chunk fetched by hash (the backup's chunk lane) after checking the bytes hash to it.
   * Like upload chunks, these are made durable and indexed in groups, and always before a
   * manifest is checked or applied (ReplicationLog calls `flushChunksByHash` first).
   */
  putChunkByHash(hash: string, bytes: Uint8Array): { stored: boolean } {
    if (!isSha256Hex(hash)) throw new InvalidChunk(`${JSON.stringify(hash)} is not a SHA-256 in lowercase hex.`);
    if (bytes.length > ASSET_CHUNK_BYTES) throw new InvalidChunk(`Chunk ${hash} has ${bytes.length} bytes; chunks hold at most ${ASSET_CHUNK_BYTES}.`);
    const actual = sha256Hex(bytes);
    if (actual !== hash) throw new InvalidChunk(`The bytes sent as chunk ${hash} hash to ${actual}.`);
    if (!this.tables.storesFiles) return { stored: writeTransaction(this.db, `chunk ${hash}`, () => this.tables.insertChunk(hash, bytes)) };
    return { stored: this.durability.putChunkByHash(hash, bytes) };
  }

  /** Makes the chunks fetched by hash durable (fsync files, each folder once), then indexes them in one transaction. */
  flushChunksByHash(): void {
    this.durability.flushChunksByHash();
  }

  /** Resolves once every full group of the upload handed to the I/O threads is durable and indexed (or failed). */
  groupsFlushed(uploadId: string): Promise<void> {
    return this.durability.groupsFlushed(uploadId);
  }

  private *readChunks(asset: AssetInfo, start: number, end: number): Generator<Uint8Array> {
    if (start === end) return;
    const first = Math.floor(start / ASSET_CHUNK_BYTES);
    const last = Math.floor((end - 1) / ASSET_CHUNK_BYTES);
    for (let idx = first; idx <= last; idx++) {
      const where = `asset ${asset.id} (${JSON.stringify(asset.name)}), chunk ${idx}`;
      const hash = this.tables.chunkHashAt(asset.id, idx);
      const data = hash === undefined ? undefined : this.tables.readChunk(hash, where);
      if (hash === undefined || data === undefined) throw new ChunkNotFound(hash ?? `#${idx} of ${asset.id}`);
      const offset = idx * ASSET_CHUNK_BYTES;
      yield data.subarray(Math.max(0, start - offset), Math.min(data.length, end - offset));
    }
  }

  private uploadRow(id: string): UploadRow {
    const row = this.selectUpload.get(id) as UploadRow | null;
    if (!row) throw new UploadNotFound(id);
    return row;
  }

  /** The hash stored at each index of an upload, undefined where none is yet. */
  private uploadChunkHashes(upload: UploadRow): (string | undefined)[] {
    const hashes = new Array<string | undefined>(upload.chunk_count).fill(undefined);
    for (const row of this.selectUploadChunks.all(upload.id) as { idx: number; hash: string }[]) hashes[row.idx] = row.hash;
    return hashes;
  }

  private seqOfAsset(id: string): number {
    return (this.db.query("SELECT log_seq FROM assets WHERE id = ?").get(id) as { log_seq: number }).log_seq;
  }

  private async wholeFileHash(upload: UploadRow, chunks: readonly string[]): Promise<string> {
    const hash = createSha256();
    let sinceYield = 0;
    for (const [idx, chunk] of chunks.entries()) {
      const data = this.tables.readChunk(chunk, `upload ${upload.id}, chunk ${idx}`);
      if (!data) throw new ChunkNotFound(chunk);
      hash.update(data);
      sinceYield += data.length;
      if (sinceYield >= REHASH_YIELD_BYTES) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    return hash.digest("hex");
  }
}
