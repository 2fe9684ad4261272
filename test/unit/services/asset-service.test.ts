/** The Asset Hub over the network: real secure sockets and bulk lane, a temp-dir SQLite AssetStore behind AssetService. */
import { afterEach, describe, expect, spyOn, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import fs, { existsSync, writeFileSync } from "node:fs";
import nacl from "tweetnacl";
import { AppError } from "../../../src/core/errors.ts";
import { AssetClient, ASSET_PATH, ASSET_READ_ONLY_MESSAGE, chunkResult, runsCursor, toRuns } from "../../../src/services/asset-protocol.ts";
import { BulkOp, encodeBulk } from "../../../src/services/bulk-lane.ts";
import { RpcClient } from "../../../src/net/rpc.ts";
import { connectSecure } from "../../../src/net/secure-socket.ts";
import { ASSET_CHUNK_BYTES } from "../../../src/store/asset-store.ts";
import { chunkFilePath } from "../../../src/store/chunk-files.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";
import { waitFor } from "../../support/wait-for.ts";
import { assetFixtures, type AssetNode } from "./asset-harness.ts";

const MiB = ASSET_CHUNK_BYTES;
const networkKey = nacl.randomBytes(32);
const { cleanups, node, client, closeAll } = assetFixtures(networkKey);
afterEach(closeAll);
const randomBytes = (size: number) => randomFillSync(new Uint8Array(size));
const chunkOf = (data: Uint8Array, idx: number) => data.subarray(idx * MiB, Math.min(data.length, (idx + 1) * MiB));
const count = (at: AssetNode, table: string) => (at.db!.query(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

async function upload(c: AssetClient, name: string, data: Uint8Array) {
  const begun = await c.begin({ name, size: data.length });
  const stored = await Promise.all(Array.from({ length: begun.chunkCount }, (_, idx) => c.sendChunk(begun.id, idx, chunkOf(data, idx))));
  const committed = await c.commit(begun.id, sha256Hex(data));
  return { begun, stored: stored.map((s) => s.stored), ...committed };
}
async function download(c: AssetClient, id: string, start: number, end: number): Promise<Buffer> {
  const pieces: Uint8Array[] = [];
  await c.download(id, start, end, (bytes) => void pieces.push(new Uint8Array(bytes)));
  return Buffer.concat(pieces);
}
async function failure(work: Promise<unknown>): Promise<AppError> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  );
  if (error instanceof AppError) return error;
  throw new Error(`expected an AppError, got ${String(error)}`);
}

describe("upload and download", () => {
  test("a 3.5 MiB file goes up in 4 chunks on the bulk lane and comes back byte for byte", async () => {
    const server = node({ afterCommit: async () => "backup" });
    const c = await client(server);
    const data = randomBytes(3.5 * MiB);
    const { begun, asset, replicated, stored } = await upload(c, "intro.mov", data);
    expect(begun).toMatchObject({ chunkCount: 4, chunkSize: MiB, missing: [[0, 4]], resumed: false });
    expect(stored).toEqual([true, true, true, true]);
    expect(asset).toMatchObject({ id: begun.id, name: "intro.mov", size: data.length, sha256: sha256Hex(data), chunkCount: 4 });
    expect(replicated).toBe("backup");
    expect(await c.list()).toEqual([asset]);
    expect(await c.stat(asset.id)).toEqual(asset);
    expect((await download(c, asset.id, 0, data.length)).equals(data)).toBe(true);
    expect(server.putChunks).toEqual([0, 1, 2, 3]);
  });

  test("an empty file is an asset with no chunks", async () => {
    const c = await client(node());
    const { asset } = await upload(c, "empty.txt", new Uint8Array(0));
    expect(asset).toMatchObject({ size: 0, chunkCount: 0 });
    expect((await download(c, asset.id, 0, 0)).length).toBe(0);
  });

  test("the same bytes uploaded twice are stored once", async () => {
    const server = node();
    const c = await client(server);
    const data = randomBytes(2 * MiB + 7);
    const first = await upload(c, "a.mov", data);
    const chunks = count(server, "chunks");
    const second = await upload(c, "copy of a.mov", data);
    expect(second.stored).toEqual([false, false, false]);
    expect(count(server, "chunks")).toBe(chunks);
    expect(second.asset.id).not.toBe(first.asset.id);
    expect((await c.list()).map((a) => a.name)).toEqual(["a.mov", "copy of a.mov"]);
    expect((await download(c, second.asset.id, 0, data.length)).equals(data)).toBe(true);
  });

  test("ranges across chunk boundaries, one read straddling two chunks, and ranges outside the asset", async () => {
    const c = await client(node());
    const data = randomBytes(3.5 * MiB);
    const { asset } = await upload(c, "clip.mov", data);
    for (const [start, end] of [
      [MiB - 100, 3 * MiB + 50],
      [0, 1],
      [MiB, 2 * MiB],
      [3 * MiB + 1, data.length],
      [5, 5],
    ] as const) {
      expect((await download(c, asset.id, start, end)).equals(data.subarray(start, end))).toBe(true);
    }
    expect(Buffer.from(await c.read(asset.id, MiB - 10, MiB + 10)).equals(data.subarray(MiB - 10, MiB + 10))).toBe(true);
    expect((await failure(c.read(asset.id, 0, MiB + 1))).code).toBe("INVALID_INPUT");
    expect((await failure(c.read(asset.id, data.length - 1, data.length + 1))).code).toBe("RANGE_NOT_SATISFIABLE");
    expect((await failure(c.read("no-such-asset", 0, 1))).code).toBe("ASSET_NOT_FOUND");
    // The connection is still in step after refusals.
    expect(Buffer.from(await c.read(asset.id, 0, 3)).equals(data.subarray(0, 3))).toBe(true);
  });

  test("a damaged chunk file is detected on download and never served", async () => {
    const server = node();
    const c = await client(server);
    const data = randomBytes(2 * MiB + 3);
    const { asset } = await upload(c, "damaged.mov", data);
    const hash = sha256Hex(chunkOf(data, 1));
    const flipped = new Uint8Array(chunkOf(data, 1));
    flipped[1000] = flipped[1000]! ^ 0xff;
    writeFileSync(chunkFilePath(server.db!.filename, hash), flipped);
    expect(Buffer.from(await c.read(asset.id, 0, 100)).equals(data.subarray(0, 100))).toBe(true);
    const error = await failure(download(c, asset.id, 0, data.length));
    expect(error.code).toBe("CORRUPT_CHUNK");
    expect(error.message).toContain(hash);
  });
});

describe("resume", () => {
  test("after a dropped connection, begin with the upload id says what is missing, and only that is sent", async () => {
    const server = node();
    const data = randomBytes(3.5 * MiB);
    const first = await client(server);
    const begun = await first.begin({ name: "long.mov", size: data.length });
    await first.sendChunk(begun.id, 0, chunkOf(data, 0));
    await first.sendChunk(begun.id, 2, chunkOf(data, 2));
    server.dropConnections();
    await waitFor("the connection to drop", () => !first.open);
    expect((await failure(first.sendChunk(begun.id, 1, chunkOf(data, 1)))).code).toBe("CONNECTION_LOST");

    const second = await client(server);
    const resumed = await second.begin({ name: "long.mov", size: data.length, resumeId: begun.id });
    expect(resumed).toMatchObject({ id: begun.id, resumed: true, missing: [[1, 2], [3, 4]] });
    server.putChunks.length = 0;
    const missing = runsCursor(resumed.missing);
    for (let idx = 0; idx < resumed.chunkCount; idx++) if (missing(idx)) await second.sendChunk(begun.id, idx, chunkOf(data, idx));
    expect(server.putChunks).toEqual([1, 3]);
    const { asset } = await second.commit(begun.id, sha256Hex(data));
    expect((await download(second, asset.id, 0, data.length)).equals(data)).toBe(true);

    // Resuming an upload that was committed (the answer was lost) gives nothing to send; commit again returns the asset.
    const again = await second.begin({ name: "long.mov", size: data.length, resumeId: begun.id });
    expect(again).toMatchObject({ id: begun.id, resumed: true, missing: [] });
    expect((await second.commit(begun.id, sha256Hex(data))).asset).toEqual(asset);
  });

  test("a resume id for another file (size or name differs) or unknown starts a fresh upload", async () => {
    const c = await client(node());
    const begun = await c.begin({ name: "a.mov", size: 10 });
    for (const params of [
      { name: "a.mov", size: 11, resumeId: begun.id },
      { name: "b.mov", size: 10, resumeId: begun.id },
      { name: "a.mov", size: 10, resumeId: "00000000-0000-4000-8000-000000000000" },
    ]) {
      const fresh = await c.begin(params);
      expect(fresh.resumed).toBe(false);
      expect(fresh.id).not.toBe(begun.id);
    }
  });
});

describe("refusals", () => {
  test("while the backup serves, uploads are refused with the read-only message and reads go on", async () => {
    const server = node();
    const c = await client(server);
    const data = randomBytes(MiB + 5);
    const { asset } = await upload(c, "before.mov", data);
    const open = await c.begin({ name: "half.mov", size: 10 });
    server.mode = "read-only";
    for (const call of [c.begin({ name: "new.mov", size: 10 }), c.sendChunk(open.id, 0, new Uint8Array(10)), c.commit(open.id, sha256Hex(new Uint8Array(10))), c.abort(open.id)]) {
      const error = await failure(call);
      expect({ code: error.code, message: error.message, status: error.status }).toEqual({ code: "READ_ONLY", message: ASSET_READ_ONLY_MESSAGE, status: 409 });
    }
    expect(server.putChunks).toEqual([0, 1]);
    expect(await c.list()).toEqual([asset]);
    expect(await c.stat(asset.id)).toEqual(asset);
    expect((await download(c, asset.id, 0, data.length)).equals(data)).toBe(true);
  });

  test("bad calls are refused with a code and the connection stays usable", async () => {
    const c = await client(node());
    const begun = await c.begin({ name: "x.bin", size: 3 });
    expect((await failure(c.sendChunk(begun.id, 0, new Uint8Array(2)))).code).toBe("INVALID_CHUNK");
    expect((await failure(c.sendChunk(begun.id, 5, new Uint8Array(3)))).code).toBe("INVALID_CHUNK");
    expect((await failure(c.sendChunk("no-such-upload", 0, new Uint8Array(3)))).code).toBe("UPLOAD_NOT_FOUND");
    expect((await failure(c.commit(begun.id, sha256Hex(new Uint8Array(3))))).code).toBe("UPLOAD_INCOMPLETE");
    await c.sendChunk(begun.id, 0, new Uint8Array([1, 2, 3]));
    expect((await failure(c.commit(begun.id, sha256Hex(new Uint8Array(3))))).code).toBe("ASSET_HASH_MISMATCH");
    expect((await failure(c.begin({ name: "", size: 3 }))).code).toBe("INVALID_INPUT");
    expect((await failure(c.begin({ name: "x", size: -1 }))).code).toBe("INVALID_INPUT");
    expect((await failure(c.stat("no-such-asset"))).code).toBe("ASSET_NOT_FOUND");
    expect((await c.commit(begun.id, sha256Hex(new Uint8Array([1, 2, 3])))).asset.size).toBe(3);
  });

  test("a chunk call whose bytes never came is refused; a malformed bulk frame closes the connection", async () => {
    const server = node();
    const begun = await (await client(server)).begin({ name: "x.bin", size: 3 });
    const rpc = new RpcClient();
    let closed = "";
    const connection = await connectSecure(server.address, ASSET_PATH, { networkKey, machine: nacl.sign.keyPair() }, () => ({
      ...rpc.events(),
      close: (reason) => (closed = reason),
    }));
    rpc.attach(connection);
    cleanups.push(() => rpc.close());
    expect((await failure(rpc.call("asset.chunk", { id: begun.id, idx: 0, tag: 77 }, chunkResult))).code).toBe("INVALID_CHUNK");
    connection.sendBulk(encodeBulk(BulkOp.data, 1, new Uint8Array(3))); // a download frame, sent the wrong way
    await waitFor("the server to close the connection", () => closed !== "");
    expect(closed).toContain("bad header");
    expect(server.putChunks).toEqual([]);
  });

  test("a node that keeps no cache says so; a forwarding node with no main known says so", async () => {
    const bare = await client(node({ store: false }));
    expect((await failure(bare.list())).code).toBe("NO_ASSET_CACHE");
    const lost = await client(node({ store: false, mode: "forward" }));
    expect((await failure(lost.list())).code).toBe("NO_SERVER");
  });
});

describe("forward mode", () => {
  test("a client node relays calls and chunks to the main, so a command talks to its own node", async () => {
    const main = node();
    const own = node({ store: false, mode: "forward", forwardTo: () => main.address });
    const c = await client(own);
    const data = randomBytes(2.5 * MiB);
    const { asset, replicated } = await upload(c, "relayed.mov", data);
    expect(replicated).toBe("none");
    expect(main.putChunks).toEqual([0, 1, 2]);
    expect(main.stores!.assets.list()).toEqual([asset]);
    expect(await c.list()).toEqual([asset]);
    expect(await c.stat(asset.id)).toEqual(asset);
    expect((await download(c, asset.id, MiB - 3, data.length)).equals(data.subarray(MiB - 3))).toBe(true);

    main.mode = "read-only";
    const refused = await failure(c.begin({ name: "later.mov", size: 1 }));
    expect({ code: refused.code, message: refused.message }).toEqual({ code: "READ_ONLY", message: ASSET_READ_ONLY_MESSAGE });
    expect((await download(c, asset.id, 0, 10)).equals(data.subarray(0, 10))).toBe(true);
  });

  test("when the main's connection drops, the next call reconnects", async () => {
    const main = node();
    const own = node({ store: false, mode: "forward", forwardTo: () => main.address });
    const c = await client(own);
    expect(await c.list()).toEqual([]);
    main.dropConnections();
    await waitFor("the relay to reconnect", async () => (await c.list().then(() => true, () => false)));
    expect(c.open).toBe(true);
  });
});

describe("helpers", () => {
  test("index runs", () => {
    expect(toRuns([])).toEqual([]);
    expect(toRuns([0, 1, 2, 5, 7, 8])).toEqual([
      [0, 3],
      [5, 6],
      [7, 9],
    ]);
    const inside = runsCursor([
      [1, 3],
      [5, 6],
    ]);
    expect([0, 1, 2, 3, 4, 5, 6].map(inside)).toEqual([false, true, true, false, false, true, false]);
  });
});

describe("a full disk", () => {
  test("an upload that hits it is stopped and its stored part deleted at once; a shared chunk stays; the store goes on", async () => {
    const server = node();
    const c = await client(server);
    const shared = randomBytes(MiB);
    await upload(c, "kept.mov", shared);
    const data = randomBytes(3 * MiB);
    data.set(shared, 0);
    const begun = await c.begin({ name: "big.mov", size: data.length });
    for (let idx = 0; idx < 2; idx++) await c.sendChunk(begun.id, idx, chunkOf(data, idx));
    expect((await c.begin({ name: "big.mov", size: data.length, resumeId: begun.id })).missing).toEqual([[2, 3]]); // flushed
    const unique = sha256Hex(chunkOf(data, 1));
    // Chunk files are written on the I/O threads (AssetStore.putChunkAsync).
    const full = spyOn(fs.promises, "writeFile").mockImplementation(async () => {
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    });
    const error = await failure(c.sendChunk(begun.id, 2, chunkOf(data, 2)));
    full.mockRestore();
    expect(error.code).toBe("DISK_FULL");
    expect(error.message).toContain("deleted to give the space back");
    expect(server.stores!.assets.pendingUploads()).toEqual([]);
    expect(server.stores!.assets.hasChunk(unique)).toBe(false);
    expect(existsSync(chunkFilePath(server.db!.filename, unique))).toBe(false);
    expect(server.stores!.assets.hasChunk(sha256Hex(shared))).toBe(true);
    expect((await upload(c, "after.mov", randomBytes(100))).asset.size).toBe(100);
  });
});
