/**
 * A machine's Data Hub side (src/machine/data-hub-parts.ts), the one wiring the
 * machine and the simulator both run: what it serves for each role, where the
 * uplink goes, serving, and the main's catch-up with its copy mark, over the
 * in-memory PeerNet on manual time.
 */
import { describe, expect, test } from "bun:test";
import type { HostPort } from "../../../src/core/config.ts";
import type { NodeState, Role, ServerRole } from "../../../src/core/failover/index.ts";
import type { Version } from "../../../src/hub/frames.ts";
import { ZERO_VERSION } from "../../../src/hub/hub-core.ts";
import type { HubStateChange, HubStatePersistence, PersistedHubState, RetainedEntry } from "../../../src/hub/retained-state.ts";
import { DataHubParts, PRESENCE_MS, type CopyMarks } from "../../../src/machine/data-hub-parts.ts";
import { fetchHubStateChanges } from "../../../src/services/hub-state-replication.ts";
import { ROLE_PLANS } from "../../../src/machine/role-plan.ts";
import type { PeerService } from "../../../src/net/peer-net.ts";
import { MemoryNetwork, type MemoryPeerNet } from "../../../src/net/peer-net-memory.ts";
import { ManualTimers } from "../../support/clock.ts";

const QUIET = { info() {}, warn() {}, error() {} };
const KEY = new Uint8Array(32).fill(3);

class MemoryHubState implements HubStatePersistence {
  readonly entries = new Map<string, RetainedEntry>();
  last: Version = ZERO_VERSION;

  load(): PersistedHubState {
    return { entries: [...this.entries.values()], setMarks: [], lastVersion: this.last, prunedThrough: ZERO_VERSION };
  }

  apply(change: HubStateChange): void {
    for (const e of change.entries) this.entries.set(e.key, e);
    for (const k of change.removedKeys) this.entries.delete(k);
    this.last = change.lastVersion;
  }
}

function memoryMarks(): CopyMarks & { mark: { peerId: string; through: Version } | null } {
  const marks = {
    mark: null as { peerId: string; through: Version } | null,
    read: (peerId: string) => (marks.mark?.peerId === peerId ? marks.mark.through : null),
    write: (peerId: string, through: Version) => void (marks.mark = { peerId, through }),
  };
  return marks;
}

/** A server's core state as far as the Data Hub side reads it (its pairing and phase). */
const serverState = (role: ServerRole, peerId: string | null, phase: string) => ({ role, peerId, phase: { kind: phase } }) as unknown as NodeState;

