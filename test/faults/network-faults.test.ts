/**
 * Network faults against the real executable, one network namespace per
 * machine (main, backup, one client), nftables for loss (root; skipped with a
 * reason elsewhere). Nothing below the documented failover bound may cause a
 * failover: 5 % random loss on every link (defaults and the fast preset), the
 * main paused (SIGSTOP) below the failover timeout ten times; and restarts of
 * the main only ever raise epochs. FAULT_SECONDS stretches the loss cases
 * (default 20 s each; the full run is 120). `bun run bench faults`
 * prints the same cases as a table.
 *
 * Main and backup cut from each other (one way and both ways) while the client
 * still hears the main: no takeover, and the backup says why. The main's cable
 * flapping every 300 ms: no failover, with the ARP re-ask interval the README
 * asks installers to set (Linux re-asks a lost neighbour only after 1 s by
 * default, so each flap silenced the main for over a second). The isolated main
 * is test/faults/isolated-main.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { executable } from "../support/executable.ts";
import { DEFAULTS, FAST, FaultCluster, faultLabUnavailable } from "../support/fault-cluster.ts";
import { waitFor } from "../support/wait-for.ts";

const FAULT_SECONDS = Number(process.env.FAULT_SECONDS ?? 20);
const skipReason = faultLabUnavailable();
if (skipReason) console.warn(`[network faults] skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)("network faults (the real executable in namespaces)", () => {
  let cluster: FaultCluster | undefined;
  const lab = () => cluster ?? (() => { throw new Error("lab not created"); })();

  beforeAll(async () => {
    cluster = FaultCluster.create(await executable(), "us-nf", "10.232.0");
  }, 120_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  for (const preset of [DEFAULTS, FAST]) {
    test(`5 % loss on every link for ${FAULT_SECONDS} s (${preset.name}): no failover`, async () => {
      const c = lab();
      await c.fresh(preset);
      const before = await c.epochs();
      c.loss(5);
      await Bun.sleep(FAULT_SECONDS * 1000);
      c.loss(null);
      await c.explained(async () => expect(await c.epochs()).toEqual(before));
      expect((await c.status("backup")).chip).toBe("Backup is idle");
    }, (FAULT_SECONDS + 60) * 1000);
  }

  for (const [label, ways] of [
    ["both ways", [["main", "backup"], ["backup", "main"]]],
    ["main to backup only", [["main", "backup"]]],
    ["backup to main only", [["backup", "main"]]],
  ] as const) {
    test(`main and backup cut ${label} while the client hears the main (fast): no takeover, the condition is shown`, async () => {
      const c = lab();
      await c.fresh(FAST);
      const before = await c.epochs();
      for (const [from, to] of ways) c.cut(from, to);
      try {
        // Many failover timeouts: the backup must hold back the whole time, on the client's word.
        const seen = new Set<string>();
        const until = performance.now() + 12 * FAST.failoverTimeoutMs;
        while (performance.now() < until) {
          const backup = await c.status("backup");
          seen.add(backup.chip);
          expect(backup.failover?.state).not.toBe("active");
          await Bun.sleep(100);
        }
        expect(seen.has("Main unreachable from backup")).toBe(true);
      } finally {
        c.healCuts();
      }
      await c.explained(async () => expect(await c.epochs()).toEqual(before));
    }, 60_000);
  }

  test(`the main's cable flapping every 300 ms for ${FAULT_SECONDS} s (defaults): no failover`, async () => {
    const c = lab();
    await c.fresh(DEFAULTS);
    const before = await c.epochs();
    const until = performance.now() + FAULT_SECONDS * 1000;
    while (performance.now() < until) {
      await c.flapMain(300);
      await Bun.sleep(300);
    }
    await c.explained(async () => expect(await c.epochs()).toEqual(before));
    await c.explained(() => c.settled(10_000));
  }, (FAULT_SECONDS + 60) * 1000);

  test("the main paused ten times for 40 % of the failover timeout (defaults): no failover", async () => {
    const c = lab();
    await c.fresh(DEFAULTS);
    const before = await c.epochs();
    for (let i = 0; i < 10; i++) {
      await c.pauseMain(DEFAULTS.failoverTimeoutMs * 0.4);
      await Bun.sleep(DEFAULTS.failoverTimeoutMs * 0.6);
    }
    await c.explained(async () => expect(await c.epochs()).toEqual(before));
  }, 90_000);

  test("three restarts of the main at random 2–4 s intervals: epochs only grow, and the main takes the network back", async () => {
    const c = lab();
    await c.fresh(FAST);
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const start0 = (await c.epochs())[0];
    const seen: number[] = [start0];
    for (let i = 0; i < 3; i++) {
      await c.killMain();
      await Bun.sleep(2000 + random() * 2000);
      seen.push((await c.status("backup")).failover!.epoch);
      c.start("main");
      await c.explained(() => c.settled(20_000));
      seen.push(...(await c.epochs()));
    }
    // In the order observed, no machine ever reported a lower epoch than one reported before it.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    const [mainEpoch, backupEpoch] = await c.epochs();
    expect(mainEpoch).toBe(backupEpoch);
    expect(mainEpoch).toBeGreaterThan(start0);
    await waitFor("the client on the main", async () => (await c.status("c1")).failover?.activeServer === "main");
  }, 120_000);
});
