/**
 * Asset chunk bytes as content-addressed files: `<dataDir>/chunks/ab/abcdef…` (SHA-256, lowercase hex).
 * The database keeps only the index (table chunks: hash, size), so manifests, `hasChunk` and
 * `missingChunks` stay transactional, while the 1 MiB payloads skip SQLite's WAL (written once,
 * not twice, and no megabyte-sized commit).
 *
 * Ordering is what makes it safe: a chunk's file is written to a temp file in its folder, fsync'd,
 * renamed into place and the folder fsync'd BEFORE its index row commits. So a committed row always
 * names a durable file; a crash in between leaves at most an unindexed file, which the next write of
 * that chunk simply replaces. A full disk (ENOSPC) removes the temp file and surfaces as DiskFull.
 * Uploads group those flushes (`writeUnsynced`, then `sync` for a whole group, then one transaction
 * for the group's rows): the order file-durable-before-row holds for every chunk all the same.
 * Every read checks the bytes against the hash (CorruptChunk otherwise, as for chunks in the database).
 */
// Called through the module object (fs.writeSync), so a test can make a write fail with ENOSPC.
import fs from "node:fs";
import { dirname, join } from "node:path";

export const CHUNK_DIR = "chunks";
/** Files fsync'd at once by `syncAsync`: enough to keep the disk's queue busy. */
const SYNC_PARALLEL = 16;

/** The chunk folder beside a database file; null for an in-memory database (its chunks stay in the database). */
export function chunkDirFor(databaseFile: string): string | null {
  if (databaseFile === "" || databaseFile === ":memory:" || databaseFile.startsWith("file::memory:")) return null;
  return join(dirname(databaseFile), CHUNK_DIR);
}

export class ChunkFiles {
  readonly dir: string;
  /** Shard folders known to exist (and to have been made durable in the chunk folder). */
  private readonly madeDirs = new Set<string>();

  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(hash: string): string {
    return join(this.dir, hash.slice(0, 2), hash);
  }

  /**
   * Writes the chunk durably (temp file, fsync, rename, fsync the folder). Overwrites a file left
   * by an earlier crash (content-addressed, so the same bytes). On any error the temp file is gone.
   */
  write(hash: string, data: Uint8Array): void {
    this.marked(() => this.writeDurable(hash, data));
  }

  /**
   * Writes the chunk straight to its name WITHOUT making it durable: `sync` must run on it before
   * its index row commits. No temp file and rename: the file is content-addressed, checked on every
   * read, and indexed only once durable. On any error the file is gone.
   */
  writeUnsynced(hash: string, data: Uint8Array): void {
    this.marked(() => this.writeUnsyncedNow(hash, data));
  }