function network() {
  const timers = new ManualTimers();
  const net = new MemoryNetwork({ clock: timers.clock, latencyMs: () => 1, random: () => 0.5, fingerprint: (k) => `fp${k[0]}` });
  /** Moves time on in small steps, letting promise callbacks run between them. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 5) {
      timers.advance(5);
      await Bun.sleep(0);
    }
  };
  return { timers, net, run };
}

function parts(
  o: { role: Role; net?: MemoryNetwork; timers?: ManualTimers; host?: string; current?: () => NodeState | null; at?: Partial<Record<ServerRole, HostPort>>; marks?: CopyMarks },
) {
  const timers = o.timers ?? new ManualTimers();
  const host = o.host ?? o.role;
  const served: string[] = [];
  const peer: MemoryPeerNet | null = o.net ? o.net.attach({ at: { host, port: 7400 }, machineId: host, publicKey: new Uint8Array([1]), networkKey: KEY, timers }) : null;
  const told: string[] = [];
  const dataHub = new DataHubParts({
    plan: ROLE_PLANS[o.role],
    node: { id: host, name: host },
    net: peer ?? { dial: () => Promise.reject(new Error("no network")) },
    serve: (service: PeerService) => (served.push(service.path), peer?.serve(service)),
    networkKey: KEY,
    hubState: o.role === "client" ? null : { persistence: new MemoryHubState(), epoch: 1, copyMarks: o.marks ?? memoryMarks() },
    current: o.current ?? (() => null),
    serverAt: (role) => o.at?.[role] ?? null,
    followAt: (role) => o.at?.[role] ?? null,
    runner: { feed: (event) => told.push(event.type), linkBroken: (role) => told.push(`broken ${role}`) },
    heartbeatMs: 100,
    retainAckedMs: 10_000,
    log: QUIET,
    clock: timers.clock,
    timers,
  });
  return { dataHub, served, timers, told };
}

describe("DataHubParts", () => {
  test("a server serves /hub and /replicate and announces presence each second; a client holds no hub", () => {
    const server = parts({ role: "backup" });
    expect(server.served).toEqual(["/hub", "/replicate"]);
    expect(server.dataHub.hub).not.toBeNull();
    const client = parts({ role: "client" });
    expect(client.served).toEqual([]);
    expect(client.dataHub.hub).toBeNull();
    // The client's gateway pings; the server adds its copy and the presence timer.
    expect(server.timers.count).toBeGreaterThan(client.timers.count);
    let announced = 0;
    server.dataHub.hub!.announcePresence = () => void (announced += 1);
    server.timers.advance(3 * PRESENCE_MS);
    expect(announced).toBe(3);
    server.dataHub.stop();
    client.dataHub.stop();
    expect(server.timers.count).toBe(0);
  });

  test("the uplink follows the core's target at the address the machine knows for that server, or nowhere", () => {
    const main = { host: "10.0.0.1", port: 7400 };
    const { dataHub } = parts({ role: "client", at: { main } });
    dataHub.follow({ server: "main", epoch: 1 });
    expect(dataHub.gateway.following).toEqual({ role: "main", address: main });
    dataHub.follow({ server: "backup", epoch: 2 });
    expect(dataHub.gateway.following).toBeNull();
    dataHub.stop();
  });

  test("the runner's serving effects: writes accepted at its epoch, refused after", () => {
    const { dataHub } = parts({ role: "main" });
    dataHub.startServing(3);
    expect(dataHub.hub!.core.writable).toBe(true);
    expect(dataHub.hub!.core.epoch).toBe(3);
    dataHub.stopServing(3);
    expect(dataHub.hub!.core.writable).toBe(false);
    dataHub.stop();
  });

  test("/replicate answers only the server this one is paired with: another holder of the network key is refused", async () => {
    const { timers, net, run } = network();
    let paired: string | null = "main";
    const backup = parts({ role: "backup", net, timers, current: () => serverState("backup", paired, "idle") });
    const dialFrom = (host: string) => net.attach({ at: { host, port: 7400 }, machineId: host, publicKey: new Uint8Array([2]), networkKey: KEY, timers });
    const ask = async (host: string) => {
      const asking = fetchHubStateChanges(dialFrom(host), { host: "backup", port: 7400 }, ZERO_VERSION, () => {}, timers).then(() => "answered", (e: Error) => e.message);
      await run(100);
      return asking;
    };
    expect(await ask("rogue")).toContain("did not send its Data Hub state");
    expect(await ask("main")).toBe("answered");
    paired = null; // removed: nobody copies from it any more
    expect(await ask("main")).toContain("did not send its Data Hub state");
    backup.dataHub.stop();
  });

  test("the main's catch-up imports what changed on the backup and keeps the mark for the backup it is paired with", async () => {
    const { timers, net, run } = network();
    const backup = parts({ role: "backup", net, timers, current: () => serverState("backup", "main", "active") });
    backup.dataHub.startServing(2);
    backup.dataHub.follow({ server: "self", epoch: 2 });
    const acked: number[] = [];
    const app = backup.dataHub.gateway.attachApp("writer", (frame) => frame.type === "ack" && acked.push(frame.seq));
    app.send({ type: "set", key: "show/cue", value: 7, origin: "writer.1", seq: 1 });
    await run(50);
    expect(acked).toEqual([1]);

    const marks = memoryMarks();
    const main = parts({ role: "main", net, timers, marks, current: () => serverState("main", "backup", "rejoining"), at: { backup: { host: "backup", port: 7400 } } });
    const caughtUp = main.dataHub.catchUp();
    await run(100);
    await caughtUp;
    expect(main.dataHub.hub!.core.retainedEntry("show/cue")?.value).toBe(7);
    expect(marks.mark?.peerId).toBe("backup");
    expect(marks.mark?.through.epoch).toBe(2);
    backup.dataHub.stop();
    main.dataHub.stop();
  });

  // A main served epoch 1, the backup epoch 2 without the main copying it, then the main took over at 3 owing the
  // backup's writes (its backup was silent): its own newest version is then above the backup's writes it lacks.
  for (const restarted of [false, true]) {
    test(`a main that begins serving owing the backup's writes keeps where it stood as its mark, and its catch-up ${restarted ? "after a restart" : "while serving"} gets them`, async () => {
      const { timers, net, run } = network();
      let mainPhase: object = { kind: "active", catchUp: { kind: "done" } };
      const marks = memoryMarks();
      const main = parts({ role: "main", net, timers, marks, current: () => ({ role: "main", peerId: "backup", phase: mainPhase }) as unknown as NodeState, at: { backup: { host: "backup", port: 7400 } } });
      main.dataHub.startServing(1);
      main.dataHub.follow({ server: "self", epoch: 1 });
      const own = main.dataHub.gateway.attachApp("own", () => {});
      own.send({ type: "set", key: "show/early", value: 1, origin: "own.1", seq: 1 });
      await run(50);
      main.dataHub.stopServing(1);
      main.dataHub.follow({ server: null, epoch: null });
      expect(marks.mark).toBeNull(); // it owed nothing: no mark

      const backup = parts({ role: "backup", net, timers, current: () => serverState("backup", "main", "idle") });
      backup.dataHub.startServing(2);
      backup.dataHub.follow({ server: "self", epoch: 2 });
      const app = backup.dataHub.gateway.attachApp("writer", () => {});
      app.send({ type: "set", key: "show/cue", value: 7, origin: "writer.1", seq: 1 });
      app.send({ type: "set", key: "show/title", value: "old", origin: "writer.1", seq: 2 });
      app.send({ type: "set", key: "show/lower", value: "only here", origin: "writer.1", seq: 3 });
      await run(50);
      backup.dataHub.stopServing(2);

      const held = main.dataHub.hub!.core.lastVersion;
      mainPhase = { kind: "active", catchUp: { kind: "idle", retryAt: 0 } };
      main.dataHub.startServing(3);
      expect(marks.mark).toEqual({ peerId: "backup", through: held });
      main.dataHub.follow({ server: "self", epoch: 3 });
      own.send({ type: "set", key: "show/cue", value: 9, origin: "own.1", seq: 2 });
      own.send({ type: "set", key: "show/title", value: "news", origin: "own.1", seq: 3 });
      await run(50);
      if (restarted) main.dataHub.stopServing(3);

      const caughtUp = main.dataHub.catchUp();
      await run(100);
      await caughtUp;
      const value = (key: string) => main.dataHub.hub!.core.retainedEntry(key)?.value;
      expect(value("show/lower")).toBe("only here"); // the backup's write, older than the main's epoch
      expect(value("show/cue")).toBe(9); // the main's own newer writes win
      expect(value("show/title")).toBe("news");
      expect(marks.mark?.through.epoch).toBe(2);
      backup.dataHub.stop();
      main.dataHub.stop();
    });
  }
});
