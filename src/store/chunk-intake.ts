/**
 * Chunks arriving for a show-file push. Each is hashed once as it arrives (on a worker thread),
 * written to its content-addressed file on the runtime's I/O threads (never a stall of the main
 * thread, which also carries heartbeats and the Data Hub), and made durable and indexed together when the push
 * commits: fsync every file, then one transaction for their rows (a row always names a durable
 * file, as in chunk-files.ts). A batch that never commits (the pusher went away, a disk filled)
 * is discarded: its files are removed at once, so a failed push leaves no space taken.
 */
import type { Database } from "bun:sqlite";
import { InvalidInput } from "../core/errors.ts";
import { ASSET_CHUNK_BYTES, AssetTables } from "./asset-tables.ts";
import { ChunkFiles, chunkDirFor } from "./chunk-files.ts";
import { chunkHasher } from "./chunk-hasher.ts";
import { SHA256_HEX } from "./content-hash.ts";
import { DiskFull } from "./store-errors.ts";
import { isDiskFull, writeTransaction } from "./write-transaction.ts";

/**
 * Chunks this small (most show files: cues, scenes, settings) go into the database with the push's
 * own transaction: one fsync for the whole push instead of a file, its fsync and its folder's each.
 */
export const INLINE_CHUNK_BYTES = 64 * 1024;

/** A chunk written (or kept, when small) but not yet indexed: its size, its bytes when it goes into the database, and how many batches wait for it. */
type Unindexed = { size: number; bytes: Uint8Array | null; holders: number; written: Promise<void> };

export class ChunkIntake {
  private readonly tables: AssetTables;
  private readonly files: ChunkFiles | null;
  private readonly unindexed = new Map<string, Unindexed>();

  constructor(private readonly db: Database) {
    this.tables = new AssetTables(db);
    const dir = chunkDirFor(db.filename);
    this.files = dir === null ? null : new ChunkFiles(dir);
  }

  /** A new batch: the chunks of one push connection. */
  batch(): ChunkBatch {
    return new ChunkBatch(this);
  }

  /** Whether the chunk is durably stored and indexed. */
  indexed(hash: string): boolean {
    return this.tables.hasChunk(hash);
  }

  /**
   * @internal ChunkBatch's write. `stored`: bytes were written (not when stored or on their way
   * already); `held`: the caller now holds an unindexed file and must commit or release it.
   */
  async accept(hash: string, bytes: Uint8Array): Promise<{ stored: boolean; held: boolean }> {
    const waiting = this.unindexed.get(hash);
    if (waiting) {
      waiting.holders++;
      await waiting.written;
      return { stored: false, held: true };
    }
    if (this.tables.hasChunk(hash)) return { stored: false, held: false };
    const inline = !this.files || bytes.length <= INLINE_CHUNK_BYTES;
    const entry: Unindexed = { size: bytes.length, bytes: inline ? bytes : null, holders: 1, written: Promise.resolve() };
    // Its fsync starts at once, behind the write, so the push's own commit finds little left to flush.
    if (!inline) entry.written = this.files!.writeUnsyncedAsync(hash, bytes).then(() => this.files!.syncBehind(hash));
    this.unindexed.set(hash, entry);
    try {
      await entry.written;
    } catch (error) {
      this.unindexed.delete(hash);
      if (isDiskFull(error)) throw new DiskFull("the pushed files", this.db.filename, error);
      throw error;
    }
    return { stored: true, held: true };
  }

  /** @internal Makes those of `hashes` still unindexed durable, then indexes them in one transaction. */
  async commit(hashes: readonly string[]): Promise<void> {
    const toIndex = hashes.filter((hash) => this.unindexed.has(hash));
    if (toIndex.length === 0) return;
    const inFiles = toIndex.filter((hash) => this.unindexed.get(hash)?.bytes === null);
    if (this.files && inFiles.length > 0) {
      try {
        await this.files.syncAsync(inFiles);
      } catch (error) {
        if (isDiskFull(error)) throw new DiskFull("the pushed files", this.db.filename, error);
        throw error;
      }
    }
    writeTransaction(this.db, `${toIndex.length} pushed chunks`, () => {
      for (const hash of toIndex) {
        const entry = this.unindexed.get(hash);
        if (!entry) continue;
        if (entry.bytes) this.tables.insertInlineChunk(hash, entry.bytes);
        else this.tables.indexSyncedChunk(hash, entry.size);
      }
    });
    for (const hash of toIndex) this.unindexed.delete(hash);
  }

