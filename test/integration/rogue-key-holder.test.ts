/**
 * A holder of the network key (a client machine, or an app on one that read
 * its data dir) against real executables: it forges heartbeats as the main
 * and the backup, with fresh echoes it got by posing as a client and any
 * epoch, state and pairing it likes. Nothing any machine believes may change:
 * the backup stays paired and idle, no epoch moves, the client stays on the
 * main (core/heartbeat-trust.ts; the simulator's rogue family runs the same
 * attack across seeds).
 *
 * Then the same key holder as the client it is, in its own name (issue 17,
 * finding 1): epochs + 1 every 50 ms, claiming to follow the backup and to hear
 * the main, relaying the servers' real certificates and tokens. Epochs are
 * believed only as the servers signed them (core/signed-claims.ts), so nothing
 * moves, and a kill -9 of the main is still taken over.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { parseHostPort, type HostPort } from "../../src/core/config.ts";
import { parseNetworkKey } from "../../src/core/keys.ts";
import type { MachineStatus } from "../../src/core/status.ts";
import { HeartbeatCodec, type Heartbeat } from "../../src/net/heartbeat.ts";
import { Cluster, DEFAULTS } from "../support/cluster.ts";
import { HeartbeatRecorder, pretendClientHeartbeat } from "../support/heartbeat-recorder.ts";
import { waitFor } from "../support/wait-for.ts";

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

/**
 * The made-up client of finding 1: a key holder that beats both servers every 50 ms as itself,
 * echoing each server's latest stamp (so its heartbeats count), and says it follows the backup at
 * the highest epoch it has seen + 1 and hears both servers this very moment. It relays whatever the
 * servers signed that it saw (a real certificate put on its made-up epoch, their latest tokens).
 */
class MadeUpClient {
  readonly id = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
  private readonly last = new Map<string, Heartbeat>();
  private highest = 0;
  private seq = 0;
  private running = true;
  sent = 0;

  private constructor(private readonly socket: Bun.udp.Socket<"uint8array">, private readonly codec: HeartbeatCodec) {}

  static async open(networkKey: Uint8Array): Promise<MadeUpClient> {
    let self: MadeUpClient | undefined;
    const codec = new HeartbeatCodec(networkKey);
    const socket = await Bun.udpSocket({
      hostname: "127.0.0.1",
      port: 0,
      binaryType: "uint8array",
      socket: { data: (_s, data, port) => self?.heard(data, port), error: () => {} },
    });
    self = new MadeUpClient(socket, codec);
    return self;
  }

  private heard(data: Uint8Array, port: number): void {
    try {
      const hb = this.codec.decode(data, "server");
      this.last.set(String(port), hb);
      this.highest = Math.max(this.highest, hb.epoch, hb.activeEpoch ?? 0);
    } catch {
      // sealed for someone else: nothing to learn
    }
  }

  /** Beats at both servers every 50 ms until stopped. */
  async run(servers: HostPort[]): Promise<void> {
    while (this.running) {
      const seen = [...this.last.values()];
      const cert = seen.find((h) => h.epochCert)?.epochCert ?? null;
      const claimed = this.highest + 1;
      for (const to of servers) {
        const echo = this.last.get(String(to.port))?.stamp ?? null;
        const hb: Heartbeat = {
          ...pretendClientHeartbeat(this.id, "r0gue0b00t000001", ++this.seq, performance.now(), echo),
          name: "rogue", state: "follow-backup", epoch: claimed, activeEpoch: claimed, msSinceHeardMain: 0, msSinceHeardBackup: 0,
          epochCert: cert ? { e: claimed, s: cert.s } : null,
          mainToken: seen.findLast((h) => h.mainToken)?.mainToken ?? null,
          backupToken: seen.findLast((h) => h.backupToken)?.backupToken ?? null,
        };
        try {
          this.socket.send(this.codec.encode(hb), to.port, to.host);
          this.sent++;
        } catch {
          // the refusal of an earlier send to a dead server; the next beat goes out
        }
      }
      await Bun.sleep(50);
    }
  }

  stop(): void {
    this.running = false;
    this.socket.close();
  }
}

describe("a key holder in its own name, with the real executable (issue 17, finding 1)", () => {
  test(
    "claiming epochs + 1 and to hear the main moves no epoch and no server, a kill -9 of the main is taken over, nothing acknowledged is lost, and the claimant is named",
    async () => {
      const c = (cluster = await Cluster.start({ clients: ["a", "b"] }));
      const onMain = (name: string, s: MachineStatus, all: Record<string, MachineStatus>) =>
        fo(all.main!).state === "active" && fo(all.backup!).state === "idle" && s.chip === "Backup is idle" && (name === "main" || name === "backup" || fo(s).activeServer === "main");
      const before = await c.waitAll("the main serving, the backup idle, the clients on the main", onMain, { timeoutMs: SETTLE_MS });
      const epoch = fo(before.main!).epoch;
      const networkKey = parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile);
      const rogue = await MadeUpClient.open(networkKey);
      const sub = c.subscribe("b", "t/#");
      await c.warmUp(sub, "a", "t/warm");
      const count = 240;
      try {
        const attack = rogue.run([hostPort(c.address("main")), hostPort(c.address("backup"))]);
        const publishing = c.publish("a", "t/stream", { cue: 1 }, { count, intervalMs: 10 });
        // While it claims, for a good while: the main keeps serving at its epoch, nobody's epoch moves.
        const polls: Record<string, MachineStatus>[] = [];
        const until = performance.now() + ATTACK_MS;
        while (performance.now() < until) {
          polls.push(await c.statuses());
          await Bun.sleep(25);
        }
        const moved = polls.find((all) => fo(all.main!).state !== "active" || Object.values(all).some((s) => fo(s).epoch !== epoch));
        expect(moved ? Object.entries(moved).map(([n, s]) => `${n}=${fo(s).state}@${fo(s).epoch}`).join(" ") : "nothing moved").toBe("nothing moved");

        // The main dies; the rogue still says it hears it: the backup takes over all the same.
        await waitFor("half the stream at the subscriber", () => sub.on("t/stream").length >= count / 2, 20_000);
        await c.kill("main");
        await c.waitAll("the backup serving, every client on it", (name, s, all) => fo(all.backup!).state === "active" && (name === "backup" || fo(s).activeServer === "backup"), { timeoutMs: 5_000 });
        const published = await publishing;
        expect([published.code, published.err]).toEqual([0, ""]);
        const end = await c.publish("a", "t/end", "end", { count: 1 });
        expect(end.code).toBe(0);
        await waitFor("the end marker at the subscriber", () => sub.on("t/end").length > 0, 10_000);
        expect(sub.on("t/stream").map((l) => l.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
        rogue.stop();
        await attack;
      } finally {
        rogue.stop();
      }
      expect(rogue.sent).toBeGreaterThan(40);
      // Named by machine id in the log, counted in /metrics, marked on the Machines panel.
      expect(c.describe(400)).toContain(`Machine ${rogue.id} sent`);
      const backup = await c.status("backup");
      expect(fo(backup).peers.find((p) => p.id === rogue.id)?.unbackedClaims ?? 0).toBeGreaterThan(0);
      const metrics = await (await fetch(`${c.machine("backup").ui}/metrics`)).text();
      expect(metrics).toContain(`understudy_unbacked_claims_total{machine="${rogue.id}",name="rogue"}`);
      const machines = await (await fetch(`${c.machine("backup").ui}/machines`)).text();
      expect(machines).toMatch(new RegExp(`data-machine-id="${rogue.id}"[^>]*class="[^"]*claimant`));
    },
    90_000,
  );
});
