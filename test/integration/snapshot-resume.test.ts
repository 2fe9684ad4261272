/**
 * A backup that is new gets a snapshot of everything the main holds, with
 * progress. Killed (-9) in the middle of it and started again, it resumes, and
 * ends with the main's show file and assets byte for byte, nothing duplicated.
 */
import { afterEach, expect, test } from "bun:test";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { ShowFileClient } from "../../src/services/show-file-client.ts";
import { connectSecure } from "../../src/net/secure-socket.ts";
import { pushResult } from "../../src/services/show-file-protocol.ts";
import { databasePath, openDatabase } from "../../src/store/database.ts";
import { createStores } from "../../src/store/stores.ts";
import { Cluster } from "../support/cluster.ts";
import { waitFor } from "../support/wait-for.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

test("a backup killed in the middle of its snapshot resumes and ends identical to the main", async () => {
  // A client keeps the main company: a paired main that hears nobody at all fences itself (Main isolated).
  cluster = await Cluster.start({ clients: ["a"] });
  const c = cluster;
  await c.waitAll("the main active, the client on it", (name, s) => (name === "main" ? s.failover?.state === "active" : name === "a" ? s.failover?.activeServer === "main" : true), { timeoutMs: 15_000 });
  const dirs = { main: c.machine("main").dataDir, backup: c.machine("backup").dataDir };
  await c.kill("backup");

  const networkKey = parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile);
  const client = new ShowFileClient();
  client.attach(await connectSecure(c.address("main"), "/files", { networkKey, machine: nacl.sign.keyPair() }, () => client.events()));
  const REVISIONS = 400;
  for (let i = 0; i < REVISIONS; i++) {
    const content = nacl.randomBytes(8 * 1024);
    const { hash } = await client.putChunk(content);
    await client.call("push", { base: 0, author: "test", message: `r${i}`, changes: [{ path: `cues/${i}.bin`, size: content.length, chunks: [hash] }] }, pushResult);
  }
  client.close();
  const assetFile = join(c.dir, "asset.bin");
  writeFileSync(assetFile, nacl.randomBytes(12 * 1024 * 1024 + 123));
  const put = await c.command(["asset", "put", assetFile, "--node", c.address("main"), "--key", c.keyFile], { timeoutMs: 60_000 });
  const assetId = put.out.trim();

  // A new backup: its database is gone, so the main sends a snapshot.
  for (const f of readdirSync(dirs.backup)) if (f.startsWith("understudy.db")) rmSync(join(dirs.backup, f));
  await c.restart("backup");
  const caught = await waitFor(
    "the backup's snapshot under way",
    async () => {
      const s = await c.status("backup");
      return s.showFile?.backup.state === "syncing" && (s.showFile.backup.progress ?? 0) > 0 ? s : null;
    },
    20_000,
    5,
  );
  await c.kill("backup");
  expect(caught.showFile!.backup.progress!).toBeLessThan(1);

  await c.restart("backup");
  await waitFor("the backup's copy in sync", async () => (await c.status("main")).showFile?.backup.state === "in-sync", 60_000);
  await c.kill("backup");
  await c.kill("main");

  const open = (name: "main" | "backup") => createStores(openDatabase(databasePath(dirs[name])));
  const main = open("main");
  const backup = open("backup");
  expect(backup.showFile.head()).toBe(main.showFile.head());
  expect(backup.showFile.log(1000).length).toBe(main.showFile.log(1000).length);
  for (let i = 0; i < REVISIONS; i++) {
    expect(Buffer.from(backup.showFile.read(`cues/${i}.bin`)).equals(Buffer.from(main.showFile.read(`cues/${i}.bin`)))).toBe(true);
  }
  const read = (s: typeof main) => Buffer.concat([...s.assets.read(assetId)]);
  expect(read(backup).equals(read(main))).toBe(true);
  expect(backup.assets.list().length).toBe(main.assets.list().length);
}, 120_000);
