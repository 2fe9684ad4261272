/**
 * A holder of the network key (a client machine, or an app on one that read
 * its data dir) against real executables: it forges heartbeats as the main
 * and the backup, with fresh echoes it got by posing as a client and any
 * epoch, state and pairing it likes. Nothing any machine believes may change:
 * the backup stays paired and idle, no epoch moves, the client stays on the
 * main (core/heartbeat-trust.ts; the simulator's rogue family runs the same
 * attack across seeds).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { parseHostPort, type HostPort } from "../../src/core/config.ts";
import { parseNetworkKey } from "../../src/core/keys.ts";
import type { MachineStatus } from "../../src/core/status.ts";
import { HeartbeatCodec, type Heartbeat } from "../../src/net/heartbeat.ts";
import { Cluster, DEFAULTS } from "../support/cluster.ts";
import { HeartbeatRecorder } from "../support/heartbeat-recorder.ts";

const SETTLE_MS = 15_000;
const ATTACK_MS = 3_000;

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

const fo = (s: MachineStatus) => s.failover!;

function hostPort(address: string): HostPort {
  const at = parseHostPort(address);
  if (!at) throw new Error(`not an address: ${address}`);
  return at;
}

describe("a rogue holder of the network key, with the real executable", () => {
  test(
    "forged heartbeats as the main and the backup change nothing: no unpairing, no epoch, no client moves",
    async () => {
      // Product timings: a loaded test machine must not fail over by itself while the test says "nothing moved".
      const c = (cluster = await Cluster.start({ ...DEFAULTS, clients: ["a"] }));
      const before = await c.waitAll(
        "the main serving, the backup idle, the client on the main",
        (name, s, all) => fo(all.main!).state === "active" && fo(all.backup!).state === "idle" && (name !== "a" || fo(s).activeServer === "main"),
        { timeoutMs: SETTLE_MS },
      );
      const mainId = before.main!.id;
      const backupId = before.backup!.id;
      const epoch = fo(before.main!).epoch;
      const networkKey = parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile);
      const codec = new HeartbeatCodec(networkKey);
      const targets = { main: hostPort(c.address("main")), backup: hostPort(c.address("backup")), a: hostPort(c.peer("a")) };
      // One pretend client per target: what each answers carries its latest stamp, a fresh echo for the forgeries.
      const spies = { main: await HeartbeatRecorder.open(networkKey), backup: await HeartbeatRecorder.open(networkKey), a: await HeartbeatRecorder.open(networkKey) };
      const freshEcho = (target: keyof typeof spies): Heartbeat["echo"] => {
        const last = spies[target].datagrams.at(-1);
        return last ? (spies[target].open(last)?.stamp ?? null) : null;
      };
      let seq = 1_000_000;
      const forged = (claim: { id: string; role: "main" | "backup" }, echo: Heartbeat["echo"], extra: Partial<Heartbeat>): Heartbeat => ({
        id: claim.id, role: claim.role, state: "active", epoch: epoch + 1000, activeEpoch: epoch + 1000,
        stamp: { boot: "r0gue0b00t000000", seq: ++seq, sentAt: performance.now() }, echo, echoHeldMs: 0, challenge: false,
        showFileRevision: 0, msSinceHeardMain: 0, msSinceHeardBackup: 0, condition: null, syncProgress: null, pairedWith: null,
        lanes: { hubEpoch: epoch + 1000, hubSeq: 1_000_000, logId: "forged", logSeq: 1_000_000 }, hubCopied: true, name: claim.role, ...extra,
      });
      const polls: Record<string, MachineStatus>[] = [];
      try {
        const recording = Promise.all((Object.keys(spies) as (keyof typeof spies)[]).map((t) => spies[t].record(targets[t], ATTACK_MS)));
        const until = performance.now() + ATTACK_MS;
        while (performance.now() < until) {
          // To the backup, "the main" names no backup (it would unpair) and serves far ahead; to the main and
          // the client, "the backup" serves at a higher epoch (the main would step down, the client move).
          spies.backup.replay(codec.encode(forged({ id: mainId, role: "main" }, freshEcho("backup"), { pairedWith: null })), targets.backup);
          spies.main.replay(codec.encode(forged({ id: backupId, role: "backup" }, freshEcho("main"), { pairedWith: mainId })), targets.main);
          spies.a.replay(codec.encode(forged({ id: backupId, role: "backup" }, freshEcho("a"), { pairedWith: mainId })), targets.a);
          spies.a.replay(codec.encode(forged({ id: mainId, role: "main" }, freshEcho("a"), { state: "standby", activeEpoch: null })), targets.a);
          polls.push(await c.statuses());
          await Bun.sleep(20);
        }
        await recording;
      } finally {
        for (const spy of Object.values(spies)) spy.close();
      }
      expect(polls.length).toBeGreaterThan(10);
      const moved = polls.find(
        (all) =>
          fo(all.main!).state !== "active" || fo(all.backup!).state !== "idle" || fo(all.a!).activeServer !== "main" || fo(all.backup!).pairing === null ||
          Object.values(all).some((s) => fo(s).epoch !== epoch),
      );
      expect(moved ? Object.entries(moved).map(([n, s]) => `${n}=${fo(s).state}@${fo(s).epoch}/${fo(s).activeServer}/${s.chip}`).join(" ") : "nothing moved").toBe("nothing moved");
      // The machines said why they ignored the forgeries, in words.
      expect(c.describe(400)).toContain("without its machine key");
    },
    60_000,
  );
});
