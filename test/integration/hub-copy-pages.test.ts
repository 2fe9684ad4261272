/**
 * A Data Hub state larger than one frame, with the real executable: the backup copies it in pages
 * (docs/design.md §Lanes and replication) and becomes ready. In one answer, 20 MiB of retained
 * state passed the peer port's 16 MiB frame: the backup never got its first copy and never
 * became "Backup is idle", so a failover had nothing to take over with.
 */
import { afterEach, expect, test } from "bun:test";
import { Cluster } from "../support/cluster.ts";
import { retainedValueOnDisk } from "../support/hub-state-on-disk.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

test("a backup started beside 20 MiB of retained state copies all of it and becomes idle", async () => {
  const c = (cluster = await Cluster.start({ holdBackup: true }));
  await c.waitStatus("main", "serving alone", (s) => s.failover?.state === "active", 15_000);
  const ui = c.machine("main").ui;
  const pad = "p".repeat(60 * 1024);
  const keys = 340; // ≈ 20 MiB, within one machine's 32 MiB share
  for (let i = 0; i < keys; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, keys - i) }, async (_, j) => {
        const response = await fetch(`${ui}/api/hub/state/big/${i + j}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ n: i + j, pad }) });
        expect(response.status).toBe(200);
      }),
    );
  }
  await c.startHeld("backup");
  await c.waitStatus("backup", "idle with a whole copy", (s) => s.failover?.state === "idle" && s.chip === "Backup is idle", 60_000);
  const backupDir = c.machine("backup").dataDir;
  for (const i of [0, keys / 2, keys - 1]) expect((retainedValueOnDisk(backupDir, `big/${i}`) as { n: number } | undefined)?.n).toBe(i);
}, 120_000);