  /** @internal A batch lets go of `hashes`; a file no batch waits for and never indexed is removed. Returns those given up entirely. */
  release(hashes: Iterable<string>): string[] {
    const dropped: string[] = [];
    for (const hash of hashes) {
      const entry = this.unindexed.get(hash);
      if (!entry || --entry.holders > 0) continue;
      this.unindexed.delete(hash);
      if (this.tables.hasChunk(hash)) continue;
      dropped.push(hash);
      if (this.files && entry.bytes === null) void entry.written.then(() => this.files!.remove(hash), () => {});
    }
    return dropped;
  }
}

/** The chunks one pusher sent: `put` each, then `commit` before the push, or `discard`. */
export class ChunkBatch {
  private readonly held = new Set<string>();
  /** Hashes whose `put` is under way (not yet held): not missing, and not written twice. */
  private readonly arriving = new Set<string>();

  constructor(private readonly intake: ChunkIntake) {}

  /**
   * Hashes and stores one chunk (at most 1 MiB); `stored` is false when it was here already.
   * `trustedHash`: the chunk's hash as an authenticated server sent it (the backup's lane), taken
   * without hashing again; every later read of the chunk still checks it.
   */
  async put(bytes: Uint8Array, trustedHash?: string): Promise<{ hash: string; stored: boolean }> {
    if (bytes.length === 0 || bytes.length > ASSET_CHUNK_BYTES) throw new InvalidInput(`A chunk holds 1 to ${ASSET_CHUNK_BYTES} bytes, not ${bytes.length}.`, "chunk");
    if (trustedHash !== undefined && !SHA256_HEX.test(trustedHash)) throw new InvalidInput(`${JSON.stringify(trustedHash)} is not a SHA-256 in lowercase hex.`, "hash");
    // Hashed off the main thread (chunk-hasher.ts), and still before the chunk is stored or acknowledged.
    const hash = trustedHash ?? (await chunkHasher.sha256Hex(bytes));
    if (this.held.has(hash) || this.arriving.has(hash)) return { hash, stored: false };
    this.arriving.add(hash);
    try {
      const { stored, held } = await this.intake.accept(hash, bytes);
      if (held) this.held.add(hash);
      return { hash, stored };
    } finally {
      this.arriving.delete(hash);
    }
  }

  /** The hashes in `hashes` that are neither stored nor sent in this batch, each once: the pusher sends these. */
  missing(hashes: readonly string[]): string[] {
    return [...new Set(hashes)].filter((hash) => !this.held.has(hash) && !this.arriving.has(hash) && !this.intake.indexed(hash));
  }

  /** Makes every chunk of this batch durable and indexed; call before the push that names them. */
  async commit(): Promise<void> {
    const committing = [...this.held];
    await this.intake.commit(committing);
    // Indexed now: nothing left to release. Chunks that arrived meanwhile stay held for their own push.
    for (const hash of committing) this.held.delete(hash);
  }

  /**
   * Lets go of this batch's chunks: those never indexed are removed (a push that failed or never
   * came). Returns the hashes given up entirely (no other batch holds them), for the backup to drop too.
   */
  discard(): string[] {
    const dropped = this.intake.release(this.held);
    this.held.clear();
    return dropped;
  }

  /** Lets go of `hashes` if this batch holds them unindexed (the main gave them back); returns those it held. */
  forget(hashes: readonly string[]): string[] {
    const mine = hashes.filter((hash) => this.held.has(hash));
    for (const hash of mine) this.held.delete(hash);
    this.intake.release(mine);
    return mine;
  }
}
