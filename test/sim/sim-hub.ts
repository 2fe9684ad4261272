/**
 * What runs on each machine beside its runner, with the objects a machine
 * runs, over the library's in-memory peer port (src/net/peer-net-memory.ts)
 * with the world's links' faults, wired as peer-runtime.ts wires them:
 * - the Data Hub: each server's production HubService over its HubCore (its
 *   `/hub` and `/replicate` sides, start / stop serving, presence and replay
 *   trimming each second, a new network key), each machine's production
 *   AppGateway (its HubUplink with the acked-writes resend, replay and
 *   de-duplication, its ServerLink, the refusal back-off, frame batching and
 *   sealed broadcasts) and two in-process apps on it, one subscribing and one
 *   publishing;
 * - the Data Hub state's copy: the backup's production HubStateReplication
 *   against the main's /replicate, and the main back after the backup served
 *   running the production catch-up (fetchHubStateChanges), imported by its HubService;
 * - the show-file log lane (sim-lanes.ts): the production LogReplicationSource
 *   and LogReplicationSink over SQLite in memory (Bun only).
 * The runner's startServing / stopServing / uplink effects drive them. The
 * simulator only taps them for its ledgers (hub-ledger.ts, sim-lanes.ts) and
 * keeps each server's retained state on a disk that survives a crash.
 *
 * Invariants checked here besides the ledgers':
 *  HL1 a paired backup idle beside the active main at the end of a run
 *      holds the main's Data Hub state, entry for entry (the lane converged).
 */
import { ackedRetentionMs } from "../../src/hub/acked-writes.ts";
import type { ToHubFrame, Version } from "../../src/hub/frames.ts";
import type { HubUplink } from "../../src/hub/hub-uplink.ts";
import { HubCore, ZERO_VERSION } from "../../src/hub/hub-core.ts";
import type { HubStateChange, HubStateChanges, HubStatePersistence, PersistedHubState, RetainedEntry, SetMark } from "../../src/hub/retained-state.ts";
import type { UplinkTarget } from "../../src/core/routing.ts";
import type { Timers } from "../../src/core/clock.ts";
import type { HostPort } from "../../src/core/config.ts";
import { Rng } from "./prng.ts";
import type { ServerRole } from "../../src/core/failover/index.ts";
import { pairedPeer, replicationSource } from "../../src/core/routing.ts";
import { AppGateway, type InProcessApp, type LocalHub } from "../../src/services/app-gateway.ts";
import { HubService } from "../../src/services/hub-service.ts";
import { catchUpFrom, HubStateReplication, type CopyMark } from "../../src/services/hub-state-replication.ts";
import { PeerRefusals } from "../../src/net/peer-refusals.ts";
import type { PeerDialer, PeerService } from "../../src/net/peer-net.ts";
import { MemoryNetwork, type MemoryPeerNet } from "../../src/net/peer-net-memory.ts";
import type { ConnectionEvents } from "../../src/net/secure-socket.ts";
import { HubLedger } from "./hub-ledger.ts";
import { StandbyCopyCheck } from "./standby-copy-check.ts";
import { machineDefer, machineLogger, machineTimers, QUIET, settlingDialer, settlingService } from "./machine-io.ts";
import type { LogLanes } from "./sim-lanes.ts";
import type { Machinery, SimNode, World } from "./world.ts";
import { simMachineKey } from "./sim-pairing.ts";

/** The log lane needs bun:sqlite: under Deno the simulator runs without it. */
const lanesModule = "Bun" in globalThis ? await import("./sim-lanes.ts") : null;

/** hub-service's presence and trim period (peer-runtime.ts). */
const PRESENCE_MS = 1000;
/** The gateway's timer period, over which the ledger notices a stopped process (app-gateway.ts PING_MS). */
const STALL_PROBE_MS = 1000;
const PUBLISHERS: readonly string[] = ["c1", "main", "backup"];

/** A network key per generation number (the network-key family saves a new one). */
const keyBytes = (generation: number): Uint8Array => new Uint8Array(32).fill(generation);

/** A server's retained Data Hub state on its disk (store/hub-state-store.ts in memory): it survives a crash. */
class DiskHubState implements HubStatePersistence {
  readonly #entries = new Map<string, RetainedEntry>();
  readonly #marks = new Map<string, SetMark>();
  #last = ZERO_VERSION;
  #pruned = ZERO_VERSION;

