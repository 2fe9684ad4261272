/**
 * A backup removed while it was down (docs/design.md §Pairing, "Clearing the
 * backup"), with the real executable: it never heard the main's unpair
 * message, so it comes back holding a confirmed pairing. The main answers its
 * heartbeats with its own, which name no backup, and it lets go: it must end
 * "No backup" and never serve, not even for a moment, on IPv4 and IPv6, also
 * when the main restarted in between. Added again, it pairs and is ready again.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { MachineStatus } from "../../src/core/status.ts";
import { Cluster, DEFAULTS } from "../support/cluster.ts";

const SETTLE_MS = 15_000;
const WATCH_MS = 4_000;
const TEST_MS = 60_000;

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

const state = (s: MachineStatus | undefined) => s?.failover?.state ?? null;

const CASES = [
  { host: "127.0.0.1", mainRestarts: false },
  { host: "::1", mainRestarts: false },
  { host: "127.0.0.1", mainRestarts: true },
] as const;

describe.each(CASES)("a backup removed while it was down, on $host (main restarted in between: $mainRestarts)", ({ host, mainRestarts }) => {
  test(
    "comes back, lets go, reads 'No backup', never serves while the main does, and pairs again when added again",
    async () => {
      // The product's timings: the main's answer must beat the backup's failover timeout, and a shared
      // test box under load can hold a process longer than the fast preset's 250 ms.
      const c = (cluster = await Cluster.start({ serverSetup: "config", host, ...DEFAULTS }));
      await c.waitStatus("backup", "the backup idle behind the main", (s) => state(s) === "idle", SETTLE_MS);
      await c.kill("backup");
      expect((await c.setupRole("main", { role: "main", backup: "" })).status).toBe(200);
      await c.waitStatus("main", "the main serving with no backup", (s) => state(s) === "active" && s.chip === "No backup", SETTLE_MS);
      if (mainRestarts) {
        await c.kill("main");
        await c.restart("main");
        await c.waitStatus("main", "the restarted main serving with no backup", (s) => state(s) === "active" && s.chip === "No backup", SETTLE_MS);
      }

      await c.restart("backup");
      // From its first answer on, sampled for a while: one "active" is the bug (it took over while the main serves).
      const polls: { backup: MachineStatus; main: MachineStatus }[] = [];
      const until = performance.now() + WATCH_MS;
      while (performance.now() < until) {
        polls.push({ backup: await c.status("backup"), main: await c.status("main") });
        await Bun.sleep(25);
      }
      const served = polls.findIndex((p) => state(p.backup) === "active");
      if (served >= 0) throw new Error(`the removed backup served at poll ${served + 1} of ${polls.length}: ${JSON.stringify(polls.slice(served, served + 3).map((p) => [state(p.backup), p.backup.chip]))}\n${c.describe(8)}`);
      await c.waitStatus("backup", "the backup unpaired, chip 'No backup'", (s) => state(s) === "unpaired" && s.chip === "No backup", SETTLE_MS);
      expect(polls.every((p) => state(p.main) === "active")).toBe(true);

      expect((await c.setupRole("main", { role: "main", backup: c.address("backup") })).status).toBe(200);
      await c.waitStatus("backup", "the backup added again, idle behind the main", (s) => state(s) === "idle" && s.chip === "Backup is idle", SETTLE_MS);
    },
    TEST_MS,
  );
});
