/**
 * The heartbeat socket's thread (net/udp-thread.ts) inside a compiled executable, bundled as build.ts
 * bundles src/main.ts: the thread's source must be in the bundle, not on disk. The process must also
 * end once its sockets are closed (the thread keeps it alive only while the socket is open).
 */
import { expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { tempDir } from "../support/machine-process.ts";

test("a compiled executable sends heartbeats ahead from the socket's thread, and exits once it is closed", async () => {
  const folder = tempDir("understudy-udp-thread-");
  const outfile = join(folder, "probe");
  const result = await Bun.build({ entrypoints: [resolve(import.meta.dir, "../support/udp-thread-probe.ts")], compile: { target: "bun-linux-x64", outfile } });
  expect(result.success).toBe(true);
  const run = Bun.spawnSync([outfile], { cwd: folder, env: { PATH: "/usr/bin:/bin", HOME: folder }, stdin: "ignore", timeout: 20_000 });
  expect(run.stdout.toString()).toBe("sent ahead from its thread\n");
  expect(run.exitCode).toBe(0);
}, 60_000);
