/** The Asset Hub cache (store/asset-store.ts): streamed uploads, resume, de-duplication, ranges, damage, full disk. */
import { describe, expect, spyOn, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { randomFillSync } from "node:crypto";
import fs, { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { AppError } from "../../../src/core/errors.ts";
import { ASSET_CHUNK_BYTES, CHUNK_FLUSH_GROUP, type AssetStore } from "../../../src/store/asset-store.ts";
import { chunkFilePath } from "../../../src/store/chunk-files.ts";
import { fileHashOfChunks, sha256Hex } from "../../../src/store/content-hash.ts";
import { databasePath, openDatabase } from "../../../src/store/database.ts";
import { createStores } from "../../../src/store/stores.ts";
import { STORE_NOW, storesPerTest } from "../../support/store-fixture.ts";

const MiB = ASSET_CHUNK_BYTES;
const stores = storesPerTest("understudy-assets-");
const { openStores, reopen } = stores;
const NOW = STORE_NOW;
const randomBytes = (size: number) => randomFillSync(new Uint8Array(size));
const chunkOf = (data: Uint8Array, idx: number) => data.subarray(idx * MiB, Math.min(data.length, (idx + 1) * MiB));
const concat = (pieces: Iterable<Uint8Array>) => Buffer.concat([...pieces]);
const count = (db: Database, table: string) => (db.query(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

async function upload(assets: AssetStore, name: string, data: Uint8Array) {
  const handle = assets.beginUpload(name, data.length);
  for (let idx = 0; idx < handle.chunkCount; idx++) assets.putChunk(handle.id, idx, chunkOf(data, idx));
  return (await assets.commit(handle.id, sha256Hex(data))).asset;
}
async function caught(run: () => unknown): Promise<AppError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error("expected an AppError");
}

describe("upload and read", () => {
  test("an upload in chunks becomes an asset, with a log entry, readable byte for byte", async () => {
    const { db, assets, log } = openStores();
    const data = randomBytes(2 * MiB + 12345);
    const handle = assets.beginUpload("intro.mov", data.length);
    expect(handle).toMatchObject({ name: "intro.mov", size: data.length, chunkCount: 3, chunkSize: MiB });
    for (const idx of [0, 1, 2]) expect(assets.putChunk(handle.id, idx, chunkOf(data, idx))).toEqual({ hash: sha256Hex(chunkOf(data, idx)), stored: true });
    // Invisible until committed.
    expect(assets.list()).toEqual([]);
    expect((await caught(() => assets.read(handle.id))).code).toBe("ASSET_NOT_FOUND");
    const { asset, seq } = await assets.commit(handle.id, sha256Hex(data));
    expect(asset).toEqual({ id: handle.id, name: "intro.mov", size: data.length, sha256: sha256Hex(data), chunkCount: 3, created: NOW });
    expect(seq).toBe(1);
    expect(log.lastApplied()).toBe(1);
    expect(db.query("SELECT kind, payload FROM replication_log").all()).toEqual([{ kind: "asset.manifest", payload: JSON.stringify({ assetId: handle.id }) }]);
    expect(assets.list()).toEqual([asset]);
    expect(assets.manifest(handle.id).chunks).toEqual([0, 1, 2].map((i) => sha256Hex(chunkOf(data, i))));
    expect(concat(assets.read(handle.id)).equals(data)).toBe(true);
    expect(assets.pendingUploads()).toEqual([]);
  });

  test("an empty file is an asset with no chunks", async () => {
    const { assets } = openStores();
    const asset = await upload(assets, "empty.txt", new Uint8Array(0));
    expect(asset.chunkCount).toBe(0);
    expect([...assets.read(asset.id)]).toEqual([]);
  });

  test("byte ranges read across chunk boundaries, one piece per chunk touched", async () => {
    const { assets } = openStores();
    const data = randomBytes(3 * MiB + 100);
    const { id } = await upload(assets, "clip.mxf", data);
    const ranges: [start: number, end: number, pieces: number][] = [
      [0, data.length, 4],
      [MiB - 10, MiB + 10, 2],
      [MiB - 10, 3 * MiB + 5, 4],
      [MiB, 2 * MiB, 1],
      [2 * MiB - 1, 2 * MiB + 1, 2],
      [data.length - 1, data.length, 1],
      [5, 5, 0],
      [data.length, data.length, 0],
    ];
    for (const [start, end, pieces] of ranges) {
      const read = [...assets.read(id, { start, end })];
      expect(read).toHaveLength(pieces);
      expect(concat(read).equals(data.subarray(start, end))).toBe(true);
    }
    for (const [start, end] of [[-1, 4], [4, 3], [0, data.length + 1], [0.5, 3]]) {
      const error = await caught(() => assets.read(id, { start: start!, end: end! }));
      expect(error.code).toBe("RANGE_NOT_SATISFIABLE");
      expect(error.status).toBe(416);
    }
  });
});

describe("chunks are checked and de-duplicated", () => {
  test("a chunk of the wrong size or index, or for an unknown upload, is refused", async () => {
    const { db, assets } = openStores();
    const handle = assets.beginUpload("a.bin", MiB + 10);
    const refusals: [() => unknown, string][] = [
      [() => assets.putChunk(handle.id, 0, new Uint8Array(MiB + 1)), "INVALID_CHUNK"],
      [() => assets.putChunk(handle.id, 0, new Uint8Array(10)), "INVALID_CHUNK"],
      [() => assets.putChunk(handle.id, 1, new Uint8Array(11)), "INVALID_CHUNK"],
      [() => assets.putChunk(handle.id, 2, new Uint8Array(10)), "INVALID_CHUNK"],
      [() => assets.putChunk(handle.id, -1, new Uint8Array(10)), "INVALID_CHUNK"],
      [() => assets.putChunk("no-such-upload", 0, new Uint8Array(10)), "UPLOAD_NOT_FOUND"],
      [() => assets.missingChunks("no-such-upload"), "UPLOAD_NOT_FOUND"],
    ];
    for (const [run, code] of refusals) expect((await caught(run)).code).toBe(code);
    expect(count(db, "chunks")).toBe(0);
    expect(count(db, "upload_chunks")).toBe(0);
  });

  test("identical chunks are stored once, within a file and across assets", async () => {
    const { db, assets } = openStores();
    const block = randomBytes(MiB);
    const data = concat([block, block, randomBytes(77)]);
    await upload(assets, "first.bin", data);
    expect(count(db, "chunks")).toBe(2);
    const second = assets.beginUpload("copy.bin", data.length);
    expect(assets.putChunk(second.id, 0, block).stored).toBe(false);
    expect(assets.putChunk(second.id, 1, block).stored).toBe(false);
    expect(assets.putChunk(second.id, 2, chunkOf(data, 2)).stored).toBe(false);
    await assets.commit(second.id, sha256Hex(data));
    expect(count(db, "chunks")).toBe(2);
    expect(assets.list().map((a) => a.name)).toEqual(["first.bin", "copy.bin"]);
  });

  test("a chunk changed on disk is detected on read; ranges that avoid it still read", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(2 * MiB);
    const { id } = await upload(assets, "damaged.bin", data);
    const hash = sha256Hex(chunkOf(data, 1));
    const damaged = new Uint8Array(chunkOf(data, 1));
    damaged[500] = damaged[500]! ^ 0xff;
    writeFileSync(chunkFilePath(db.filename, hash), damaged);
    expect(concat(assets.read(id, { start: 0, end: MiB })).equals(data.subarray(0, MiB))).toBe(true);
    const error = await caught(() => [...assets.read(id, { start: MiB - 1, end: MiB + 1 })]);
    expect(error.code).toBe("CORRUPT_CHUNK");
    expect(error.message).toContain(hash);
    expect(error.message).toContain("damaged.bin");
    expect((await caught(() => assets.chunk(hash))).code).toBe("CORRUPT_CHUNK");
    expect((await caught(() => assets.chunkAsync(hash))).code).toBe("CORRUPT_CHUNK");
    expect(Buffer.from(await assets.chunkAsync(sha256Hex(chunkOf(data, 0)))).equals(chunkOf(data, 0))).toBe(true);
  });

  test("chunks fetched by hash (the backup's lane) are checked against the hash", async () => {
    const { assets } = openStores();
    const bytes = randomBytes(1000);
    const hash = sha256Hex(bytes);
    expect(assets.hasChunk(hash)).toBe(false);
    expect(assets.missingChunkHashes([hash, hash])).toEqual([hash]);
    expect((await caught(() => assets.putChunkByHash(hash, randomBytes(1000)))).code).toBe("INVALID_CHUNK");
    expect((await caught(() => assets.putChunkByHash("abc", bytes))).code).toBe("INVALID_CHUNK");
    expect((await caught(() => assets.putChunkByHash(sha256Hex(new Uint8Array(MiB + 1)), new Uint8Array(MiB + 1)))).code).toBe("INVALID_CHUNK");
    expect(assets.putChunkByHash(hash, bytes)).toEqual({ stored: true });
    expect(assets.putChunkByHash(hash, bytes)).toEqual({ stored: false });
    expect(assets.hasChunk(hash)).toBe(true);
    expect(assets.missingChunkHashes([hash])).toEqual([]);
    expect(Buffer.from(assets.chunk(hash)).equals(bytes)).toBe(true);
    expect((await caught(() => assets.chunk(sha256Hex(randomBytes(5))))).code).toBe("CHUNK_NOT_FOUND");
    expect(Buffer.from(await assets.chunkAsync(hash)).equals(bytes)).toBe(true);
    expect((await caught(() => assets.chunkAsync(sha256Hex(randomBytes(5))))).code).toBe("CHUNK_NOT_FOUND");
  });
});

describe("commit", () => {
  test("a commit with chunks missing names them; with the wrong hash it is refused; neither writes an asset", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(3 * MiB);
    const handle = assets.beginUpload("partial.bin", data.length);
    assets.putChunk(handle.id, 1, chunkOf(data, 1));
    const incomplete = await caught(() => assets.commit(handle.id, sha256Hex(data)));
    expect(incomplete.code).toBe("UPLOAD_INCOMPLETE");
    expect(incomplete).toMatchObject({ missing: [0, 2] });
    assets.putChunk(handle.id, 0, chunkOf(data, 0));
    assets.putChunk(handle.id, 2, chunkOf(data, 2));
    const mismatch = await caught(() => assets.commit(handle.id, sha256Hex(randomBytes(8))));
    expect(mismatch.code).toBe("ASSET_HASH_MISMATCH");
    expect((await caught(() => assets.commit(handle.id, "not-a-hash"))).code).toBe("INVALID_INPUT");
    expect(count(db, "assets")).toBe(0);
    expect(count(db, "replication_log")).toBe(0);
    // The upload is still there, and commits once the hash is right.
    expect(assets.missingChunks(handle.id)).toEqual([]);
    expect((await assets.commit(handle.id, sha256Hex(data))).asset.size).toBe(data.length);
  });

  test("a commit with the uploader's chunk list is checked against the hashes taken as chunks arrived, without reading them back", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(2 * MiB + 7);
    const handle = assets.beginUpload("listed.bin", data.length);
    for (let idx = 0; idx < handle.chunkCount; idx++) assets.putChunk(handle.id, idx, chunkOf(data, idx));
    const listOf = (bytes: Uint8Array) => fileHashOfChunks([0, 1, 2].map((idx) => sha256Hex(chunkOf(bytes, idx))));
    // A list from other bytes (a chunk swapped or damaged on the way) is refused and writes nothing.
    const other = Uint8Array.from(data);
    other[MiB + 3]! ^= 1;
    expect((await caught(() => assets.commit(handle.id, sha256Hex(data), listOf(other)))).code).toBe("ASSET_HASH_MISMATCH");
    expect((await caught(() => assets.commit(handle.id, sha256Hex(data), "not-a-hash"))).code).toBe("INVALID_INPUT");
    expect(count(db, "assets")).toBe(0);
    const readFile = spyOn(fs, "readFileSync");
    try {
      const { asset } = await assets.commit(handle.id, sha256Hex(data), listOf(data));
      expect(readFile).not.toHaveBeenCalled();
      expect(asset.sha256).toBe(sha256Hex(data));
      expect(concat(assets.read(asset.id))).toEqual(Buffer.from(data));
    } finally {
      readFile.mockRestore();
    }
  });

  test("chunks sent out of order, or replaced, still give the right whole-file hash", async () => {
    const { assets } = openStores();
    const data = randomBytes(3 * MiB);
    const handle = assets.beginUpload("shuffled.bin", data.length);
    assets.putChunk(handle.id, 0, randomBytes(MiB)); // wrong bytes first, replaced below
    for (const idx of [2, 1, 0]) assets.putChunk(handle.id, idx, chunkOf(data, idx));
    const { asset } = await assets.commit(handle.id, sha256Hex(data));
    expect(concat(assets.read(asset.id)).equals(data)).toBe(true);
  });

  test("committing again (a retry after a lost answer) returns the same asset; abort forgets an upload", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(100);
    const handle = assets.beginUpload("retry.bin", data.length);
    assets.putChunk(handle.id, 0, data);
    const first = await assets.commit(handle.id, sha256Hex(data));
    expect(await assets.commit(handle.id, sha256Hex(data))).toEqual(first);
    expect(count(db, "replication_log")).toBe(1);
    const other = assets.beginUpload("abandoned.bin", 10);
    assets.abortUpload(other.id);
    expect((await caught(() => assets.missingChunks(other.id))).code).toBe("UPLOAD_NOT_FOUND");
  });

  test("a commit that fails mid-transaction leaves neither the manifest nor its log entry", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(MiB + 1);
    const handle = assets.beginUpload("atomic.bin", data.length);
    for (const idx of [0, 1]) assets.putChunk(handle.id, idx, chunkOf(data, idx));
    db.run("CREATE TEMP TRIGGER fail_manifest BEFORE INSERT ON asset_chunks WHEN NEW.idx = 1 BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    await expect(assets.commit(handle.id, sha256Hex(data))).rejects.toThrow("injected failure");
    expect(count(db, "assets")).toBe(0);
    expect(count(db, "asset_chunks")).toBe(0);
    expect(count(db, "replication_log")).toBe(0);
    db.run("DROP TRIGGER fail_manifest");
    expect((await assets.commit(handle.id, sha256Hex(data))).seq).toBe(1);
  });
});

