/**
 * src/core and the simulator on Deno: proves the core, the failover runner
 * and test/sim stay on web-standard APIs (no Bun, no Node). Loads every
 * module under src/core, then runs the seeds; exits 1 naming the first seeds
 * that broke an invariant. test/sim/deno.test.ts runs it in CI.
 *
 *   node_modules/.bin/deno run --no-check --allow-read=src/core --allow-env=SIM_SEEDS,SIM_FIRST_SEED test/sim/deno-run.ts
 */
import { runSeed } from "./run.ts";

type DenoApi = {
  env: { get(n: string): string | undefined };
  readDir(path: string | URL): AsyncIterable<{ name: string; isFile: boolean; isDirectory: boolean }>;
  exit(code: number): never;
};
const deno = (globalThis as { Deno?: DenoApi }).Deno!;

async function importAll(dir: URL): Promise<number> {
  let count = 0;
  for await (const entry of deno.readDir(dir)) {
    if (entry.isDirectory) count += await importAll(new URL(`${entry.name}/`, dir));
    else if (entry.name.endsWith(".ts")) {
      await import(new URL(entry.name, dir).href);
      count++;
    }
  }
  return count;
}
const modules = await importAll(new URL("../../src/core/", import.meta.url));
console.log(`loaded ${modules} modules of src/core`);

const env = (name: string, fallback: number): number => Number(deno.env.get(name) ?? fallback);
const count = env("SIM_SEEDS", 500);
const first = env("SIM_FIRST_SEED", 1);
const broken: string[] = [];
for (let seed = first; seed < first + count; seed++) {
  const r = await runSeed(seed);
  if (r.violations.length > 0) broken.push(`seed ${seed} (${r.family}): ${r.violations.join("; ")}`);
}
console.log(`${count - broken.length} of ${count} seeds kept every invariant`);
if (broken.length > 0) {
  console.error(broken.slice(0, 10).join("\n"));
  deno.exit(1);
}
