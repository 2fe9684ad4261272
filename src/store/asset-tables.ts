/**
 * The asset cache's rows: chunks (content-addressed, shared), assets (manifests)
 * and asset_chunks (which chunk is where). Shared by AssetStore (uploads on the
 * main) and replication (manifests applied on the backup). Callers run writes
 * inside a transaction; nothing here starts one.
 *
 * A chunk's bytes live in a file (chunk-files.ts) named by its hash, beside the database; the
 * chunks row is the index (in_file = 1, data empty). Rows written before that (in_file = 0)
 * still hold their bytes in data and are read from there. An in-memory database keeps bytes inline.
 */
import type { Database, Statement } from "bun:sqlite";
import { ChunkFiles, chunkDirFor } from "./chunk-files.ts";
import { chunkHasher } from "./chunk-hasher.ts";
import { sha256Hex } from "./content-hash.ts";
import { CorruptChunk } from "./store-errors.ts";

/** Every chunk but an asset's last is exactly this long, so byte offset → chunk index is a division. */
export const ASSET_CHUNK_BYTES = 1024 * 1024;

export type AssetInfo = {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  /** SHA-256 of the whole file, lowercase hex. */
  readonly sha256: string;
  readonly chunkCount: number;
  /** Wall-clock ms. */
  readonly created: number;
};

/** An asset and its chunks' hashes, in file order. */
export type AssetManifest = AssetInfo & { readonly chunks: readonly string[] };

type AssetRow = { id: string; name: string; size: number; sha256: string; chunk_count: number; created: number };

const toInfo = (row: AssetRow): AssetInfo => ({
  id: row.id,
  name: row.name,
  size: row.size,
  sha256: row.sha256,
  chunkCount: row.chunk_count,
  created: row.created,
});

/** How many chunks a file of `size` bytes has (0 for an empty file). */
export function chunkCountFor(size: number): number {
  return Math.ceil(size / ASSET_CHUNK_BYTES);
}

/** The exact length chunk `idx` of a `size`-byte file must have. */
export function chunkLengthAt(size: number, idx: number): number {
  return Math.min(ASSET_CHUNK_BYTES, size - idx * ASSET_CHUNK_BYTES);
}

export class AssetTables {
  private readonly db: Database;
  private readonly files: ChunkFiles | null;
  private readonly selectChunk: Statement;
  private readonly selectChunkExists: Statement;
  private readonly selectChunkSize: Statement;
  private readonly insertChunkRow: Statement;
  private readonly insertChunkIndexRow: Statement;
  private readonly selectAsset: Statement;
  private readonly selectAssetBySeq: Statement;
  private readonly selectAssetChunks: Statement;
  private readonly selectChunkHashAt: Statement;
  private readonly insertAsset: Statement;
  private readonly insertAssetChunk: Statement;

  constructor(db: Database) {
    this.db = db;
    const dir = chunkDirFor(db.filename);
    this.files = dir === null ? null : new ChunkFiles(dir);
    this.selectChunk = db.query("SELECT data, in_file FROM chunks WHERE hash = ?");
    this.selectChunkExists = db.query("SELECT 1 AS found FROM chunks WHERE hash = ?");
    this.selectChunkSize = db.query("SELECT size FROM chunks WHERE hash = ?");
    this.insertChunkRow = db.query("INSERT INTO chunks (hash, size, data, in_file) VALUES (?, ?, ?, 0)");
    this.insertChunkIndexRow = db.query("INSERT INTO chunks (hash, size, data, in_file) VALUES (?, ?, X'', 1)");
    this.selectAsset = db.query("SELECT * FROM assets WHERE id = ?");
    this.selectAssetBySeq = db.query("SELECT id FROM assets WHERE log_seq = ?");
    this.selectAssetChunks = db.query("SELECT hash FROM asset_chunks WHERE asset_id = ? ORDER BY idx");
    this.selectChunkHashAt = db.query("SELECT hash FROM asset_chunks WHERE asset_id = ? AND idx = ?");
    this.insertAsset = db.query("INSERT INTO assets (id, name, size, sha256, chunk_count, created, log_seq) VALUES (?, ?, ?, ?, ?, ?, ?)");
    this.insertAssetChunk = db.query("INSERT INTO asset_chunks (asset_id, idx, hash) VALUES (?, ?, ?)");
  }

  hasChunk(hash: string): boolean {
    return this.selectChunkExists.get(hash) !== null;
  }

  /** A stored chunk's length in bytes, or undefined when it is not stored. */
  chunkSize(hash: string): number | undefined {
    return (this.selectChunkSize.get(hash) as { size: number } | null)?.size;
  }

  /**
   * Stores a chunk unless it is already there (de-duplication). Returns whether bytes were written.
   * The file is durable before the index row is written, so a committed row always has its file;
   * if the file write fails (ENOSPC), it throws before the row and leaves no temp file.
   */
  insertChunk(hash: string, data: Uint8Array): boolean {
    if (this.hasChunk(hash)) return false;
    if (this.files) {
      this.files.write(hash, data);
      this.insertChunkIndexRow.run(hash, data.length);
    } else {
      this.insertChunkRow.run(hash, data.length, data);
    }
    return true;
  }

  /** Stores a small chunk's bytes in the database itself (no file), unless it is stored already. Inside a transaction. */
  insertInlineChunk(hash: string, data: Uint8Array): void {
    if (!this.hasChunk(hash)) this.insertChunkRow.run(hash, data.length, data);
  }

