/**
 * A push that never comes gives its chunks back on the backup too, at once
 * (docs/design.md §Show folder): the main gives back the chunks of a pusher that went away
 * (or hit a full disk) and tells the backup, which had them offered as they
 * arrived. Before, the backup kept them for --chunk-grace-ms (a day).
 */
import { afterEach, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import nacl from "tweetnacl";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { connectSecure } from "../../src/net/secure-socket.ts";
import { ShowFileClient } from "../../src/services/show-file-client.ts";
import { ASSET_CHUNK_BYTES } from "../../src/store/asset-tables.ts";
import { Cluster, DEFAULTS } from "../support/cluster.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

test("a pusher that sends chunks and goes away leaves nothing on the main or the backup, well before the grace period", async () => {
  // Product timings: a loaded test machine must not fail over by itself in the middle of the push.
  const c = (cluster = await Cluster.start({ ...DEFAULTS }));
  await c.waitStatus("backup", "the backup idle", (s) => s.chip === "Backup is idle", 20_000);
  await c.waitStatus("main", "the main serving", (s) => s.failover?.state === "active", 20_000);
  const networkKey = parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile);
  const client = new ShowFileClient();
  client.attach(await connectSecure(c.address("main"), "/files", { networkKey, machine: nacl.sign.keyPair() }, () => client.events()));
  for (let i = 0; i < 3; i++) expect((await client.putChunk(randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES)))).stored).toBe(true);
  // The backup has them (offered as they arrived, indexed within a second).
  await c.waitStatus("main", "three chunks on the backup", (s) => s.storage?.backup?.cacheBytes === 3 * ASSET_CHUNK_BYTES, 20_000);
  client.close();
  await c.waitStatus("main", "the space back on both", (s) => s.storage?.main?.cacheBytes === 0 && s.storage.backup?.cacheBytes === 0, 20_000);
  expect(c.logs("backup").some((l) => l.event === "gave back a failed push's chunks, as the main did")).toBe(true);
}, 90_000);