describe("restarts and full disks", () => {
  test("an upload resumes after a restart: only the missing chunks are sent", async () => {
    const first = openStores();
    const data = randomBytes(4 * MiB - 3);
    const handle = first.assets.beginUpload("resumed.mov", data.length);
    first.assets.putChunk(handle.id, 0, chunkOf(data, 0));
    first.assets.putChunk(handle.id, 2, chunkOf(data, 2));
    // Asking what is missing makes what was received durable (so the answer holds after a crash).
    expect(first.assets.missingChunks(handle.id)).toEqual([1, 3]);
    const { db, assets } = reopen(first.db);
    expect(assets.pendingUploads()).toEqual([handle]);
    expect(assets.upload(handle.id)).toEqual(handle);
    const missing = assets.missingChunks(handle.id);
    expect(missing).toEqual([1, 3]);
    for (const idx of missing) assets.putChunk(handle.id, idx, chunkOf(data, idx));
    const { asset } = await assets.commit(handle.id, sha256Hex(data));
    expect(concat(assets.read(asset.id)).equals(data)).toBe(true);
    expect(count(db, "chunks")).toBe(4);
  });

  test("chunks are flushed in groups: a crash loses only the unflushed group, which resume asks for again", async () => {
    expect(CHUNK_FLUSH_GROUP).toBe(32);
    const first = openStores();
    const data = randomBytes(40 * MiB - 5);
    const handle = first.assets.beginUpload("grouped.mov", data.length);
    const syncs = spyOn(fs, "fdatasyncSync");
    for (let idx = 0; idx < 40; idx++) first.assets.putChunk(handle.id, idx, chunkOf(data, idx));
    // The first group is made durable on the I/O threads, never on the main thread; then its rows are written.
    expect(syncs).not.toHaveBeenCalled();
    syncs.mockRestore();
    await first.assets.groupsFlushed(handle.id);
    expect(count(first.db, "chunks")).toBe(32);
    expect(count(first.db, "upload_chunks")).toBe(32);
    // Crash: the database is reopened without a commit (and without asking what is missing).
    const { db, assets } = reopen(first.db);
    const missing = assets.missingChunks(handle.id);
    expect(missing).toEqual([32, 33, 34, 35, 36, 37, 38, 39]);
    // Every indexed chunk's file is there, byte for byte.
    for (let idx = 0; idx < 32; idx++) expect(Buffer.from(assets.chunk(sha256Hex(chunkOf(data, idx)))).equals(chunkOf(data, idx))).toBe(true);
    for (const idx of missing) expect(assets.putChunk(handle.id, idx, chunkOf(data, idx)).stored).toBe(true);
    const { asset } = await assets.commit(handle.id, sha256Hex(data));
    expect(asset).toMatchObject({ size: data.length, chunkCount: 40, sha256: sha256Hex(data) });
    expect(concat(assets.read(asset.id)).equals(data)).toBe(true);
    expect(count(db, "chunks")).toBe(40);
    expect(assets.pendingUploads()).toEqual([]);
  });

  test("a chunk awaiting its flush is not written twice, and commit flushes it", async () => {
    const { db, assets } = openStores();
    const block = randomBytes(MiB);
    const data = concat([block, block]);
    const handle = assets.beginUpload("twice.bin", data.length);
    expect(assets.putChunk(handle.id, 0, block).stored).toBe(true);
    expect(assets.putChunk(handle.id, 1, block).stored).toBe(false);
    expect(count(db, "chunks")).toBe(0);
    const { asset } = await assets.commit(handle.id, sha256Hex(data));
    expect(count(db, "chunks")).toBe(1);
    expect(concat(assets.read(asset.id)).equals(data)).toBe(true);
  });

  test("chunks fetched by hash (the backup) are flushed as a group before the manifest naming them is applied", async () => {
    const main = openStores();
    const data = randomBytes(3 * MiB + 9);
    const asset = await upload(main.assets, "replicated.mov", data);
    const backupDir = join(stores.dataDir(), "backup");
    fs.mkdirSync(backupDir);
    const backupDb = openDatabase(databasePath(backupDir));
    stores.track(backupDb);
    const backup = createStores(backupDb, { now: () => NOW });
    const entries = main.log.entriesSince(0);
    const missing = backup.log.missingChunksFor(entries);
    expect(missing).toHaveLength(4);
    for (const hash of missing) expect(backup.assets.putChunkByHash(hash, main.assets.chunk(hash))).toEqual({ stored: true });
    // Written, not yet durable: not indexed, and not written twice if offered again.
    expect(count(backupDb, "chunks")).toBe(0);
    expect(backup.assets.putChunkByHash(missing[0]!, main.assets.chunk(missing[0]!))).toEqual({ stored: false });
    const syncs = spyOn(fs, "fdatasyncSync");
    expect(backup.log.applyEntry(entries[0]!)).toEqual({ applied: true, seq: 1 });
    expect(syncs).toHaveBeenCalledTimes(4);
    syncs.mockRestore();
    expect(count(backupDb, "chunks")).toBe(4);
    expect(concat(backup.assets.read(asset.id)).equals(data)).toBe(true);
  });

  test("a group that cannot be made durable (ENOSPC at fsync) is forgotten and its files removed; the next chunk says DISK_FULL, resume sends the group again", async () => {
    const { db, assets } = openStores();
    const data = randomBytes((CHUNK_FLUSH_GROUP + 1) * MiB);
    const handle = assets.beginUpload("late-full.bin", data.length);
    const open = spyOn(fs.promises, "open").mockImplementation((async () => {
      throw Object.assign(new Error("ENOSPC: no space left on device, fsync"), { code: "ENOSPC" });
    }) as unknown as typeof fs.promises.open);
    for (let idx = 0; idx < CHUNK_FLUSH_GROUP; idx++) assets.putChunk(handle.id, idx, chunkOf(data, idx));
    await assets.groupsFlushed(handle.id);
    open.mockRestore();
    expect(count(db, "chunks")).toBe(0);
    const hash0 = sha256Hex(chunkOf(data, 0));
    expect(fs.existsSync(chunkFilePath(db.filename, hash0))).toBe(false);
    expect((await caught(() => assets.putChunk(handle.id, CHUNK_FLUSH_GROUP, chunkOf(data, CHUNK_FLUSH_GROUP)))).code).toBe("DISK_FULL");
    expect(assets.missingChunks(handle.id)).toEqual([...Array(CHUNK_FLUSH_GROUP + 1).keys()]);
    for (let idx = 0; idx <= CHUNK_FLUSH_GROUP; idx++) assets.putChunk(handle.id, idx, chunkOf(data, idx));
    const { asset } = await assets.commit(handle.id, sha256Hex(data));
    expect(concat(assets.read(asset.id)).equals(data)).toBe(true);
  });

  test("a full disk refuses a chunk with DISK_FULL and writes none of it; the upload goes on once there is space", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(2 * MiB);
    const handle = assets.beginUpload("big.bin", data.length);
    assets.putChunk(handle.id, 0, chunkOf(data, 0));
    // Chunk bytes go to a file: the disk fills up partway through writing it.
    const realWrite = fs.writeSync;
    const full = spyOn(fs, "writeSync").mockImplementation(((fd: number, bytes: Uint8Array, offset: number, length: number) => {
      realWrite(fd, bytes, offset, Math.min(length, 4096));
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    }) as unknown as typeof fs.writeSync);
    const error = await caught(() => assets.putChunk(handle.id, 1, chunkOf(data, 1)));
    full.mockRestore();
    expect(error.code).toBe("DISK_FULL");
    expect(error.message).toContain(`chunk 1 of upload ${handle.id}`);
    expect(assets.hasChunk(sha256Hex(chunkOf(data, 1)))).toBe(false);
    expect(assets.missingChunks(handle.id)).toEqual([1]);
    const hash1 = sha256Hex(chunkOf(data, 1));
    const shard = dirname(chunkFilePath(db.filename, hash1));
    expect(fs.readdirSync(shard).filter((f) => f.includes(hash1))).toEqual([]);
    assets.putChunk(handle.id, 1, chunkOf(data, 1));
    expect((await assets.commit(handle.id, sha256Hex(data))).asset.chunkCount).toBe(2);
  });

  test("putChunkAsync writes chunk files on the I/O threads, never with writeSync, and a chunk is indexed only once durable", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(2 * MiB + 5);
    const handle = assets.beginUpload("async.bin", data.length);
    const syncWrites = spyOn(fs, "writeSync");
    const puts = await Promise.all([0, 1, 2].map((idx) => assets.putChunkAsync(handle.id, idx, chunkOf(data, idx))));
    expect(syncWrites).not.toHaveBeenCalled();
    syncWrites.mockRestore();
    expect(puts).toEqual([0, 1, 2].map((idx) => ({ hash: sha256Hex(chunkOf(data, idx)), stored: true })));
    expect(fs.existsSync(chunkFilePath(db.filename, puts[0]!.hash))).toBe(true);
    expect(count(db, "chunks")).toBe(0); // written, not yet durable: no row names it
    const { asset } = await assets.commit(handle.id, sha256Hex(data));
    expect(count(db, "chunks")).toBe(3);
    expect(concat(assets.read(asset.id)).equals(data)).toBe(true);
  });

  test("putChunkAsync: one chunk put twice at once is written once, both puts waiting for that write", async () => {
    const { assets } = openStores();
    const block = randomBytes(MiB);
    const data = concat([block, block]);
    const handle = assets.beginUpload("twice.bin", data.length);
    const writes = spyOn(fs.promises, "writeFile");
    const puts = await Promise.all([assets.putChunkAsync(handle.id, 0, block), assets.putChunkAsync(handle.id, 1, block)]);
    expect(writes).toHaveBeenCalledTimes(1);
    writes.mockRestore();
    expect(puts.map((p) => p.stored).sort()).toEqual([false, true]);
    expect((await assets.commit(handle.id, sha256Hex(data))).asset.chunkCount).toBe(2);
  });

  test("putChunkAsync on a full disk refuses with DISK_FULL and leaves no file; the same chunk is taken once there is space", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(MiB);
    const handle = assets.beginUpload("full-async.bin", data.length);
    const realWriteFile = fs.promises.writeFile;
    const full = spyOn(fs.promises, "writeFile").mockImplementation((async (path: string, bytes: Uint8Array) => {
      await realWriteFile(path, bytes.subarray(0, 4096));
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    }) as unknown as typeof fs.promises.writeFile);
    const error = await caught(() => assets.putChunkAsync(handle.id, 0, data));
    full.mockRestore();
    expect(error.code).toBe("DISK_FULL");
    expect(error.message).toContain(`chunk 0 of upload ${handle.id}`);
    expect(fs.existsSync(chunkFilePath(db.filename, sha256Hex(data)))).toBe(false);
    expect(await assets.putChunkAsync(handle.id, 0, data)).toEqual({ hash: sha256Hex(data), stored: true });
    expect((await assets.commit(handle.id, sha256Hex(data))).asset.size).toBe(MiB);
  });

  test("putChunkAsync for an upload aborted while its file was written keeps no file and says UPLOAD_NOT_FOUND", async () => {
    const { db, assets } = openStores();
    const data = randomBytes(MiB);
    const handle = assets.beginUpload("aborted.bin", data.length);
    // The write waits at a gate, so the abort lands while the file is being written.
    const realWriteFile = fs.promises.writeFile;
    const gate = Promise.withResolvers<void>();
    const started = Promise.withResolvers<void>();
    const held = spyOn(fs.promises, "writeFile").mockImplementation((async (path: string, bytes: Uint8Array) => {
      started.resolve();
      await gate.promise;
      return realWriteFile(path, bytes);
    }) as unknown as typeof fs.promises.writeFile);
    const put = assets.putChunkAsync(handle.id, 0, data);
    await started.promise;
    assets.abortUpload(handle.id);
    gate.resolve();
    const error = await caught(() => put);
    held.mockRestore();
    expect(error.code).toBe("UPLOAD_NOT_FOUND");
    expect(fs.existsSync(chunkFilePath(db.filename, sha256Hex(data)))).toBe(false);
  });
});