  load(): PersistedHubState {
    return { entries: [...this.#entries.values()], setMarks: [...this.#marks.values()], lastVersion: this.#last, prunedThrough: this.#pruned };
  }

  apply(change: HubStateChange): void {
    for (const e of change.entries) this.#entries.set(e.key, e);
    for (const k of change.removedKeys) this.#entries.delete(k);
    for (const m of change.setMarks) this.#marks.set(m.origin, m);
    for (const o of change.removedMarks) this.#marks.delete(o);
    this.#last = change.lastVersion;
    this.#pruned = change.prunedThrough;
  }
}

/** One machine's incarnation: its hub (servers), gateway and apps. */
type Machine = {
  readonly inc: number;
  readonly hub: HubService | null;
  readonly replication: HubStateReplication | null;
  readonly gateway: AppGateway;
  readonly pub: InProcessApp;
  readonly origin: string;
  seq: number;
  /** When its stall probe last ran, and the stretches its process was stopped (the probe ran late by a second or more). */
  lastProbe: number;
  readonly stalls: [number, number][];
};

export class SimHub implements Machinery {
  readonly net: MemoryNetwork;
  readonly #peers = new Map<string, MemoryPeerNet>();
  readonly #machines = new Map<string, Machine>();
  readonly #rng: Rng;
  readonly ledger: HubLedger;
  /** The show-file log lane, where bun:sqlite runs. */
  readonly lanes: LogLanes | null;
  /** Apps publish only in this window (run.ts sets it: from warm-up until faults stop). */
  publishing = { from: Infinity, to: -Infinity };
  /** HL2: what the backup held while the main waited to be switched back reaches the main. */
  readonly standbyCopy: StandbyCopyCheck;
  /** Runs whose end HL1 judged (a paired backup idle beside the active main). */
  lanesJudged = 0;
  readonly #violations: string[] = [];

  constructor(
    readonly world: World,
    seed: number,
  ) {
    this.#rng = new Rng(seed ^ 0x5bd1e995);
    const rng = this.#rng;
    const { heartbeatMs: h, failoverTimeoutMs: T } = world.cfg.timings;
    this.ledger = new HubLedger(world, ackedRetentionMs(world.cfg.timings));
    this.lanes = lanesModule ? new lanesModule.LogLanes(world, 2 * T) : null;
    this.standbyCopy = new StandbyCopyCheck(world, (name) => this.keyOf(name));
    // HL2's sample of the backup's state while the main waits, every heartbeat (silent in the trace).
    const sample = (): void => {
      this.standbyCopy.sample(this.#machines.get("main")?.hub?.core ?? null, this.#machines.get("backup")?.hub?.core ?? null);
      world.at(world.now() + h, "", sample);
    };
    world.at(h, "", sample);
    this.net = new MemoryNetwork({
      clock: world.clock,
      latencyMs: () => world.latency(),
      random: () => rng.next(),
      // A connect across a cut gives up within two heartbeats (the gateway then retries), so a healed link is used soon.
      connectTimeoutMs: 2 * h,
      retransmitMs: () => rng.int(h, 4 * h),
      fingerprint: (key) => `key-${key[0]}`,
      // The world's links, as the checker reads them.
      links: (from, to) => {
        const l = world.linkState(world.nameAt(from) ?? from, world.nameAt(to) ?? to);
        return { cut: l.cut, delayMs: l.extraDelay, loss: l.loss, drop: 0, duplicate: 0 };
      },
    });
  }

  /** This machine's peer port (null while it is down): the pairing exchange runs on it too (sim-pairing.ts). */
  peerOf(n: SimNode): MemoryPeerNet | null {
    return this.#peers.get(n.name) ?? null;
  }

  get published(): number {
    return this.ledger.published;
  }

  get delivered(): number {
    return this.ledger.delivered;
  }

  get judged(): number {
    return this.ledger.judged;
  }

  get beyondRetention(): number {
    return this.ledger.beyondRetention;
  }

  started(n: SimNode): void {
    const w = this.world;
    const timers = machineTimers(this.world, n, false);
    const defer = machineDefer(this.world, n);
    const log = machineLogger(this.world, n);
    const peer = this.net.attach({
      at: { host: w.addressOf(n.name), port: 0 },
      machineId: n.name,
      publicKey: simMachineKey(n.name),
      networkKey: keyBytes(this.keyOf(n.name)),
      timers,
    });
    this.#peers.set(n.name, peer);
    this.#subscribedFrom.delete(n.name);
    const serve = (service: PeerService) => peer.serve(settlingService(this.world, service));
    const net = settlingDialer(this.world, peer);
    // The server to copy from now (machine/server-copy.ts): core's replicationSource, at the address its setup names now.
    const from = (): ServerRole | null => replicationSource(n.state);
    const source = (): HostPort | null => {
      const role = from();
      return role === null ? null : (n.runner?.serverAddress(role) ?? null);
    };
    const mainSource = (): HostPort | null => (from() === "main" ? source() : null);
    let hub: HubService | null = null;
    let replication: HubStateReplication | null = null;
    if (n.role !== "client") {
      let disk = this.#disks.get(n.name);
      if (!disk) this.#disks.set(n.name, (disk = new DiskHubState()));
      const core = new HubCore({ epoch: n.disk.epoch, streamId: `${n.name}-${n.inc}`, persistence: disk });
      const service = (hub = new HubService(core, keyBytes(this.keyOf(n.name)), log, { defer }));
      serve({ path: "/hub", accept: (c) => this.#tapHub(n, service, service.acceptHub(c), c.peer.machineId) });
      serve({ path: "/replicate", accept: (c) => service.acceptReplication(c) });
      this.#syncLane(n, core);
      replication = this.#replication(n, service, net, source, timers);
      this.lanes?.started({ node: n, serve, net, timers, clock: w.clock, log, source: mainSource, random: () => this.#rng.next() });
    }
    const gateway = new AppGateway({
      node: { id: n.name, name: n.name },
      net,
      networkKey: keyBytes(this.keyOf(n.name)),
      log,
      onLinkBroken: (role) => w.connectionBroke(n, role),
      localHub: () => (hub ? this.#tapLocal(n, hub) : null),
      random: () => this.#rng.next(),
      retainAckedMs: this.ledger.retentionMs,
      clock: w.clock,
      timers,
      defer,
    });
    this.#tapUplink(n, gateway.uplink);
    this.ledger.started(n);
    const sub = gateway.attachApp("sub", (frame) => this.ledger.got(n, frame));
    const origin = `${n.name}.${n.inc}`;
    const pub = gateway.attachApp("pub", (frame) => frame.type === "ack" && this.ledger.acked(frame.origin, frame.seq));
    const machine: Machine = { inc: n.inc, hub, replication, gateway, pub, origin, seq: 0, lastProbe: w.now(), stalls: [] };
    this.#machines.set(n.name, machine);
    // The subscriber app subscribes at once; its node subscribes upstream whenever it attaches.
    sub.send({ type: "sub", filter: "t/#" });
    const inc = n.inc;
    const every = (ms: number, run: () => void) => {
      const again = (): void => {
        run();
        w.postAt(n.name, w.now() + ms, inc, again);
      };
      w.postAt(n.name, w.now() + this.#rng.int(1, ms), inc, again);
    };
    // The ledger's probe of a stopped process (a stop late by a second or more is a stall).
    every(STALL_PROBE_MS, () => {
      if (w.now() - machine.lastProbe >= 2 * STALL_PROBE_MS) machine.stalls.push([machine.lastProbe + STALL_PROBE_MS, w.now()]);
      machine.lastProbe = w.now();
    });
    // Each second while a server runs (peer-runtime.ts): replay trimmed by age, presence to every member.
    if (hub) {
      const server = hub;
      every(PRESENCE_MS, () => {
        server.core.trimReplay(w.now());
        server.announcePresence();
      });
    }
    // Every machine's app subscribes; three publish (a client and both servers' own apps), to keep the run cheap.
    if (!PUBLISHERS.includes(n.name)) return;
    const h = w.cfg.timings.heartbeatMs;
    const publish = (): void => {
      const now = w.now();
      if (now >= this.publishing.from && now < this.publishing.to) this.#publish(n, machine);
      w.postAt(n.name, now + this.#rng.int(h, 6 * h), inc, publish);
    };
    w.postAt(n.name, w.now() + this.#rng.int(1, h), inc, publish);
  }

  crashed(n: SimNode): void {
    this.#servingNow(n.name, false);
    this.#peers.get(n.name)?.crash();
    this.#peers.delete(n.name);
    this.#machines.delete(n.name);
    this.ledger.crashed(n);
    this.lanes?.crashed(n);
  }

  startServing(n: SimNode, epoch: number): void {
    this.#machines.get(n.name)?.hub?.startServing(epoch);
    this.#servingNow(n.name, true);
    this.lanes?.startedServing(n);
  }

  stopServing(n: SimNode): void {
    this.#machines.get(n.name)?.hub?.stopServing();
    this.#servingNow(n.name, false);
  }

  /** peer-runtime.ts followUplink: self, or the address the setup names for that server. */
  uplink(n: SimNode, target: UplinkTarget): void {
    const gateway = this.#machines.get(n.name)?.gateway;
    if (!gateway) return;
    if (target.server === "self") return gateway.follow({ role: "self" });
    // The address the setup names (the runner's), as peer-runtime.ts reads its servers; before the runner exists, the world's.
    const at = target.server === null ? null : n.runner ? n.runner.serverAddress(target.server) : this.world.endpointOf(target.server);
    const known = target.server !== null && (n.role !== "client" || n.knows[target.server]);
    gateway.follow(target.server !== null && known && at ? { role: target.server, address: at } : null);
  }

  writeHub(main: SimNode): void {
    const m = this.#machines.get(main.name);
    if (!m) return;
    m.seq += 1;
    m.pub.send({ type: "set", key: `s/${main.name}/${m.seq % 5}`, value: m.seq, origin: m.origin, seq: m.seq });
  }

  writeLog(main: SimNode): void {
    this.lanes?.write(main);
  }

  /**
   * The main's catch-up as peer-runtime.ts catchUp runs it (catchUpFrom): what changed on the backup since
   * the copy mark its standby copy left (else its own last version), imported by its HubService; any failure is a failed copy.
   */
  catchUp(main: SimNode, done: (ok: boolean) => void): void {
    const [peer, hub, inc] = [this.#peers.get(main.name), this.#machines.get(main.name)?.hub, main.inc];
    if (!peer || !hub) return done(false);
    const live = () => main.inc === inc && !!main.state;
    // A restarted main's answer is not imported, and its mark not moved.
    const importing = {
      core: hub.core,
      importChanges: (changes: HubStateChanges) => {
        if (!live()) throw new Error("The main restarted.");
        hub.importChanges(changes);
      },
    };
    catchUpFrom(settlingDialer(this.world, peer), this.world.endpointOf("backup"), importing, this.#copyMark(main), machineTimers(this.world, main, false)).then(
      () => {
        if (!live()) return;
        this.#syncLane(main, hub.core);
        this.catchUps.ok += 1;
        done(true);
      },
      () => {
        if (!live()) return;
        this.catchUps.failed += 1;
        done(false);
      },
    );
  }

  /** How the main's catch-ups ended (the test checks they really copied). */
  readonly catchUps = { ok: 0, failed: 0 };

  /** Each machine's network key (a generation number; all start on 1). Heartbeats are sealed with pair keys and do not depend on it. */
  readonly #keys = new Map<string, number>();

  keyOf(name: string): number {
    return this.#keys.get(name) ?? 1;
  }

  /** A new network key saved on a machine, taken as peer-runtime.ts setNetworkKey takes it: the port, the hub, the gateway, the copies. */
  setKey(name: string, key: number): void {
    this.world.log(`NETWORK KEY ${key} on ${name}`);
    this.#keys.set(name, key);
    const bytes = keyBytes(key);
    this.#peers.get(name)?.setNetworkKey(bytes);
    const m = this.#machines.get(name);
    m?.hub?.setNetworkKey(bytes);
    m?.gateway.setNetworkKey(bytes);
    m?.replication?.restart();
    const n = this.world.nodes.get(name);
    if (n) this.lanes?.keyChanged(n);
  }

  /** At the end of a run: the ledgers' invariants and HL1. */
  check(): string[] {
    if (this.#splitSince !== null) this.#splits.push([this.#splitSince, this.world.now()]);
    this.ledger.check(this.#splits);
    this.#checkLanes();
    this.lanes?.check();
    const standby = this.standbyCopy.check(this.#machines.get("main")?.hub?.core ?? null);
    for (const what of standby) this.world.log(`VIOLATION ${what}`);
    return [...this.ledger.violations, ...this.#violations, ...standby.map((what) => `t=${this.world.now()}: ${what}`), ...(this.lanes?.violations ?? [])];
  }

  /**
   * The Data Hub copy as a server runs it (machine/server-copy.ts): each server runs HubStateReplication
   * over its peer port, copying from whom core's replicationSource says (a backup from the main, a main
   * waiting to be switched back from the backup); a copy from the main reports its first answer as
   * syncDone and a broken link as the main's; a new pairing starts it afresh (peer-runtime.ts).
   */
  #replication(n: SimNode, hub: HubService, net: PeerDialer, source: () => HostPort | null, timers: Timers): HubStateReplication {
    const w = this.world;
    const replication = new HubStateReplication({
      net,
      source,
      hub: {
        importChanges: (changes) => {
          hub.importChanges(changes);
          this.#syncLane(n, hub.core);
        },
      },
      periodMs: w.cfg.timings.heartbeatMs,
      refusals: new PeerRefusals(w.clock, QUIET, () => this.#rng.next()),
      mark: this.#copyMark(n),
      signals: {
        synced: () => void (replicationSource(n.state) === "main" && w.feed(n, { type: "syncDone" })),
        broken: () => void (replicationSource(n.state) === "main" && w.connectionBroke(n, "main")),
      },
      timers,
    });
    // The partnership's `changed` (peer-runtime.ts): a new pairing is copied afresh.
    let pairedWith = n.disk.pairing?.peerId ?? null;
    timers.every(w.cfg.timings.heartbeatMs, () => {
      const now = n.disk.pairing?.peerId ?? null;
      if (now !== pairedWith) replication.restart();
      pairedWith = now;
    });
    return replication;
  }

  /**
   * A server's copy mark on its disk (store/copy-mark-file.ts as server-data.ts copyMark uses it):
   * the `through` of the last answer imported, for the server it is paired with; survives a crash.
   */
  #copyMark(n: SimNode): CopyMark {
    const disk = this.#marks;
    return {
      read: () => {
        const peer = pairedPeer(n.state);
        const mark = disk.get(n.name);
        return peer !== null && mark?.peerId === peer ? mark.through : null;
      },
      write: (through) => {
        const peer = pairedPeer(n.state);
        if (peer !== null) disk.set(n.name, { peerId: peer, through });
      },
    };
  }

  readonly #marks = new Map<string, { peerId: string; through: Version }>();

  /** Each server's retained state on disk. */
  readonly #disks = new Map<string, DiskHubState>();

  /** The server's Data Hub lane is its retained state's last version (machine/server-data.ts serverLanes). */
  #syncLane(n: SimNode, core: HubCore): void {
    const v = core.lastVersion;
    const l = n.disk.lanes;
    if (l.hubEpoch !== v.epoch || l.hubSeq !== v.seq) n.disk.lanes = { ...l, hubEpoch: v.epoch, hubSeq: v.seq };
  }

  // ---- the ledger's taps on the production objects ------------------------------------------

  /** A `/hub` connection's frames: the ledger notes the subscriptions a hub takes, and the lane follows the state. */
  #tapHub(n: SimNode, hub: HubService, events: ConnectionEvents, from: string): ConnectionEvents {
    return {
      ...events,
      message: (payload) => {
        if (!this.#subscribedFrom.has(from) && hasSub(payload)) this.#subscribed(from);
        events.message(payload);
        this.#syncLane(n, hub.core);
      },
    };
  }

  /** This machine's own gateway attached to its hub in process (the gateway's `self`), tapped the same way. */
  #tapLocal(n: SimNode, hub: HubService): LocalHub {
    return {
      attachLocal: (deliver) => {
        const link = hub.attachLocal(deliver);
        return {
          send: (frame: ToHubFrame) => {
            if (frame.type === "sub") this.#subscribed(n.name);
            link.send(frame);
            this.#syncLane(n, hub.core);
          },
          close: () => link.close(),
        };
      },
    };
  }

  /** Machines whose subscription a hub took in their current incarnation. */
  readonly #subscribedFrom = new Set<string>();

  #subscribed(node: string): void {
    this.ledger.subscribed(node);
    this.#subscribedFrom.add(node);
  }

  /** The uplink's attach and detach: when the machine has a hub link (DH1's premise). */
  #tapUplink(n: SimNode, uplink: HubUplink): void {
    const [attach, detach] = [uplink.attachServer.bind(uplink), uplink.detachServer.bind(uplink)];
    // The machine whose hub it attached to: itself, or the one at the address it follows.
    const server = (): string | null => {
      const target = this.#machines.get(n.name)?.gateway.following ?? null;
      return target === null ? null : target.role === "self" ? n.name : this.world.nameAt(target.address.host);
    };
    uplink.attachServer = (send) => {
      attach(send);
      this.ledger.linkChanged(n, server());
    };
    uplink.detachServer = () => {
      const was = uplink.attached;
      detach();
      if (was) this.ledger.linkChanged(n, null);
    };
  }

  #publish(n: SimNode, m: Machine): void {
    m.seq += 1;
    this.ledger.publishing(n, m.origin, m.seq, m.stalls);
    m.pub.send({ type: "pub", topic: `t/${n.name}`, data: m.seq, origin: m.origin, seq: m.seq });
    // A client's app also sets values, on whichever server serves: a backup that served holds writes of its own (HL1).
    if (n.role !== "client" || m.seq % 3 !== 0) return;
    m.seq += 1;
    m.pub.send({ type: "set", key: `s/${n.name}/${m.seq % 4}`, value: m.seq, origin: m.origin, seq: m.seq });
  }

  /** Which servers serve now, and the stretches both did (a split: the two sides' apps do not hear each other). */
  readonly #serving = new Set<string>();
  #splitSince: number | null = null;
  readonly #splits: [number, number][] = [];

  #servingNow(name: string, serving: boolean): void {
    if (serving) this.#serving.add(name);
    else this.#serving.delete(name);
    const split = this.#serving.size > 1;
    if (split) this.#splitSince ??= this.world.now();
    else if (this.#splitSince !== null) {
      this.#splits.push([this.#splitSince, this.world.now()]);
      this.#splitSince = null;
    }
  }

  /**
   * HL1: a paired backup idle beside the active main at the end holds the main's Data Hub state, entry for entry.
   * Keys only the backup holds are counted, not judged: writes it took while serving that the main could not copy
   * before it took over again without the backup (cut off from it, say); HL2 (standby-copy-check.ts) judges those it could.
   */
  #checkLanes(): void {
    const [mn, bn] = [this.world.node("main"), this.world.node("backup")];
    const [m, b] = [this.#machines.get("main")?.hub, this.#machines.get("backup")?.hub];
    if (!m || !b || mn.serving === null || bn.serving !== null || bn.disk.pairing?.peerId !== "main" || mn.disk.pairing?.peerId !== "backup") return;
    this.lanesJudged += 1;
    // Values, not versions: a write resent by its publisher is taken again under the other server's version.
    const values = (core: HubCore) => new Map(core.exportStateSince(ZERO_VERSION).entries.filter((e) => e.value !== null).map((e) => [e.key, JSON.stringify(e.value)]));
    const [want, have] = [values(m.core), values(b.core)];
    const differ = [...want].filter(([key, value]) => have.get(key) !== value).map(([key]) => key).sort();
    this.onlyOnBackup += [...have.keys()].filter((key) => !want.has(key)).length;
    if (differ.length > 0) {
      const show = (state: Map<string, string>) => differ.map((key) => `${key}=${state.get(key) ?? "none"}`).join(", ");
      const what = `HL1 the backup's copy of the Data Hub state differs from the main's after faults stopped (main ${show(want)} at ${JSON.stringify(m.core.lastVersion)}, backup ${show(have)} at ${JSON.stringify(b.core.lastVersion)})`;
      this.world.log(`VIOLATION ${what}`);
      this.#violations.push(`t=${this.world.now()}: ${what}`);
    }
  }

  /** Keys a paired idle backup held at the end that the main did not (HL1 counts them). */
  onlyOnBackup = 0;
}


const SUB = new TextEncoder().encode('"type":"sub"');

/** Whether a /hub payload (one frame or a batch) holds a subscription, without parsing it. */
function hasSub(payload: Uint8Array): boolean {
  outer: for (let i = 0; i + SUB.length <= payload.length; i++) {
    for (let j = 0; j < SUB.length; j++) if (payload[i + j] !== SUB[j]) continue outer;
    return true;
  }
  return false;
}
