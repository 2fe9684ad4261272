/**
 * Alive tokens signed ahead (net/alive-presigner.ts) inside a compiled executable, bundled as
 * build.ts bundles src/main.ts: the worker's source must be in the bundle, not on disk.
 */
import { expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { tempDir } from "../support/machine-process.ts";

test("a compiled executable signs alive tokens ahead on its worker, from an empty folder", async () => {
  const folder = tempDir("understudy-presign-");
  const outfile = join(folder, "probe");
  const result = await Bun.build({ entrypoints: [resolve(import.meta.dir, "../support/presign-probe.ts")], compile: { target: "bun-linux-x64", outfile } });
  expect(result.success).toBe(true);
  const run = Bun.spawnSync([outfile], { cwd: folder, env: { PATH: "/usr/bin:/bin", HOME: folder }, stdin: "ignore", timeout: 20_000 });
  expect(run.stdout.toString()).toBe("signed ahead\n");
  expect(run.exitCode).toBe(0);
}, 60_000);
