/**
 * A write only the backup holds, with the real executable (docs/design.md §Lanes and replication,
 * "began serving without the backup's latest state"): the backup serves after the main died,
 * acknowledges a set, and dies before anyone copied it; the main comes back alone and serves. When
 * the backup returns, the main copies that set in while it keeps serving, instead of the two
 * servers holding different values for good.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { MachineStatus } from "../../src/core/status.ts";
import { Cluster } from "../support/cluster.ts";
import { retainedValueOnDisk } from "../support/hub-state-on-disk.ts";
import { waitFor } from "../support/wait-for.ts";

const SETTLE_MS = 15_000;
const TEST_MS = 90_000;

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

const serving = (s: MachineStatus) => s.failover?.state === "active";

for (const host of ["127.0.0.1", "::1"] as const) {
  describe(`writes the backup took that the main never copied (${host})`, () => {
    test(
      "the main that came back alone copies them in when the backup returns, and keeps serving",
      async () => {
        const c = (cluster = await Cluster.start({ host, clients: ["writer", "reader"] }));
        const dirs = { main: c.machine("main").dataDir, backup: c.machine("backup").dataDir };
        await c.waitStatus("main", "serving", serving, SETTLE_MS);
        await c.waitStatus("backup", "idle behind the main", (s) => s.failover?.state === "idle", SETTLE_MS);

        await c.kill("main");
        await c.waitStatus("backup", "serving after the main died", serving, SETTLE_MS);
        await c.set("writer", "show/only-on-backup", { take: 7 });
        expect(retainedValueOnDisk(dirs.backup, "show/only-on-backup")).toEqual({ take: 7 });
        // The writer's node would hand its acknowledged set to the next server itself: this one is gone with the backup.
        await c.kill("writer");
        await c.kill("backup");

        await c.restart("main");
        const alone = await c.waitStatus("main", "serving without its backup", serving, SETTLE_MS);
        expect(retainedValueOnDisk(dirs.main, "show/only-on-backup")).toBeUndefined();
        await c.set("reader", "show/main-since", "newer");

        await c.restart("backup");
        await waitFor("the main's copy of the backup's set", () => retainedValueOnDisk(dirs.main, "show/only-on-backup") !== undefined, SETTLE_MS);
        expect(retainedValueOnDisk(dirs.main, "show/only-on-backup")).toEqual({ take: 7 });
        expect((await c.get("reader", "show/only-on-backup")).value).toEqual({ take: 7 });
        // Served throughout, at the same epoch, and the main's own write since stays on both.
        const after = await c.status("main");
        expect(serving(after)).toBe(true);
        expect(after.failover?.epoch).toBe(alone.failover?.epoch);
        await waitFor("the backup's copy of the main's newer set", () => retainedValueOnDisk(dirs.backup, "show/main-since") === "newer", SETTLE_MS);
        expect(c.logs("main").some((l) => String(l.event).includes("Copied the Data Hub writes"))).toBe(true);
      },
      TEST_MS,
    );
  });
}
