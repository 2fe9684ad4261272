/**
 * Worker threads inside a compiled executable, bundled as build.ts bundles src/main.ts: each
 * worker's source must be in the bundle, not on disk, and the process must end once the work is
 * done. Alive tokens signed ahead (net/alive-presigner.ts), and the heartbeat socket's thread
 * (net/udp-thread.ts), which keeps the process alive only while its socket is open.
 */
import { expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { tempDir } from "../support/machine-process.ts";

/** Compiles `test/support/<probe>` into an empty folder and runs it from there. */
async function runCompiled(probe: string): Promise<{ stdout: string; exitCode: number | null }> {
  const folder = tempDir("understudy-probe-");
  const outfile = join(folder, "probe");
  const result = await Bun.build({ entrypoints: [resolve(import.meta.dir, "../support", probe)], compile: { target: "bun-linux-x64", outfile } });
  expect(result.success).toBe(true);
  const run = Bun.spawnSync([outfile], { cwd: folder, env: { PATH: "/usr/bin:/bin", HOME: folder }, stdin: "ignore", timeout: 20_000 });
  return { stdout: run.stdout.toString(), exitCode: run.exitCode };
}

test("a compiled executable signs alive tokens ahead on its worker, from an empty folder", async () => {
  expect(await runCompiled("presign-probe.ts")).toEqual({ stdout: "signed ahead\n", exitCode: 0 });
}, 60_000);

test("a compiled executable sends heartbeats ahead from the socket's thread, and exits once it is closed", async () => {
  expect(await runCompiled("udp-thread-probe.ts")).toEqual({ stdout: "sent ahead from its thread\n", exitCode: 0 });
}, 60_000);
