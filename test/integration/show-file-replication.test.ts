/**
 * No acknowledged push is lost: two clients push continuously, the main is
 * killed (-9) at random moments, and every push a client saw acknowledged must
 * be on the backup, byte for byte. Between rounds the main comes back and the
 * network moves back to it.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, databasePath } from "../../src/store/database.ts";
import { createStores } from "../../src/store/stores.ts";
import { READ_ONLY_MESSAGE } from "../../src/services/show-file-protocol.ts";
import { Cluster } from "../support/cluster.ts";
import { tempDir } from "../support/machine-process.ts";
import { waitFor } from "../support/wait-for.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

type Acked = { path: string; content: string };

/** Pushes a new file from `client` until `stop()`; returns what was acknowledged and the refusals seen. */
function pushLoop(c: Cluster, client: string, folder: string, round: number) {
  const acked: Acked[] = [];
  const refusals: string[] = [];
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running) {
      n++;
      const path = `${client}/round${round}-${n}.txt`;
      const content = `${client} push ${n} ${crypto.randomUUID()}\n`;
      mkdirSync(join(folder, client), { recursive: true });
      writeFileSync(join(folder, path), content);
      const result = await c.command(["push", folder, "-m", `${client} ${n}`, "--node", c.peer(client), "--key", c.keyFile], { check: false, timeoutMs: 10_000 });
      if (result.code === 0) acked.push({ path, content });
      else {
        refusals.push(result.err.trim());
        await Bun.sleep(50);
      }
    }
  })();
  return {
    acked,
    refusals,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

test("every push a client saw acknowledged is on the backup, across kills of the main", async () => {
  cluster = await Cluster.start({ clients: ["a", "b"] });
  const c = cluster;
  await c.waitAll("everyone linked", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 15_000 });
  const folders = { a: tempDir("show-a-"), b: tempDir("show-b-") };
  const allAcked: Acked[] = [];
  const allRefusals: string[] = [];
  for (let round = 0; round < 3; round++) {
    const loops = [pushLoop(c, "a", folders.a, round), pushLoop(c, "b", folders.b, round)];
    try {
      await Bun.sleep(300 + Math.floor(Math.random() * 900));
      // On a loaded machine a push can take a while: make sure each round has some to lose.
      // A timeout names what the pushes were told, so a failure says why (a clean-clone run once timed out here, unexplained).
      await waitFor("a push acknowledged on each client this round", () => loops.every((l) => l.acked.length > 0), 15_000).catch((error: Error) => {
        throw new Error(`${error.message}; round ${round}, last refusals: ${loops.map((l) => l.refusals.slice(-3).join(" | ") || "none").join(" || ")}`);
      });
      await c.kill("main");
      await c.waitStatus("backup", "the backup serving", (s) => s.chip === "Backup is active", 10_000);
      // Keep pushing a little while the backup serves: those must be refused, not acknowledged.
      await Bun.sleep(300);
    } finally {
      // Stopped whatever happened, so no push outlives this test.
      for (const loop of loops) await loop.stop();
    }
    for (const loop of loops) {
      allAcked.push(...loop.acked);
      allRefusals.push(...loop.refusals);
    }
    // Read the backup's copy while it runs (SQLite WAL allows a reader beside the writer).
    const db = openDatabase(databasePath(c.machine("backup").dataDir));
    try {
      const stores = createStores(db);
      for (const { path, content } of allAcked) {
        expect(new TextDecoder().decode(stores.showFile.read(path))).toBe(content);
      }
    } finally {
      db.close();
    }
    await c.restart("main");
    await c.waitAll("the network back on the main", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 15_000 });
    await waitFor("the backup's copy in sync again", async () => (await c.status("main")).showFile?.backup.state === "in-sync", 10_000);
  }
  expect(allAcked.length).toBeGreaterThan(5);
  expect(allRefusals.some((r) => r.includes(READ_ONLY_MESSAGE))).toBe(true);
}, 120_000);