  private writeUnsyncedNow(hash: string, data: Uint8Array): void {
    const path = this.pathOf(hash);
    this.ensureShard(dirname(path));
    const fd = fs.openSync(path, "w", 0o644);
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off);
    } catch (error) {
      fs.closeSync(fd);
      fs.rmSync(path, { force: true });
      throw error;
    }
    fs.closeSync(fd);
  }

  /** Makes chunk files written by `writeUnsynced` durable: each file, then each of their folders once. */
  sync(hashes: Iterable<string>): void {
    this.marked(() => this.syncNow(hashes));
  }

  private syncNow(hashes: Iterable<string>): void {
    const shards = new Set<string>();
    for (const hash of hashes) {
      const path = this.pathOf(hash);
      const fd = fs.openSync(path, "r");
      try {
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      shards.add(dirname(path));
    }
    for (const shard of shards) syncDirectory(shard);
  }

  /**
   * `writeUnsynced` on the runtime's I/O threads: a pushed show file of gigabytes is written
   * without holding up heartbeats or the Data Hub on the main thread. On any error the temp file is gone.
   */
  writeUnsyncedAsync(hash: string, data: Uint8Array): Promise<void> {
    return this.writeUnsyncedLater(hash, data).catch((error: unknown) => {
      throw this.mark(error);
    });
  }

  private async writeUnsyncedLater(hash: string, data: Uint8Array): Promise<void> {
    const path = this.pathOf(hash);
    this.ensureShard(dirname(path));
    // Straight to its name, no temp file and rename: the file is content-addressed, checked on
    // every read, and indexed only once `syncAsync` made it durable; the caller writes a hash at
    // most once at a time. A file cut short by a failure is removed.
    try {
      await fs.promises.writeFile(path, data, { mode: 0o644 });
    } catch (error) {
      fs.rmSync(path, { force: true });
      throw error;
    }
  }

  /** `sync` on the runtime's I/O threads, a few files at a time. */
  syncAsync(hashes: Iterable<string>): Promise<void> {
    return this.syncLater(hashes).catch((error: unknown) => {
      throw this.mark(error);
    });
  }

  private async syncLater(hashes: Iterable<string>): Promise<void> {
    const shards = new Set<string>();
    const paths = [...hashes].map((hash) => this.pathOf(hash));
    for (let i = 0; i < paths.length; i += SYNC_PARALLEL) {
      await Promise.all(
        paths.slice(i, i + SYNC_PARALLEL).map(async (path) => {
          const handle = await fs.promises.open(path, "r");
          try {
            await handle.datasync();
          } finally {
            await handle.close();
          }
          shards.add(dirname(path));
        }),
      );
    }
    await Promise.all(
      [...shards].map(async (shard) => {
        if (process.platform === "win32") return;
        const handle = await fs.promises.open(shard, "r");
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }),
    );
  }

  /**
   * An early fsync on the I/O threads of a file written by `writeUnsynced`: it only shortens the
   * `sync` that must still come before the row (which stays the one that counts); errors are
   * left to that `sync` to report.
   */
  syncBehind(hash: string): void {
    void fs.promises.open(this.pathOf(hash), "r").then(
      (handle) => handle.datasync().finally(() => handle.close()),
      () => {},
    ).catch(() => {});
  }

  /** Removes a chunk file that was never indexed (a group whose flush failed). */
  remove(hash: string): void {
    fs.rmSync(this.pathOf(hash), { force: true });
  }

  /** Runs `write`; an error it throws names this folder, so a full disk names the chunk folder, not the database (store-errors.ts DiskFull). */
  private marked<T>(write: () => T): T {
    try {
      return write();
    } catch (error) {
      throw this.mark(error);
    }
  }

  private mark(error: unknown): unknown {
    if (error !== null && typeof error === "object" && !("chunkFolder" in error)) Object.assign(error, { chunkFolder: this.dir });
    return error;
  }

  private writeDurable(hash: string, data: Uint8Array): void {
    const path = this.pathOf(hash);
    const shard = dirname(path);
    this.ensureShard(shard);
    const temp = join(shard, `.${hash}.${process.pid}.tmp`);
    const fd = fs.openSync(temp, "w", 0o644);
    try {
      for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fdatasyncSync(fd);
    } catch (error) {
      fs.closeSync(fd);
      fs.rmSync(temp, { force: true });
      throw error;
    }
    fs.closeSync(fd);
    try {
      fs.renameSync(temp, path);
      syncDirectory(shard);
    } catch (error) {
      fs.rmSync(temp, { force: true });
      throw error;
    }
  }

  /** The file's bytes, or undefined if there is no file. Not checked: the caller checks the hash. */
  read(hash: string): Uint8Array | undefined {
    try {
      return fs.readFileSync(this.pathOf(hash));
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      throw error;
    }
  }

  /** `read` on the runtime's I/O threads: a chunk not in the page cache does not hold up heartbeats while the disk seeks. */
  async readAsync(hash: string): Promise<Uint8Array | undefined> {
    try {
      return await fs.promises.readFile(this.pathOf(hash));
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return undefined;
      throw error;
    }
  }

  /**
   * Makes every shard folder (00 to ff) the first time any is needed, then makes the chunk folder
   * and its parent durable once: not an fsync of two folders per new shard while chunks stream in.
   */
  private ensureShard(shard: string): void {
    if (this.madeDirs.has(shard)) return;
    for (let i = 0; i < 256; i++) {
      const dir = join(this.dir, i.toString(16).padStart(2, "0"));
      fs.mkdirSync(dir, { recursive: true });
      this.madeDirs.add(dir);
    }
    // The shards' entries (and the chunk folder's) must be durable before a chunk in them is indexed.
    syncDirectory(this.dir);
    syncDirectory(dirname(this.dir));
  }

}

function syncDirectory(dir: string): void {
  // Windows cannot open a folder for fsync; its rename is durable enough there.
  if (process.platform === "win32") return;
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Where the chunk `hash` of the database at `databaseFile` is stored (for tools and tests). */
export function chunkFilePath(databaseFile: string, hash: string): string {
  const dir = chunkDirFor(databaseFile);
  if (dir === null) throw new Error("An in-memory database keeps its chunks inline, not in files.");
  return new ChunkFiles(dir).pathOf(hash);
}
