/**
 * Who serves, with the real executable (issue 8, "What was found" 1, 2, 3, 5
 * and 6; 4 needs namespaces: test/faults/isolated-main.test.ts). Each test
 * replays one finding as a user, an operator or an attacker met it, and checks
 * the rule docs/design.md §Failover states instead: a backup serves only
 * when paired and holding a first copy, "Backup is idle" only when every lane
 * caught up, replayed datagrams change nothing, saving settings drops nothing.
 * Statuses are read from `GET /api/status` (failover.state, epoch, chip).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createReadStream, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import nacl from "tweetnacl";
import { parseHostPort } from "../../src/core/config.ts";
import { parseNetworkKey } from "../../src/core/keys.ts";
import type { MachineStatus } from "../../src/core/status.ts";
import { brief, Cluster, freePeerPort, type ClusterOptions, type Subscriber } from "../support/cluster.ts";
import { HeartbeatRecorder } from "../support/heartbeat-recorder.ts";
import { retainedValueOnDisk } from "../support/hub-state-on-disk.ts";
import { waitFor } from "../support/wait-for.ts";

/** "Within a few seconds", with the fast preset (heartbeat 50 ms, timeout 250 ms). */
const SWITCH_MS = 5_000;
const SETTLE_MS = 15_000;
const TEST_MS = 60_000;
const STREAM = "t/stream";
const END = "t/end";

let cluster: Cluster | null = null;
async function startCluster(options: ClusterOptions): Promise<Cluster> {
  cluster = await Cluster.start(options);
  return cluster;
}
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

type Check = (name: string, s: MachineStatus, all: Record<string, MachineStatus>) => boolean;
const fo = (s: MachineStatus) => s.failover!;
const state = (s: MachineStatus | undefined) => s?.failover?.state ?? null;

/** The main serves; the backup is idle behind it; every client follows the main; everyone knows the same epoch. */
const mainServes: Check = (name, s, all) => {
  if (state(all.main) !== "active" || s.chip !== "Backup is idle" || !fo(s).hubConnected) return false;
  if (fo(s).epoch !== fo(all.main!).epoch) return false;
  if (name === "main") return fo(s).activeServer === "self";
  if (name === "backup") return fo(s).state === "idle" && fo(s).activeServer === "main";
  return fo(s).activeServer === "main";
};

/** The backup serves; every client follows it. */
const backupServes: Check = (name, s, all) => {
  if (state(all.backup) !== "active" || s.chip !== "Backup is active" || !fo(s).hubConnected) return false;
  if (name === "backup") return fo(s).activeServer === "self";
  return fo(s).activeServer === "backup";
};

/** Polls every `everyMs` for `ms` and keeps every answer: "this never happens" needs a window. */
async function sample<T>(ms: number, probe: () => Promise<T>, everyMs = 25): Promise<T[]> {
  const samples: T[] = [];
  const until = performance.now() + ms;
  while (performance.now() < until) {
    samples.push(await probe());
    await Bun.sleep(everyMs);
  }
  return samples;
}

/** One line per poll for failure messages: each machine's state, epoch and chip. */
const timeline = (polls: Record<string, MachineStatus>[]) =>
  polls.map((all) => Object.entries(all).map(([n, s]) => `${n}=${state(s)}@${s.failover?.epoch}/${s.chip}`).join(" ")).join("\n");

/** Fails with what the machines said when a "never" check saw it happen. */
function expectNever(polls: Record<string, MachineStatus>[], what: string, bad: (all: Record<string, MachineStatus>) => boolean, c: Cluster): void {
  const at = polls.findIndex(bad);
  if (at >= 0) throw new Error(`${what} at poll ${at + 1} of ${polls.length}:\n${timeline(polls.slice(Math.max(0, at - 3), at + 4))}\n${c.describe(8)}`);
}

function hostPort(address: string) {
  const at = parseHostPort(address);
  if (!at) throw new Error(`not an address: ${address}`);
  return at;
}

