/** Space is given back (store/chunk-reclaimer.ts): unnamed chunks go after the grace period, named ones never. */
import { expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import { existsSync } from "node:fs";
import { ASSET_CHUNK_BYTES } from "../../../src/store/asset-store.ts";
import { chunkFilePath } from "../../../src/store/chunk-files.ts";
import { ChunkReclaimer, reclaimNow } from "../../../src/store/chunk-reclaimer.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";
import { pushFiles, uploadAsset, useStoreMachines } from "./store-machines.ts";

const { machine } = useStoreMachines("understudy-reclaim-");
const GRACE = 60_000;
const chunkOf = (data: Uint8Array, idx: number) => data.subarray(idx * ASSET_CHUNK_BYTES, (idx + 1) * ASSET_CHUNK_BYTES);

test("an aborted upload's chunks are gone after the grace period; chunks an asset or a show file names stay", async () => {
  const m = machine("main");
  const kept = randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES + 10));
  await uploadAsset(m, "kept.mov", kept);
  pushFiles(m, { "scene.json": "named by the show file" });
  const aborted = randomFillSync(new Uint8Array(3 * ASSET_CHUNK_BYTES));
  // The aborted upload shares its first chunk with the kept asset.
  aborted.set(chunkOf(kept, 0), 0);
  const handle = m.assets.beginUpload("aborted.mov", aborted.length);
  for (let idx = 0; idx < 3; idx++) m.assets.putChunk(handle.id, idx, chunkOf(aborted, idx));
  expect(m.assets.missingChunks(handle.id)).toEqual([]); // flushed: rows and files exist
  m.assets.abortUpload(handle.id);

  const reclaimer = new ChunkReclaimer(m.db, GRACE);
  const gone = [1, 2].map((idx) => sha256Hex(chunkOf(aborted, idx)));
  expect(reclaimer.sweep(1_000)).toEqual({ uploadsDropped: 0, chunksRemoved: 0, bytesFreed: 0 });
  expect(reclaimer.sweep(1_000 + GRACE - 1).chunksRemoved).toBe(0);
  expect(gone.every((hash) => existsSync(chunkFilePath(m.db.filename, hash)))).toBe(true);
  expect(reclaimer.sweep(1_000 + GRACE)).toEqual({ uploadsDropped: 0, chunksRemoved: 2, bytesFreed: 2 * ASSET_CHUNK_BYTES });
  for (const hash of gone) {
    expect(m.assets.hasChunk(hash)).toBe(false);
    expect(existsSync(chunkFilePath(m.db.filename, hash))).toBe(false);
  }
  expect(Buffer.concat([...m.assets.list().flatMap((a) => [...m.assets.read(a.id)])]).equals(Buffer.from(kept))).toBe(true);
  expect(new TextDecoder().decode(m.showFile.read("scene.json"))).toBe("named by the show file");
  expect(reclaimer.sweep(1_000 + 3 * GRACE).chunksRemoved).toBe(0);
});

test("an upload that stops is dropped after the grace period, and its chunks after another; one still moving is kept", () => {
  const m = machine("main");
  const data = randomFillSync(new Uint8Array(4 * ASSET_CHUNK_BYTES));
  const stalled = m.assets.beginUpload("stalled.mov", data.length);
  const moving = m.assets.beginUpload("moving.mov", data.length);
  m.assets.putChunk(stalled.id, 0, chunkOf(data, 0));
  m.assets.missingChunks(stalled.id);
  const reclaimer = new ChunkReclaimer(m.db, GRACE);
  const sweeps = [];
  for (let idx = 0; idx < 4; idx++) {
    m.assets.putChunk(moving.id, idx, chunkOf(data, idx).map((b) => b ^ 0xff));
    m.assets.missingChunks(moving.id);
    sweeps.push(reclaimer.sweep(idx * GRACE));
  }
  // Stalled from 0: dropped at GRACE; its chunk unnamed from then, removed at 2 × GRACE.
  expect(sweeps.map((s) => [s.uploadsDropped, s.chunksRemoved])).toEqual([[0, 0], [1, 0], [0, 1], [0, 0]]);
  expect(m.assets.pendingUploads().map((u) => u.name)).toEqual(["moving.mov"]);
  expect(m.assets.hasChunk(sha256Hex(chunkOf(data, 0)))).toBe(false);
});

test("reclaimNow gives back a failed push's chunks at once on the backup; a chunk a later push or an asset names is kept", async () => {
  const m = machine("backup");
  const batch = m.chunkIntake.batch();
  const pushed = [0, 1, 2].map(() => randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES)));
  for (const bytes of pushed) await batch.put(bytes);
  await batch.commit();
  const named = randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES + 10));
  await uploadAsset(m, "named.mov", named);
  const hashes = [...pushed.map((b) => sha256Hex(b)), sha256Hex(chunkOf(named, 0)), "f".repeat(64)];
  expect(reclaimNow(m.db, hashes)).toEqual({ chunksRemoved: 3, bytesFreed: 3 * ASSET_CHUNK_BYTES });
  for (const bytes of pushed) expect(existsSync(chunkFilePath(m.db.filename, sha256Hex(bytes)))).toBe(false);
  expect(m.assets.hasChunk(sha256Hex(chunkOf(named, 0)))).toBe(true);
  // Twice: nothing more to do.
  expect(reclaimNow(m.db, hashes)).toEqual({ chunksRemoved: 0, bytesFreed: 0 });
});

test("a batch the main gave back is let go before it is indexed; what another batch holds stays", async () => {
  const m = machine("backup");
  const [first, second] = [m.chunkIntake.batch(), m.chunkIntake.batch()];
  const shared = randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES));
  const own = randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES));
  await first.put(shared);
  await first.put(own);
  await second.put(shared);
  expect(first.discard().sort()).toEqual([sha256Hex(own)]);
  expect(second.forget([sha256Hex(shared), sha256Hex(own)])).toEqual([sha256Hex(shared)]);
  await second.commit();
  expect(m.assets.hasChunk(sha256Hex(shared))).toBe(false);
});
