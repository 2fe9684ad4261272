/**
 * Disk full on the main: its data dir is a small tmpfs (root only). A push
 * that does not fit fails with a clear message, nothing is half-written, and
 * the machine keeps serving: pulls, status and smaller pushes still work.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { executable } from "../support/executable.ts";
import { devLicenseText } from "../support/licenses.ts";
import { startMachine, tempDir, type MachineProcess } from "../support/machine-process.ts";

const root = process.getuid?.() === 0;
const mountPoint = tempDir("understudy-tmpfs-");
let mounted = false;
let machine: MachineProcess | null = null;
let bin = "";

beforeAll(async () => {
  if (!root) {
    console.log("[disk-full] skipped: mounting a tmpfs needs root");
    return;
  }
  const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mountPoint]);
  if (mount.exitCode !== 0) {
    console.log(`[disk-full] skipped: could not mount a tmpfs (${mount.stderr.toString().trim()})`);
    return;
  }
  mounted = true;
  bin = await executable();
});

afterAll(async () => {
  if (machine) machine.proc.kill("SIGKILL");
  await machine?.proc.exited;
  if (mounted) Bun.spawnSync(["umount", "-l", mountPoint]);
});

function run(args: string[]) {
  const r = Bun.spawnSync([bin, ...args], { stdin: "ignore", env: { PATH: "/usr/bin:/bin", HOME: mountPoint } });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

test("a push that does not fit fails clearly, writes nothing, and the main keeps serving", async () => {
  if (!mounted) return;
  const dataDir = join(mountPoint, "data");
  mkdirSync(dataDir);
  const keyFile = join(dataDir, "network.key");
  expect(run(["keys", "generate", "--out", keyFile]).code).toBe(0);
  writeFileSync(join(dataDir, "license.json"), devLicenseText({ type: "server", holder: "*" }));
  machine = await startMachine(["--role", "server", "--key", keyFile, "--license", join(dataDir, "license.json")], { dataDir });
  const node = ["--node", machine.peer!, "--key", keyFile];

  const folder = tempDir("understudy-show-");
  writeFileSync(join(folder, "scene.yaml"), "scene: news\n");
  expect(run(["push", folder, "-m", "small", ...node]).code).toBe(0);

  // Random bytes do not compress: 7 MiB cannot fit in a 6 MiB tmpfs.
  writeFileSync(join(folder, "huge.bin"), randomBytes(7 * 1024 * 1024));
  const full = run(["push", folder, "-m", "too big", ...node]);
  expect(full.code).not.toBe(0);
  expect(full.err).toContain("is full");
  expect(full.err).toContain("nothing of it was written");

  const log = run(["log", ...node]);
  expect(log.code).toBe(0);
  expect(log.out).toContain("small");
  expect(log.out).not.toContain("too big");

  const copy = tempDir("understudy-pull-");
  expect(run(["pull", copy, ...node]).code).toBe(0);
  expect(await Bun.file(join(copy, "scene.yaml")).text()).toBe("scene: news\n");

  Bun.spawnSync(["rm", join(folder, "huge.bin")]);
  writeFileSync(join(folder, "scene.yaml"), "scene: weather\n");
  const after = run(["push", folder, "-m", "after", ...node]);
  expect(after.code).toBe(0);
  expect((await fetch(`${machine.ui}/api/status`)).status).toBe(200);
}, 60_000);