describe("who serves (issue 8), with the real executable", () => {
  test(
    "finding 1: a backup restarted while the main is down serves, the client follows it, and the value is there",
    async () => {
      // Today the restarted backup stays "Backup is syncing" (its runner starts without `synced`), so nobody serves.
      const c = await startCluster({ clients: ["a"] });
      await c.waitAll("the main serving, the backup idle", mainServes, { timeoutMs: SETTLE_MS });
      const value = { scene: 12, set: "before the outage" };
      await c.set("a", "show/scene", value);
      const backupData = c.machine("backup").dataDir;
      await waitFor("the backup's copy to hold the value", () => Bun.deepEquals(retainedValueOnDisk(backupData, "show/scene"), value), SWITCH_MS);

      await c.kill("backup");
      await c.kill("main");
      await c.restart("backup");
      const after = await c.waitAll("the restarted backup active, the client on it", backupServes, { timeoutMs: SWITCH_MS });
      expect(Object.keys(after).sort()).toEqual(["a", "backup"]);

      expect((await c.get("a", "show/scene")).value).toEqual(value);
    },
    TEST_MS,
  );

  test(
    "a backup restarted without its pairing record is paired again by the main, and takes over a kill -9 after that",
    async () => {
      // Found: the two disagreed for good (the main paired, the backup not), so nothing took over the main.
      const c = await startCluster({ clients: ["a"] });
      await c.waitAll("the main serving, the backup idle", mainServes, { timeoutMs: SETTLE_MS });
      const backupData = c.machine("backup").dataDir;
      await c.kill("backup");
      rmSync(join(backupData, "pairing.json"));
      await c.restart("backup");
      await c.waitAll("paired again: the main serving, the backup idle", mainServes, { timeoutMs: SETTLE_MS });
      await c.kill("main");
      await c.waitAll("the backup active, the client on it", backupServes, { timeoutMs: SWITCH_MS });
    },
    TEST_MS,
  );

  test(
    "finding 2: 'Backup is idle' only once the asset cache is copied; a kill -9 of the main at that moment loses no asset",
    async () => {
      // Today the chip turns idle once the Data Hub state is copied, the asset lane still at 0 %: the asset is gone after the kill.
      const c = await startCluster({ clients: ["render"], holdBackup: true });
      await c.waitStatus("render", "following the main", (s) => fo(s).activeServer === "main" && fo(s).hubConnected, SETTLE_MS);
      const file = join(c.dir, "stage-backplate.bin");
      const sha256 = await writeDistinctChunks(file, ASSET_MIB);
      const node = ["--node", c.peer("render"), "--key", c.keyFile];
      const put = await c.command(["asset", "put", file, ...node], { timeoutMs: 40_000 });
      const id = put.out.trim();

      await c.startHeld("backup");
      const startedAt = performance.now();
      const idle = await c.waitStatus("backup", "the chip 'Backup is idle'", (s) => s.chip === "Backup is idle", 40_000);
      await c.kill("main");
      console.log(`[who-serves] backup idle ${Math.round(performance.now() - startedAt)} ms after it started; show file/assets then: ${JSON.stringify(idle.showFile)}`);

      await c.waitAll("the backup active, the client on it", backupServes, { timeoutMs: SWITCH_MS });
      const out = join(c.dir, "copy.bin");
      const got = await c.command(["asset", "get", id, out, ...node], { check: false, timeoutMs: 40_000 });
      if (got.code !== 0) throw new Error(`asset get ${id} from the backup failed (${got.code}): ${got.err.trim() || got.out.trim()}`);
      expect(await sha256Of(out)).toBe(sha256);
    },
    TEST_MS,
  );

  test(
    "finding 3: heartbeats recorded before a restart and replayed after it change nothing",
    async () => {
      // Today the replayed datagram counts as a restart of the main; the live main is then dropped as an old boot and both serve.
      const c = await startCluster({ clients: ["a"] });
      await c.waitAll("the main serving", mainServes, { timeoutMs: SETTLE_MS });
      const recorder = await HeartbeatRecorder.open(parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile));
      try {
        await recorder.record(hostPort(c.address("main")), 1_000);
        expect(recorder.datagrams.length).toBeGreaterThan(0);
        const old = recorder.datagrams.at(-1)!;

        // The whole network restarts on the same data dirs (a power cut); the client keeps its peer port.
        const clientPeer = hostPort(c.peer("a"));
        for (const name of ["a", "backup", "main"]) await c.kill(name);
        await Promise.all([c.restart("main"), c.restart("backup"), c.restart("a", ["--peer-listen", `127.0.0.1:${clientPeer.port}`])]);
        const before = await c.waitAll("the main serving again", mainServes, { timeoutMs: SETTLE_MS });

        recorder.replay(old, hostPort(c.address("backup")));
        recorder.replay(old, clientPeer);
        const polls = await sample(5_000, () => c.statuses(), 50);
        expectNever(polls, "two servers active", (all) => state(all.main) === "active" && state(all.backup) === "active", c);
        expectNever(polls, "the backup active", (all) => state(all.backup) === "active", c);
        // Nothing any machine believes changes: not even an epoch, which a takeover too brief to poll would leave raised.
        expectNever(polls, "an epoch changed", (all) => Object.values(all).some((s) => fo(s).epoch !== fo(before.main!).epoch), c);

        await c.set("main", "show/after-replay", { ok: true });
        expect((await c.get("a", "show/after-replay")).value).toEqual({ ok: true });
      } finally {
        recorder.close();
      }
    },
    TEST_MS,
  );

  test(
    "finding 5: set up by the setup pages in the documentation's order, the backup never serves unpaired",
    async () => {
      // Today the backup named the main, the main named no backup: the backup takes over and both serve;
      // clearing the backup field does not unpair, and the backup takes over after a kill -9 of the main.
      const c = await startCluster({ serverSetup: "pages" });
      expect((await c.setupRole("backup", { role: "backup", main: c.address("main") })).status).toBe(200);
      expect((await c.setupRole("main", { role: "main" })).status).toBe(200);
      const unpaired = await sample(5_000, () => c.statuses(), 50);
      expectNever(unpaired, "the backup serving for a main that named no backup", (all) => state(all.backup) === "active", c);

      expect((await c.setupRole("main", { role: "main", backup: c.address("backup") })).status).toBe(200);
      await c.waitAll("main and backup paired, the backup idle", mainServes, { timeoutMs: SETTLE_MS });

      expect((await c.setupRole("main", { role: "main", backup: "" })).status).toBe(200);
      const dropped = await c.waitStatus("backup", "the backup unpaired, chip 'No backup'", (s) => state(s) === "unpaired" && s.chip === "No backup", SWITCH_MS);
      await c.kill("main");
      const afterKill = await sample(3_000, async () => ({ backup: await c.status("backup") }), 50);
      expectNever(afterKill, "the unpaired backup taking over", (all) => state(all.backup) === "active" || fo(all.backup!).epoch > fo(dropped).epoch, c);
    },
    TEST_MS,
  );

  test(
    "finding 6: saving unchanged settings changes no epoch and drops no hub link; a new backup address never lets the old backup serve",
    async () => {
      // Today saving re-applies the role: the main's Data Hub closes, the epoch rises and clients reconnect;
      // changing the backup's address lets the backup serve for a moment.
      const c = await startCluster({ serverSetup: "config", clients: ["a", "b"] });
      const before = await c.waitAll("the main serving", mainServes, { timeoutMs: SETTLE_MS });
      const sub = c.subscribe("b", "t/#");
      await c.warmUp(sub, "a", "t/warm");
      const linksUp = { a: hubLinksUp(c, "a"), b: hubLinksUp(c, "b") };

      const count = 300;
      const publishing = c.publish("a", STREAM, { cue: "save" }, { count, intervalMs: 10 });
      await waitFor("the stream under way", () => sub.on(STREAM).length >= 50);
      const polling = sample(1_500, () => c.statuses(), 25);
      const saved = await c.setupRole("main", { role: "main", backup: c.address("backup") });
      expect(saved.status).toBe(200);
      const polls = await polling;
      const { code, err } = await publishing;
      expect(err).toBe("");
      expect(code).toBe(0);
      await expectWholeStream(c, sub, "a", count);

      const epochOf = (all: Record<string, MachineStatus>, name: string) => fo(all[name]!).epoch;
      expectNever(polls, "an epoch changed by saving unchanged settings", (all) => Object.keys(all).some((n) => epochOf(all, n) !== epochOf(before, n)), c);
      expectNever(polls, "a client's hub link down", (all) => !fo(all.a!).hubConnected || !fo(all.b!).hubConnected, c);
      expect({ a: hubLinksUp(c, "a"), b: hubLinksUp(c, "b") }).toEqual(linksUp);
      const arrivals = sub.on(STREAM).map((l) => l.at);
      const gap = Math.max(...arrivals.slice(1).map((t, i) => t - arrivals[i]!));
      console.log(`[who-serves] longest gap in a 10 ms stream while the main saved its settings: ${Math.round(gap)} ms`);

      // The backup field now names another machine: the old backup is no longer paired and must not serve.
      const elsewhere = `127.0.0.1:${await freePeerPort()}`;
      const backupEpoch = fo(await c.status("backup")).epoch;
      const watching = sample(3_000, async () => ({ backup: await c.status("backup") }), 25);
      expect((await c.setupRole("main", { role: "main", backup: elsewhere })).status).toBe(200);
      const backupPolls = await watching;
      expectNever(backupPolls, "the old backup serving after the main named another", (all) => state(all.backup) === "active" || epochOf(all, "backup") > backupEpoch, c);
      expect(brief(await c.status("main")).state).toBe("active");
    },
    TEST_MS,
  );
});

