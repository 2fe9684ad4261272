/**
 * A show file at production size through real executables: a main, its backup
 * and two clients. 300 MB in 150 files go in one push from one client, reach the
 * backup, and arrive byte for byte on the other client by a pull that is killed
 * midway and run again (it resumes: the chunks it has are not fetched twice).
 */
import { afterEach, expect, test } from "bun:test";
import { createHash, randomFillSync } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STATE_DIR } from "../../src/services/show-folder/show-folder.ts";
import { Cluster } from "../support/cluster.ts";
import { tempDir } from "../support/machine-process.ts";
import { waitFor } from "../support/wait-for.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

const FILES = 150;
const MB = 1_000_000;
const digest = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

test("300 MB in 150 files: one push, on the backup, and a pull killed midway resumes to a byte-for-byte copy", async () => {
  cluster = await Cluster.start({ clients: ["a", "b"] });
  const c = cluster;
  await c.waitAll("everyone linked", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 20_000 });

  const stage = tempDir("understudy-show-300-");
  const buffer = Buffer.alloc(2.5 * MB);
  const expected = new Map<string, string>();
  let total = 0;
  for (let i = 0; i < FILES; i++) {
    // 1.5 to 2.5 MB each, random (so no chunk is shared), in a few folders.
    const size = Math.round(1.5 * MB + (i % 11) * 0.1 * MB);
    const bytes = randomFillSync(buffer, 0, size).subarray(0, size);
    const path = `scene-${i % 5}/clip-${i}.bin`;
    mkdirSync(join(stage, `scene-${i % 5}`), { recursive: true });
    writeFileSync(join(stage, path), bytes);
    expected.set(path, createHash("sha256").update(bytes).digest("hex"));
    total += size;
  }
  expect(total).toBeGreaterThanOrEqual(290 * MB);

  const push = await c.command(["push", stage, "-m", "the whole show", "--node", c.peer("a"), "--key", c.keyFile], { timeoutMs: 240_000 });
  // The backup may take longer than --sync-timeout-ms to make 300 MB durable: then the push says it is behind.
  expect(push.out).toMatch(new RegExp(`^Pushed revision 1 \\(${FILES} files\\); the backup (has it|is behind)\n$`));
  await c.waitStatus("main", "the backup in sync", (s) => s.showFile?.backup.state === "in-sync", 60_000);
  // Both servers show the cache (the pushed contents are in it) and the free disk on each.
  const storage = (await c.waitStatus("main", "the backup's disk usage", (s) => (s.storage?.backup?.cacheBytes ?? 0) >= total, 30_000)).storage!;
  expect(storage.main!.cacheBytes).toBeGreaterThanOrEqual(total);
  expect(storage.main!.freeBytes).toBeGreaterThan(0);
  await c.waitStatus("backup", "the main's disk usage", (s) => (s.storage?.main?.cacheBytes ?? 0) >= total, 30_000);

  // A pull into an empty folder, killed once some files are in place.
  const booth = tempDir("understudy-booth-");
  const first = c.spawnCommand(["pull", booth, "--node", c.peer("b"), "--key", c.keyFile]);
  const placed = () => (existsSync(join(booth, "scene-0")) ? readdirSync(join(booth, "scene-0")).length : 0);
  await waitFor("the first pull under way", () => placed() >= 3 || first.exitCode !== null, 120_000, 5);
  first.kill("SIGKILL");
  await first.exited;
  expect(first.exitCode).not.toBe(0); // cut short, not finished
  expect(existsSync(join(booth, STATE_DIR, "state.json"))).toBe(false);

  const again = await c.command(["pull", booth, "--node", c.peer("b"), "--key", c.keyFile], { timeoutMs: 240_000 });
  expect(again.out).toStartWith(`${booth} is at revision 1 (`);
  const pulledBefore = Number(/\((\d+) files? changed\)/.exec(again.out)![1]);
  expect(pulledBefore).toBeLessThan(FILES);
  for (const [path, hash] of expected) expect([path, digest(join(booth, path))]).toEqual([path, hash]);
  expect(readdirSync(join(booth, STATE_DIR, "incoming"))).toEqual([]);
}, 600_000);
