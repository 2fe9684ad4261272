/**
 * Space comes back: an upload aborted with `understudy asset abort` leaves no
 * chunks on the main or the backup once the grace period (--chunk-grace-ms, short
 * here) has passed; a committed asset removed with `asset rm` neither.
 */
import { afterEach, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import nacl from "tweetnacl";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { AssetClient, ASSET_PATH } from "../../src/services/asset-protocol.ts";
import { connectSecure } from "../../src/net/secure-socket.ts";
import { ASSET_CHUNK_BYTES } from "../../src/store/asset-tables.ts";
import { Cluster } from "../support/cluster.ts";
import { tempDir } from "../support/machine-process.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

test("an aborted upload's chunks and a removed asset's are gone from main and backup after the grace period", async () => {
  // Long enough to check both servers hold the chunks first (an upload idle this long counts as stopped).
  const grace = ["--chunk-grace-ms", "3000"];
  cluster = await Cluster.start({ mainArgs: grace, backupArgs: grace });
  const c = cluster;
  await c.waitStatus("backup", "the backup idle", (s) => s.chip === "Backup is idle", 20_000);
  const cache = async () => {
    const s = (await c.status("main")).storage;
    return [s?.main?.cacheBytes ?? -1, s?.backup?.cacheBytes ?? -1];
  };

  const networkKey = parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile);
  const client = new AssetClient();
  client.attach(await connectSecure(c.address("main"), ASSET_PATH, { networkKey, machine: nacl.sign.keyPair() }, () => client.events()));
  const begun = await client.begin({ name: "half.mov", size: 4 * ASSET_CHUNK_BYTES });
  for (let idx = 0; idx < 2; idx++) await client.sendChunk(begun.id, idx, randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES)));
  // Asking to resume makes what arrived durable (chunks are otherwise flushed 32 at a time).
  expect((await client.begin({ name: "half.mov", size: 4 * ASSET_CHUNK_BYTES, resumeId: begun.id })).missing).toEqual([[2, 4]]);
  client.close();
  // The chunks are on both servers (the backup got them as they arrived).
  await c.waitStatus("main", "two chunks cached on both", (s) => s.storage?.main?.cacheBytes === 2 * ASSET_CHUNK_BYTES && s.storage.backup?.cacheBytes === 2 * ASSET_CHUNK_BYTES, 20_000);

  const abort = await c.command(["asset", "abort", begun.id, "--node", c.address("main"), "--key", c.keyFile]);
  expect(abort.out).toContain(`Upload ${begun.id} stopped`);
  await c.waitStatus("main", "the aborted upload's space back on both", (s) => s.storage?.main?.cacheBytes === 0 && s.storage.backup?.cacheBytes === 0, 20_000);

  const file = `${tempDir("understudy-asset-space-")}/clip.bin`;
  await Bun.write(file, randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES + 5)));
  const id = (await c.command(["asset", "put", file, "--node", c.address("main"), "--key", c.keyFile])).out.trim();
  await c.waitStatus("main", "the asset cached on both", (s) => s.storage?.main?.cacheBytes === ASSET_CHUNK_BYTES + 5 && s.storage.backup?.cacheBytes === ASSET_CHUNK_BYTES + 5, 20_000);
  expect((await c.command(["asset", "rm", id, "--node", c.address("main"), "--key", c.keyFile])).out).toBe(`Asset ${id} removed; the backup removed it too.\n`);
  await c.waitStatus("main", "the removed asset's space back on both", (s) => s.storage?.main?.cacheBytes === 0 && s.storage.backup?.cacheBytes === 0, 20_000);
  expect(await cache()).toEqual([0, 0]);
}, 120_000);