/** How many times `name`'s node brought its hub link up (its log's "hub link up" lines). */
function hubLinksUp(c: Cluster, name: string): number {
  return c.logs(name).filter((l) => l.event === "hub link up").length;
}

/** After the publisher ended, an end marker flushes the path; the subscriber then holds seq 1..count once each, in order. */
async function expectWholeStream(c: Cluster, sub: Subscriber, pubOn: string, count: number): Promise<void> {
  expect((await c.publish(pubOn, END, "end", { count: 1 })).code).toBe(0);
  await waitFor("the end marker at the subscriber", () => sub.on(END).length > 0, 10_000);
  const got = sub.on(STREAM);
  expect(new Set(got.map((l) => l.from)).size).toBe(1);
  expect(got.map((l) => l.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
}

/** Well over a second to copy on this machine (the finding used 300 MB), yet cheap to make. */
const ASSET_MIB = 256;
const MIB = 1024 * 1024;

/**
 * Writes `mib` chunks of 1 MiB, each different (one random MiB, its first 8
 * bytes the chunk's number: the Asset Hub stores equal chunks once) and
 * returns the file's SHA-256.
 */
async function writeDistinctChunks(file: string, mib: number): Promise<string> {
  const chunk = Buffer.from(nacl.randomBytes(MIB));
  const hasher = new Bun.CryptoHasher("sha256");
  const handle = await open(file, "w");
  try {
    for (let i = 0; i < mib; i++) {
      chunk.writeBigUInt64BE(BigInt(i), 0);
      hasher.update(chunk);
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
  return hasher.digest("hex");
}

async function sha256Of(file: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const piece of createReadStream(file)) hasher.update(piece as Buffer);
  return hasher.digest("hex");
}