  /** Whether chunk bytes go to files (so uploads may group their flushes); false for an in-memory database. */
  get storesFiles(): boolean {
    return this.files !== null;
  }

  /**
   * Writes a chunk's file without making it durable (uploads group their flushes). Not indexed:
   * `indexSyncedChunks` does that once `syncChunkFiles` has made the file durable.
   */
  writeChunkFileUnsynced(hash: string, data: Uint8Array): void {
    const files = this.requireFiles();
    files.writeUnsynced(hash, data);
    // Start writing it out on the I/O threads now, so the group's own fsync (on the main thread,
    // before its rows) finds the data on disk already and returns quickly instead of stalling.
    files.syncBehind(hash);
  }

  /** `writeChunkFileUnsynced` on the runtime's I/O threads (the event loop carries heartbeats). */
  async writeChunkFileUnsyncedAsync(hash: string, data: Uint8Array): Promise<void> {
    const files = this.requireFiles();
    await files.writeUnsyncedAsync(hash, data);
    files.syncBehind(hash);
  }

  /** Makes files written by `writeChunkFileUnsynced` durable (each file, then each folder once). */
  syncChunkFiles(hashes: Iterable<string>): void {
    this.requireFiles().sync(hashes);
  }

  /** `syncChunkFiles` on the runtime's I/O threads: the main thread goes on with heartbeats and the Data Hub meanwhile. */
  syncChunkFilesAsync(hashes: Iterable<string>): Promise<void> {
    return this.requireFiles().syncAsync(hashes);
  }

  /** Removes unindexed chunk files (a group whose flush failed). */
  removeChunkFiles(hashes: Iterable<string>): void {
    const files = this.requireFiles();
    for (const hash of hashes) files.remove(hash);
  }

  /** Indexes a chunk whose file `syncChunkFiles` made durable, unless it is indexed already. Inside a transaction. */
  indexSyncedChunk(hash: string, size: number): void {
    if (!this.hasChunk(hash)) this.insertChunkIndexRow.run(hash, size);
  }

  private requireFiles(): ChunkFiles {
    if (!this.files) throw new Error("An in-memory database keeps its chunks inline, not in files.");
    return this.files;
  }

  /** A chunk's bytes, checked against its hash on every read; undefined if it is not stored. */
  readChunk(hash: string, where: string): Uint8Array | undefined {
    const row = this.selectChunk.get(hash) as { data: Uint8Array; in_file: number } | null;
    if (!row) return undefined;
    // An indexed chunk whose file is gone is damage, like bytes that no longer match.
    const data = row.in_file ? this.files?.read(hash) : row.data;
    if (data === undefined || sha256Hex(data) !== hash) throw new CorruptChunk(hash, where);
    return data;
  }

  /** `readChunk` with the file read on the runtime's I/O threads and its hash checked on a worker (chunk-hasher.ts), before the bytes are returned. */
  async readChunkAsync(hash: string, where: string): Promise<Uint8Array | undefined> {
    const row = this.selectChunk.get(hash) as { data: Uint8Array; in_file: number } | null;
    if (!row) return undefined;
    const data = row.in_file ? await this.files?.readAsync(hash) : row.data;
    if (data === undefined || (await chunkHasher.sha256Hex(data)) !== hash) throw new CorruptChunk(hash, where);
    return data;
  }

  /** The hashes in `hashes` that are not stored, each once, in first-seen order. */
  missingChunks(hashes: Iterable<string>): string[] {
    const missing = new Set<string>();
    for (const hash of hashes) if (!missing.has(hash) && !this.hasChunk(hash)) missing.add(hash);
    return [...missing];
  }

  asset(id: string): AssetInfo | undefined {
    const row = this.selectAsset.get(id) as AssetRow | null;
    return row ? toInfo(row) : undefined;
  }

  assetIdBySeq(seq: number): string | undefined {
    return (this.selectAssetBySeq.get(seq) as { id: string } | null)?.id;
  }

  manifest(id: string): AssetManifest | undefined {
    const info = this.asset(id);
    if (!info) return undefined;
    const chunks = (this.selectAssetChunks.all(id) as { hash: string }[]).map((r) => r.hash);
    return { ...info, chunks };
  }

  chunkHashAt(id: string, idx: number): string | undefined {
    return (this.selectChunkHashAt.get(id, idx) as { hash: string } | null)?.hash;
  }

  list(): AssetInfo[] {
    return (this.db.query("SELECT * FROM assets ORDER BY log_seq").all() as AssetRow[]).map(toInfo);
  }

  /** Writes a manifest; every chunk it names must already be stored (the foreign key refuses otherwise). */
  writeManifest(manifest: AssetManifest, logSeq: number): void {
    const m = manifest;
    this.insertAsset.run(m.id, m.name, m.size, m.sha256, m.chunkCount, m.created, logSeq);
    m.chunks.forEach((hash, idx) => this.insertAssetChunk.run(m.id, idx, hash));
  }

  /** Removes a manifest (its chunks stay until the reclaimer finds nothing names them). Whether it was there. */
  removeManifest(id: string): boolean {
    this.db.run("DELETE FROM asset_chunks WHERE asset_id = ?", [id]);
    return this.db.run("DELETE FROM assets WHERE id = ?", [id]).changes > 0;
  }

  /** Drops every manifest but keeps the chunks: they are content-addressed, so still valid and worth not fetching again. */
  clearManifests(): void {
    for (const table of ["asset_chunks", "assets", "upload_chunks", "uploads"]) this.db.run(`DELETE FROM ${table}`);
  }
}
