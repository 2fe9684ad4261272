/**
 * The deterministic failover simulator over thousands of seeded fault
 * schedules (see run.ts, schedules.ts, invariants.ts).
 *
 *   SIM_SEEDS=n       how many seeds (default 2000), starting at SIM_FIRST_SEED (default 1)
 *   SEED=n            replay one seed and print its trace
 */
import { describe, expect, test } from "bun:test";
import { runSeed, type SeedResult } from "./run.ts";

const replay = process.env.SEED;

if (replay !== undefined) {
  test(`replay seed ${replay}`, () => {
    const r = runSeed(Number(replay), true);
    console.log((r.trace ?? []).join("\n"));
    console.log(`seed ${r.seed}: ${r.family}, failback ${r.failback}, converged ${r.convergenceMs} ms after faults stopped (bound ${r.boundMs})`);
    if (r.violations.length > 0) throw new Error(`seed ${r.seed} (${r.family}) broke:\n  ${r.violations.join("\n  ")}`);
  });
} else {
  describe("failover simulator", () => {
    const count = Number(process.env.SIM_SEEDS ?? 2000);
    const first = Number(process.env.SIM_FIRST_SEED ?? 1);

    test(`${count} seeded fault schedules keep every invariant`, () => {
      const started = performance.now();
      const results: SeedResult[] = [];
      for (let seed = first; seed < first + count; seed++) results.push(runSeed(seed));
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
      expect(withTakeover).toBeGreaterThan(chaos.length * 0.5);
      expect(withFailback).toBeGreaterThan(chaos.length * 0.4);
      expect(of("witness").filter((r) => r.conditionSeen).length).toBeGreaterThan(of("witness").length * 0.5);
      for (const r of of("blip").concat(of("witness"))) expect(r.takeovers.backup).toBe(0);

      const worst = Math.max(...results.map((r) => r.convergenceMs / r.boundMs));
      console.log(
        `simulated ${count} seeds in ${Math.round(ms)} ms: backup took over in ${withTakeover}/${chaos.length} chaos seeds, ` +
          `main took back in ${withFailback}; slowest convergence ${(worst * 100).toFixed(0)}% of the bound`,
      );
    }, 120_000);

    test("a seed replays exactly", () => {
      for (const seed of [7, 8, 9, 10, 24]) {
        const a = runSeed(seed, true);
        const b = runSeed(seed, true);
        expect(b.trace).toEqual(a.trace);
        expect(b.violations).toEqual(a.violations);
      }
    });
  });
}
