/**
 * The deterministic failover simulator over thousands of seeded fault
 * schedules (see run.ts, schedules.ts, invariants.ts).
 *
 *   SIM_SEEDS=n       how many seeds (default 2000), starting at SIM_FIRST_SEED (default 1)
 *   SIM_FAMILY=name   only that family's seeds, SIM_SEEDS of them (e.g. rogue, ipv6, network-key, readd-backup, move-main)
 *   SEED=n            replay one seed and print its trace
 */
import { describe, expect, test } from "bun:test";
import { familyOf, runSeed, type SeedResult } from "./run.ts";


const replay = process.env.SEED;

if (replay !== undefined) {
  test(`replay seed ${replay}`, async () => {
    const r = await runSeed(Number(replay), true);
    console.log((r.trace ?? []).join("\n"));
    console.log(`seed ${r.seed}: ${r.family}, failback ${r.failback}, converged ${r.convergenceMs} ms after faults stopped (bound ${r.boundMs})`);
    if (r.violations.length > 0) throw new Error(`seed ${r.seed} (${r.family}) broke:\n  ${r.violations.join("\n  ")}`);
  });
} else {
  describe("failover simulator", () => {
    const count = Number(process.env.SIM_SEEDS ?? 2000);
    const first = Number(process.env.SIM_FIRST_SEED ?? 1);
    const only = process.env.SIM_FAMILY;

    test(`${count} seeded fault schedules${only ? ` of the ${only} family` : ""} keep every invariant`, async () => {
      const started = performance.now();
      const results: SeedResult[] = [];
      for (let seed = first; results.length < count && seed < first + 1000 * count; seed++) {
        if (only === undefined || familyOf(seed).family === only) results.push(await runSeed(seed));
      }
      expect(results).toHaveLength(count);
      const ms = performance.now() - started;

      const broken = results.filter((r) => r.violations.length > 0);
      if (broken.length > 0) {
        const lines = broken.slice(0, 10).map((r) => `seed ${r.seed} (${r.family}, failback ${r.failback}): ${r.violations.join("; ")}`);
        throw new Error(`${broken.length} of ${count} seeds broke an invariant; replay one with SEED=<n>:\n  ${lines.join("\n  ")}`);
      }

      // The schedules must really exercise failover, or passing means nothing.
      const of = (family: string) => results.filter((r) => r.family === family);
      const chaos = of("chaos");
      const withTakeover = chaos.filter((r) => r.takeovers.backup > 0).length;
      const withFailback = chaos.filter((r) => r.takeovers.main > 1).length;
      if (only === undefined || only === "chaos") {
        expect(withTakeover).toBeGreaterThan(chaos.length * 0.5);
        expect(withFailback).toBeGreaterThan(chaos.length * 0.4);
      }
      expect(of("witness").filter((r) => r.conditionSeen).length).toBeGreaterThanOrEqual(of("witness").length * 0.5);
      for (const r of of("blip").concat(of("witness"))) expect(r.takeovers.backup).toBe(0);
      // The rogue really forged (and was refused), and beside a crash of the main the backup still took over.
      const rogues = of("rogue");
      for (const r of rogues) expect(r.untrustedRefused).toBeGreaterThan(0);
      for (const r of rogues.filter((x) => x.rogueMode === "crash-main")) expect(r.takeovers.backup).toBeGreaterThan(0);

      // The Data Hub really carried messages across the faults, and DH1 judged most of them.
      const sum = (f: (r: SeedResult) => number) => results.reduce((n, r) => n + f(r), 0);
      const [judged, beyond] = [sum((r) => r.hub.judged), sum((r) => r.hub.beyondRetention)];
      // (move-main leaves clients on the old address for a while, and network-key leaves machines on differing keys, by design:
      // their messages wait beyond the retention.)
      const notMoved = results.filter((r) => r.family !== "move-main" && r.family !== "network-key");
      if (notMoved.length > 0) expect(notMoved.reduce((n, r) => n + r.hub.judged, 0)).toBeGreaterThan(10 * notMoved.reduce((n, r) => n + r.hub.beyondRetention, 0));
      // HL1 judged the Data Hub lane at the end of most runs.
      expect(sum((r) => r.hub.lanesJudged)).toBeGreaterThan(count * 0.5);
      // The show-file log lane (the production source and sink) really acknowledged pushes, and LL2 judged most runs' ends.
      const logs = { pushes: sum((r) => r.log?.pushes ?? 0), acked: sum((r) => r.log?.acked ?? 0), judged: sum((r) => r.log?.judged ?? 0) };
      expect(logs.acked).toBeGreaterThan(logs.pushes * 0.5);
      expect(logs.judged).toBeGreaterThan(count * 0.5);
      // The main's catch-up (the production fetchHubStateChanges) really copied in most takebacks.
      const caught = { ok: sum((r) => r.hub.catchUps.ok), failed: sum((r) => r.hub.catchUps.failed) };
      if (only === undefined || only === "chaos") expect(caught.ok).toBeGreaterThan(caught.failed);
      // HL2 really judged writes a main in standby owed (failback manual chaos seeds leave it waiting beside a serving backup).
      if ((only === undefined || only === "chaos") && count >= 200) expect(sum((r) => r.hub.standbyJudged)).toBeGreaterThan(0);
      // A new network key really kept machines apart for a while, and never caused a failover (I7 checks that).
      const keyed = of("network-key");
      if (keyed.length > 0) expect(keyed.reduce((n, r) => n + r.hub.keyRefusals, 0)).toBeGreaterThan(0);
      for (const r of keyed.concat(of("resave-storm"))) expect(r.takeovers.backup).toBe(0);
      // A backup removed and added again copied again and took over a dead main in many of them.
      const readded = of("readd-backup");
      expect(readded.filter((r) => r.takeovers.backup > 0).length).toBeGreaterThanOrEqual(readded.length * 0.3);
      const worst = Math.max(...results.map((r) => r.convergenceMs / r.boundMs));
      console.log(
        `simulated ${count} seeds in ${Math.round(ms)} ms: backup took over in ${withTakeover}/${chaos.length} chaos seeds, ` +
          `main took back in ${withFailback}; ${rogues.reduce((n, r) => n + r.untrustedRefused, 0)} forged heartbeats refused in ${rogues.length} rogue seeds; ` +
          `slowest convergence ${(worst * 100).toFixed(0)}% of the bound; Data Hub: ${sum((r) => r.hub.published)} messages, ` +
          `${sum((r) => r.hub.delivered)} deliveries, ${judged} (message, subscriber) pairs judged, ${beyond} beyond the retention; ` +
          `the backup's Data Hub copy judged at the end of ${sum((r) => r.hub.lanesJudged)} runs (${sum((r) => r.hub.onlyOnBackup)} keys only on the backup); HL2 judged ${sum((r) => r.hub.standbyJudged)} writes a standby main copied; ` +
          `the main's catch-up copied ${caught.ok} times and failed ${caught.failed}; show-file log: ${logs.pushes} pushes, ` +
          `${logs.acked} acknowledged by the backup, LL2 judged at the end of ${logs.judged} runs`,
      );
      // A guard against a hung run, not a speed check (bench and the summary line say the speed): a loaded 2-core machine takes minutes.
    }, 600_000);

    test("a seed replays exactly", async () => {
      for (const seed of [7, 8, 9, 10, 24]) {
        const a = await runSeed(seed, true);
        const b = await runSeed(seed, true);
        expect(b.trace).toEqual(a.trace);
        expect(b.violations).toEqual(a.violations);
      }
    }, 120_000);
  });
}
