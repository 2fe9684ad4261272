import { expect, test } from "bun:test";
import { runEngineWorld } from "./engine-world.ts";

const SEEDS = Number(process.env.ENGINE_SIM_SEEDS ?? 30);

test(`engine failover world: ${SEEDS} seeds keep the invariants and converge`, () => {
  let switches = 0;
  let serverFailovers = 0;
  let manualKept = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const result = runEngineWorld(seed);
    if (result.violations.length > 0) throw new Error(`seed ${seed}: ${result.violations.slice(0, 5).join("\n")}`);
    switches += result.switches;
    serverFailovers += result.serverFailovers;
    manualKept += result.manualKept;
  }
  // The faults did make the decision switch (the world is not vacuous).
  expect(switches).toBeGreaterThan(SEEDS);
  expect(serverFailovers).toBeGreaterThan(SEEDS);
  // Server failovers happened while the operator's switch was in force.
  expect(manualKept).toBeGreaterThan(0);
}, 60_000);
