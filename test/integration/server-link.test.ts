/**
 * The connections a machine keeps to its servers (ServerLink on PeerNet),
 * with the real executable on loopback: IPv6 addresses, a main that moved,
 * a backup removed and added again. Each of these failed before the links
 * shared one implementation.
 */
import { afterEach, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster } from "../support/cluster.ts";
import { tempDir } from "../support/machine-process.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

/** Pushes one new file from `folder` through `node`'s peer port; the command's output. */
async function push(c: Cluster, node: string, folder: string, name: string): Promise<string> {
  writeFileSync(join(folder, `${name}.txt`), `${name} ${crypto.randomUUID()}\n`);
  const result = await c.command(["push", folder, "-m", name, "--node", c.peer(node), "--key", c.keyFile], { timeoutMs: 15_000 });
  return result.out;
}

const linked = (c: Cluster) =>
  c.waitAll("everyone linked, the backup idle", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 20_000 });

test("on IPv6 loopback ([::1]) a push through a client is acknowledged with the backup holding it", async () => {
  cluster = await Cluster.start({ host: "::1", clients: ["a"] });
  const c = cluster;
  expect(c.peer("a")).toStartWith("[::1]:");
  await linked(c);
  const folder = tempDir("show-v6-");
  expect(await push(c, "a", folder, "first")).toContain("the backup has it");
  expect(await push(c, "a", folder, "second")).toContain("the backup has it");
  const main = await c.status("main");
  expect(main.showFile?.backup.state).toBe("in-sync");
}, 90_000);

test("a backup told on its page that the main moved (127.0.0.1 → 127.0.0.2) copies from the new address: the next push reaches it", async () => {
  cluster = await Cluster.start({ serverSetup: "config" });
  const c = cluster;
  await linked(c);
  const folder = tempDir("show-moved-");
  expect(await push(c, "main", folder, "before")).toContain("the backup has it");
  await c.kill("main");
  await c.waitStatus("backup", "the backup serving", (s) => s.chip === "Backup is active");
  const moved = `127.0.0.2:${c.ports.main}`;
  await c.restart("main", ["--peer-listen", moved]);
  const saved = await c.setupRole("backup", { role: "backup", main: moved });
  expect(saved.status).toBe(200);
  await c.waitStatus("main", "the main active again, the backup idle", (s) => s.chip === "Backup is idle" && s.failover?.state === "active", 20_000);
  expect(await push(c, "main", folder, "after")).toContain("the backup has it");
  await c.waitStatus("main", "the backup's copy in sync", (s) => s.showFile?.backup.state === "in-sync");
}, 90_000);

test("a backup that follows the main when its page is changed to the main's new address moves its hub link there", async () => {
  cluster = await Cluster.start({ serverSetup: "config" });
  const c = cluster;
  await linked(c);
  await c.kill("main");
  await c.waitStatus("backup", "the backup serving", (s) => s.chip === "Backup is active");
  const moved = `127.0.0.2:${c.ports.main}`;
  await c.restart("main", ["--peer-listen", moved]);
  // The main reaches the backup at the paired address and takes back; the backup follows it at the old one.
  await c.waitStatus("backup", "the backup idle again", (s) => s.failover?.state === "idle", 20_000);
  const saved = await c.setupRole("backup", { role: "backup", main: moved });
  expect(saved.status).toBe(200);
  await c.waitStatus("backup", "the backup's hub link up at the new address", (s) => s.failover?.hubConnected === true, 20_000);
}, 90_000);

test("a backup removed and added again (twice) becomes ready like the first time, then takes over a kill -9 of the main", async () => {
  cluster = await Cluster.start({ serverSetup: "config", clients: ["a"] });
  const c = cluster;
  await linked(c);
  for (let round = 0; round < 2; round++) {
    expect((await c.postForm("main", "/machines/backup/remove")).status).toBe(200);
    await c.waitStatus("main", "no backup", (s) => s.chip === "No backup" && s.failover?.pairing === null);
    const added = await c.postForm("main", "/machines/backup", { address: c.address("backup") });
    expect(added.status).toBe(200);
    await c.waitAll("the backup ready again", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 20_000 });
  }
  await c.kill("main");
  await c.waitAll("the backup serving, the client on it", (_n, s) => s.chip === "Backup is active" && s.failover?.hubConnected === true, { timeoutMs: 20_000 });
  expect((await c.status("a")).failover?.activeServer).toBe("backup");
}, 120_000);
