/**
 * docs/design.md §Layout: src/core and the simulator run on Deno too (the `deno` npm
 * package), so the core stays on web-standard APIs. 500 seeds under Deno.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");

test("src/core loads and 500 simulator seeds keep every invariant under Deno", () => {
  const run = Bun.spawnSync(
    [join(root, "node_modules/.bin/deno"), "run", "--no-check", "--allow-read=src/core", "--allow-env=SIM_SEEDS,SIM_FIRST_SEED", "test/sim/deno-run.ts"],
    { cwd: root, env: { ...process.env, SIM_SEEDS: "500", NO_COLOR: "1" }, timeout: 120_000 },
  );
  const out = `${run.stdout.toString()}${run.stderr.toString()}`;
  expect(out).toContain("500 of 500 seeds kept every invariant");
  expect(run.exitCode).toBe(0);
}, 130_000);
