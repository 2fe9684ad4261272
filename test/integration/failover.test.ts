/**
 * Failover with the real executable: one process per machine on loopback (a
 * main, its backup, clients), faults made with signals (kill -9, SIGSTOP,
 * SIGCONT), local apps run as `understudy sub|pub|set|get` on their own
 * machine. docs/design.md §Failover. Tests run one after another: each
 * starts several processes.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { MachineStatus } from "../../src/core/status.ts";
import { brief, Cluster, DEFAULTS, type Subscriber } from "../support/cluster.ts";
import { waitFor } from "../support/wait-for.ts";

const STREAM = "t/stream";
const WARM = "t/warm";
const END = "t/end";
/** "Within a few seconds" of the fault, with the fast preset (timeout 250 ms). */
const SWITCH_MS = 5_000;
const TEST_MS = 30_000;

let cluster: Cluster | null = null;

async function startCluster(options: Parameters<typeof Cluster.start>[0]): Promise<Cluster> {
  cluster = await Cluster.start(options);
  return cluster;
}

afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});
afterAll(async () => {
  await cluster?.shutdown();
});

type Check = (name: string, s: MachineStatus, all: Record<string, MachineStatus>) => boolean;
const fo = (s: MachineStatus) => s.failover!;

/** The main serves; the backup is idle and follows it; every client follows the main at its epoch. */
const mainActive: Check = (name, s, all) => {
  const main = all.main && fo(all.main);
  if (!main || main.state !== "active" || s.chip !== "Backup is idle" || !fo(s).hubConnected) return false;
  if (name === "main") return fo(s).activeServer === "self" && fo(s).activeEpoch === fo(s).epoch;
  if (name === "backup") return fo(s).state === "idle" && fo(s).activeServer === "main" && fo(s).epoch === main.epoch;
  return fo(s).activeServer === "main" && fo(s).activeEpoch === main.activeEpoch;
};

/** The backup serves; every client follows it at its epoch; a main that is back waits in standby. */
const backupActive: Check = (name, s, all) => {
  const backup = all.backup && fo(all.backup);
  if (!backup || backup.state !== "active" || s.chip !== "Backup is active" || !fo(s).hubConnected) return false;
  if (name === "backup") return fo(s).activeServer === "self" && fo(s).activeEpoch === fo(s).epoch;
  if (name === "main") return fo(s).state === "standby" && fo(s).activeServer === "backup" && fo(s).epoch === backup.epoch;
  return fo(s).activeServer === "backup" && fo(s).activeEpoch === backup.activeEpoch;
};

/** A subscriber on `subOn`, receiving for sure what local apps on `pubOn` publish. */
async function liveSubscriber(c: Cluster, subOn: string, pubOn: string): Promise<Subscriber> {
  const sub = c.subscribe(subOn, "t/#");
  await c.warmUp(sub, pubOn, WARM);
  return sub;
}

/**
 * After the publisher ended: an end marker from the same node flushes the path,
 * then the subscriber must hold seq 1..count of one publisher, in order, once each.
 */
