/**
 * A client set up with only the main's address learns the backup from the
 * main's signed `/console` answer (docs/design.md §Pairing), keeps it in its
 * data dir, and follows it when the main dies, also after a restart during
 * the outage. Real executable on loopback.
 */
import { afterEach, expect, test } from "bun:test";
import { Cluster } from "../support/cluster.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

test("a client given only the main's address follows the backup at a kill -9 of the main, and after a restart during the outage", async () => {
  cluster = await Cluster.start();
  const c = cluster;
  await c.startClient("a", { onlyMain: true });
  await c.waitAll("everyone linked, the backup idle", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 20_000 });
  await c.waitStatus("a", "the client hears the backup it learned", (s) => s.failover?.peers.some((p) => p.role === "backup" && p.lastHeardMsAgo !== null && p.lastHeardMsAgo < 1000) === true, 20_000);

  await c.kill("main");
  const following = (s: { failover?: { state: string; activeServer: string | null; hubConnected: boolean } | null }) =>
    s.failover?.state === "follow-backup" && s.failover.hubConnected === true;
  await c.waitStatus("a", "the client follows the backup", following, 20_000);
  await c.set("a", "learned/after-kill", 1);
  expect((await c.get("backup", "learned/after-kill")).value).toBe(1);

  // Restarted while the main is down, it still knows the backup from its data dir.
  await c.kill("a");
  await c.restart("a");
  await c.waitStatus("a", "the restarted client follows the backup", following, 20_000);
  await c.set("a", "learned/after-restart", 2);
  expect((await c.get("backup", "learned/after-restart")).value).toBe(2);
}, 120_000);