async function expectWholeStream(c: Cluster, sub: Subscriber, pubOn: string, count: number): Promise<void> {
  const end = await c.publish(pubOn, END, "end", { count: 1 });
  expect(end.code).toBe(0);
  await waitFor("the end marker at the subscriber", () => sub.on(END).length > 0, 10_000);
  const got = sub.on(STREAM);
  expect(new Set(got.map((l) => l.from)).size).toBe(1);
  expect(got.map((l) => l.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
}

async function expectPublished(run: Promise<{ code: number; out: string; err: string }>): Promise<void> {
  const { code, err } = await run;
  expect(err).toBe("");
  expect(code).toBe(0);
}

/** Polls for `ms` and returns every sample: for "this never happens" checks, which need a window. */
async function sample<T>(ms: number, probe: () => Promise<T>): Promise<T[]> {
  const samples: T[] = [];
  const until = performance.now() + ms;
  while (performance.now() < until) {
    samples.push(await probe());
    await Bun.sleep(25);
  }
  return samples;
}

const events = (c: Cluster, name: string) => c.logs(name).map((l) => String(l.event));

describe("failover with the real executable", () => {
  test(
    "kill -9 of the main during a stream: the backup takes over, every message arrives once, in order",
    async () => {
      const c = await startCluster({ clients: ["a", "b"] });
      const before = await c.waitAll("the main active, the backup idle, everyone connected", mainActive);
      const epochBefore = fo(before.main!).epoch;
      const sub = await liveSubscriber(c, "b", "a");

      const count = 300;
      const publishing = c.publish("a", STREAM, { cue: 1 }, { count, intervalMs: 5 });
      await waitFor("the stream under way", () => sub.on(STREAM).length >= 50);
      await c.kill("main");
      const killedAt = performance.now();
      expect(sub.on(STREAM).length).toBeLessThan(count);

      const after = await c.waitAll("the backup active, every chip 'Backup is active'", backupActive, { timeoutMs: SWITCH_MS });
      expect(performance.now() - killedAt).toBeLessThan(SWITCH_MS);
      expect(fo(after.backup!).epoch).toBeGreaterThan(epochBefore);
      expect(Object.keys(after).sort()).toEqual(["a", "b", "backup"]);

      await expectPublished(publishing);
      await expectWholeStream(c, sub, "a", count);
    },
    TEST_MS,
  );

  test(
    "SIGSTOP of the main past the timeout, then SIGCONT: one active server afterwards, epochs agree, stream whole",
    async () => {
      const c = await startCluster({ clients: ["a", "b"] });
      const before = await c.waitAll("the main active", mainActive);
      const epochBefore = fo(before.main!).epoch;
      const sub = await liveSubscriber(c, "b", "a");

      const count = 300;
      const publishing = c.publish("a", STREAM, { cue: 2 }, { count, intervalMs: 5 });
      await waitFor("the stream under way", () => sub.on(STREAM).length >= 50);
      c.pause("main");
      const during = await c.waitAll("the backup active while the main is stopped", backupActive, { timeoutMs: SWITCH_MS, skip: ["main"] });
      const takeover = fo(during.backup!).epoch;
      expect(takeover).toBeGreaterThan(epochBefore);
      c.resume("main");

      const end = await c.waitAll(
        "exactly one active server, with every machine on its epoch",
        (name, s, all) => {
          const active = ["main", "backup"].filter((n) => fo(all[n]!).state === "active");
          if (active.length !== 1) return false;
          if (fo(all.main!).epoch !== fo(all.backup!).epoch) return false;
          return active[0] === "main" ? mainActive(name, s, all) : backupActive(name, s, all);
        },
        { timeoutMs: SWITCH_MS },
      );
      // The old main stepped down at once: it saw the backup's higher epoch before serving again.
      expect(events(c, "main").some((e) => e.includes(`The backup is active at epoch ${takeover}`) && e.includes("stepping down"))).toBe(true);
      expect(fo(end.main!).epoch).toBeGreaterThanOrEqual(takeover);

      await expectPublished(publishing);
      await expectWholeStream(c, sub, "a", count);
    },
    TEST_MS,
  );

  test(
    "SIGSTOP shorter than the timeout (defaults 100/1000, 200 ms stop): no failover",
    async () => {
      const c = await startCluster({ ...DEFAULTS, clients: ["a", "b"] });
      const before = await c.waitAll("the main active", mainActive);
      const epoch = fo(before.main!).epoch;

      c.pause("main");
      // The fault itself lasts 200 ms; nothing is being waited for.
      await Bun.sleep(200);
      c.resume("main");
      // Watch for longer than a failover could take: timeout + 2 heartbeats, and as much again.
      const seen = await sample(2 * (DEFAULTS.failoverTimeoutMs + 2 * DEFAULTS.heartbeatMs), () => c.statuses());

      for (const all of seen) {
        expect(fo(all.backup!).state).not.toBe("active");
        for (const s of Object.values(all)) expect(fo(s).epoch).toBe(epoch);
      }
      expect(events(c, "backup").some((e) => e.includes("takes over"))).toBe(false);
      const last = seen.at(-1)!;
      expect(Object.entries(last).every(([n, s]) => mainActive(n, s, last))).toBe(true);
    },
    TEST_MS,
  );

  test(
    "the main restarts after a kill -9: automatic failback, with the state set while the backup served",
    async () => {
      const c = await startCluster({ clients: ["a", "b"] });
      await c.waitAll("the main active", mainActive);
      await c.kill("main");
      const during = await c.waitAll("the backup active", backupActive, { timeoutMs: SWITCH_MS });
      const takeover = fo(during.backup!).epoch;
      await c.set("a", "show/scene", { scene: 7, set: "during the backup period" });

      await c.restart("main");
      const after = await c.waitAll("the main active again, every chip 'Backup is idle'", mainActive, { timeoutMs: SWITCH_MS });
      expect(fo(after.main!).epoch).toBeGreaterThan(takeover);
      expect(Object.keys(after).sort()).toEqual(["a", "b", "backup", "main"]);

      const got = await c.get("b", "show/scene");
      expect(got.value).toEqual({ scene: 7, set: "during the backup period" });
      expect(got.version.epoch).toBe(takeover);
    },
    TEST_MS,
  );

  test(
    "--failback manual: the restarted main waits in standby until someone switches back",
    async () => {
      const c = await startCluster({ clients: ["a"], mainArgs: ["--failback", "manual"] });
      await c.waitAll("the main active", mainActive);
      await c.kill("main");
      const during = await c.waitAll("the backup active", backupActive, { timeoutMs: SWITCH_MS });
      const takeover = fo(during.backup!).epoch;

      await c.restart("main");
      // The main is back and has copied the backup's state; the backup keeps serving.
      const standby = await c.waitAll("the main in standby, the backup still active", backupActive, { timeoutMs: SWITCH_MS });
      expect(fo(standby.backup!).epoch).toBe(takeover);
      // The main's own local apps are served by the backup meanwhile.
      await c.set("main", "show/standby", { set: "on the main, in standby" });
      expect((await c.get("a", "show/standby")).version.epoch).toBe(takeover);

      const ui = c.machine("main").ui;
      const refused = await fetch(`${c.machine("backup").ui}/failover/switch-back`, { method: "POST", headers: { origin: c.machine("backup").ui } });
      expect(refused.status).toBe(409);
      const switched = await fetch(`${ui}/failover/switch-back`, { method: "POST", headers: { origin: ui } });
      expect(switched.status).toBe(200);
      expect(await switched.text()).toContain("Switching back");

      const after = await c.waitAll("the main active after the switch back", mainActive, { timeoutMs: SWITCH_MS });
      expect(fo(after.main!).epoch).toBeGreaterThan(takeover);
      expect((await c.get("a", "show/standby")).value).toEqual({ set: "on the main, in standby" });
      // A second click (a page that had not updated yet) is answered calmly, not with a red 409.
      const again = await fetch(`${ui}/failover/switch-back`, { method: "POST", headers: { origin: ui } });
      expect(again.status).toBe(200);
      expect(await again.text()).toContain("Back on the main server.");
    },
    TEST_MS,
  );

  test(
    "clients started while the main is down follow the backup, and pub/sub works between them",
    async () => {
      const c = await startCluster({});
      await c.waitAll("the main active", mainActive);
      await c.kill("main");
      await c.waitAll("the backup active", backupActive, { timeoutMs: SWITCH_MS });

      await Promise.all([c.startClient("c"), c.startClient("d")]);
      const all = await c.waitAll("the new clients on the backup", backupActive, { timeoutMs: SWITCH_MS });
      expect(Object.keys(all).sort()).toEqual(["backup", "c", "d"]);

      const sub = await liveSubscriber(c, "d", "c");
      const count = 50;
      await expectPublished(c.publish("c", STREAM, { cue: 6 }, { count, intervalMs: 2 }));
      await expectWholeStream(c, sub, "c", count);
    },
    TEST_MS,
  );

  test(
    "a client with another network key is refused, and the main's log names both fingerprints",
    async () => {
      const c = await startCluster({});
      await c.waitAll("the main active", mainActive);
      const otherKey = join(c.dir, "other.key");
      await c.command(["keys", "generate", "--out", otherKey]);
      const ours = (await c.command(["keys", "fingerprint", c.keyFile])).out.trim();
      const theirs = (await c.command(["keys", "fingerprint", otherKey])).out.trim();
      expect(theirs).not.toBe(ours);

      await c.startClient("x", { args: ["--key", otherKey] });
      const refusal = await waitFor(
        "a 'peer refused' line in the main's log",
        () => c.logs("main").find((l) => l.event === "peer refused" && String(l.message).includes("different network key")),
        SWITCH_MS,
      ).catch((error) => {
        throw new Error(`${(error as Error).message}\n${c.describe()}`);
      });
      expect(String(refusal.message)).toContain(ours);
      expect(String(refusal.message)).toContain(theirs);

      // Refused, not merely slow: over a failover timeout and more, it never gets a hub link.
      const seen = await sample(1_000, () => c.status("x"));
      for (const s of seen) {
        expect(fo(s).hubConnected).toBe(false);
        expect(fo(s).activeServer).toBeNull();
      }
      expect(brief(seen.at(-1)!).chip).toBe("No server reachable");
    },
    TEST_MS,
  );
});
