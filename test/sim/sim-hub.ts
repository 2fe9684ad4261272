/**
 * The Data Hub in the simulator, with the objects a machine runs: each
 * server's `HubCore`, each machine's `HubUplink` (its acked-writes resend,
 * replay and de-duplication) behind an app gateway, and local apps that
 * publish and subscribe through it. Frames travel, encoded as on the wire,
 * over the library's in-memory peer port (src/net/peer-net-memory.ts) with
 * the world's links' faults. The runner's startServing /
 * stopServing / uplink effects drive them as peer-runtime.ts does.
 *
 * The wiring around the pure objects is copied from src (they import Bun
 * sockets and timers): SimHubServer from services/hub-service.ts (start and
 * stop serving, /hub connections, the in-process attach, presence and replay
 * trimming each second), SimGateway from services/app-gateway.ts (follow,
 * connect, reconnect on NOT_ACTIVE, retry, the ping / expire / trim timer,
 * and a broken link told to the runner). Still modelled: the refusal
 * back-off (nobody here refuses), frame batching and broadcast sealing.
 *
 * The servers' retained state is real too: each HubCore keeps it on its
 * simulated disk (across crashes), the main's own app writes it (`set`), the
 * backup runs the production HubStateReplication over its peer port against
 * the main's HubService on /replicate, and the main back after the backup
 * served runs the production catch-up (fetchHubStateChanges from the
 * backup's /replicate, imported by its HubService).
 * Each server's Data Hub lane is its state's last version.
 *
 * It keeps the ledger for these invariants (checked in `check`):
 *  DH1 no acknowledged message is lost: a publisher alive to the end whose
 *      node acknowledged a message; a subscriber alive to the end, whose
 *      subscription a hub had taken before the message was sent, and that
 *      never went without a hub link for the acked-writes retention after
 *      the ack (a publisher keeps a message that long: acked-writes.ts),
 *      both not stopped within that time (a publisher's stop counts as time
 *      kept; a stopped subscriber reads nothing), and not during a split
 *      (both servers serving, cut apart) that outlasted it: the subscriber gets it;
 *  DH2 no subscriber gets a message twice;
 *  DH3 none out of order per origin;
 *  HL1 a paired backup idle beside the active main at the end of a run
 *      holds the main's Data Hub state, entry for entry (the lane converged).
 */
import { ackedRetentionMs } from "../../src/hub/acked-writes.ts";
import type { FromHubFrame, ToHubFrame, Version } from "../../src/hub/frames.ts";
import { HubUplink } from "../../src/hub/hub-uplink.ts";
import { HubCore, ZERO_VERSION, type Fanout } from "../../src/hub/hub-core.ts";
import type { HubStateChange, HubStateChanges, HubStatePersistence, PersistedHubState, RetainedEntry, SetMark } from "../../src/hub/retained-state.ts";
import type { ServerRole } from "../../src/core/failover/index.ts";
import type { UplinkTarget } from "../../src/core/routing.ts";
import { Rng } from "./prng.ts";
import { encodeFrame } from "../../src/hub/frames.ts";
import { pairedPeer, replicationSource } from "../../src/core/routing.ts";
import { HubService } from "../../src/services/hub-service.ts";
import { fetchHubStateChanges, HubStateReplication, type CopyMark } from "../../src/services/hub-state-replication.ts";
import { PeerRefusals } from "../../src/net/peer-refusals.ts";
import type { PeerDialer } from "../../src/net/peer-net.ts";
import { MemoryNetwork, type MemoryPeerNet } from "../../src/net/peer-net-memory.ts";
import type { Timers } from "../../src/core/clock.ts";
import type { ConnectionEvents, SecureConnection } from "../../src/net/secure-socket.ts";
import type { Machinery, SimNode, World } from "./world.ts";
import { simMachineKey } from "./sim-pairing.ts";

/** app-gateway.ts RECONNECT_MS and PING_MS; hub-service's presence and trim period. */
const RECONNECT_MS = 100;
const PING_MS = 1000;
const PRESENCE_MS = 1000;
const PUBLISHERS: readonly string[] = ["c1", "main", "backup"];


const text = new TextEncoder();
const decoder = new TextDecoder();
const encode = (frame: ToHubFrame | FromHubFrame, json?: string): Uint8Array => text.encode(json ?? encodeFrame(frame));
const decode = (payload: Uint8Array): unknown => JSON.parse(decoder.decode(payload));
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

/** The real HubService for /replicate and the copy, over the same HubCore; the server's lane follows what it imports. */
class SyncedHubService extends HubService {
  constructor(
    private readonly server: SimHubServer,
    networkKey: Uint8Array,
    log: never,
  ) {
    super(server.core, networkKey, log);
  }

  override importChanges(changes: HubStateChanges): void {
    this.server.importChanges(changes);
  }
}

/** services/hub-service.ts HubService's /hub side, on the in-memory peer port. */
class SimHubServer {
  readonly #conns = new Map<string, SecureConnection>();
  readonly #local = new Map<string, (frame: FromHubFrame) => void>();
  #nextId = 0;

  constructor(
    readonly core: HubCore,
    /** The ledger hears each subscription a hub takes (from which machine). */
    readonly subscribed: (node: string) => void,
    /** After anything that may have changed the retained state: the server's hub lane follows it. */
    readonly changed: () => void,
  ) {}

  /** Imports what the other server changed (catch-up, or the standby's copy). */
  importChanges(changes: HubStateChanges): void {
    this.#fanout(this.core.importState(changes));
    this.changed();
  }

  startServing(epoch: number): void {
    if (epoch > this.core.epoch) this.core.setEpoch(epoch);
    this.core.setWritable(true);
  }

  stopServing(): void {
    this.core.setWritable(false);
    for (const c of this.#conns.values()) c.close(1001, "This server is no longer active.");
    for (const id of [...this.#local.keys()]) {
      this.#local.delete(id);
      this.#fanout(this.core.detach(id));
    }
  }

  acceptHub(c: SecureConnection): ConnectionEvents {
    const id = `c${++this.#nextId}`;
    this.#conns.set(id, c);
    this.core.attach(id, (frame) => c.send(encode(frame)));
    return {
      message: (payload) => {
        const frame = decode(payload);
        if ((frame as { type?: unknown }).type === "sub") this.subscribed(c.peer.machineId);
        this.#fanout(this.core.receive(id, frame));
        this.changed();
      },
      close: () => {
        this.#conns.delete(id);
        this.#fanout(this.core.detach(id));
      },
    };
  }

  attachLocal(node: SimNode, deliver: (frame: FromHubFrame) => void): { send(frame: ToHubFrame): void; close(): void } {
    const id = `local${++this.#nextId}`;
    this.#local.set(id, deliver);
    this.core.attach(id, deliver);
    return {
      send: (frame) => {
        if (!this.#local.has(id)) return;
        if (frame.type === "sub") this.subscribed(node.name);
        this.#fanout(this.core.receive(id, frame));
        this.changed();
      },
      close: () => {
        if (this.#local.delete(id)) this.#fanout(this.core.detach(id));
      },
    };
  }

  /** Each second (peer-runtime.ts): replay trimmed by age, presence to every member while serving. */
  second(now: number): void {
    this.core.trimReplay(now);
    if (this.core.writable) this.#fanout(this.core.presence());
  }

  #fanout(fanouts: Fanout[]): void {
    for (const { frame, to, text: json } of fanouts) {
      let bytes: Uint8Array | null = null;
      for (const id of to) {
        this.#local.get(id)?.(frame);
        const c = this.#conns.get(id);
        if (c) c.send((bytes ??= encode(frame, json)));
      }
    }
  }
}

type GatewayTarget = { role: ServerRole; address: string } | { role: "self" };

/** services/app-gateway.ts AppGateway, on the in-memory peer port. */
class SimGateway {
  readonly uplink: HubUplink;
  #target: GatewayTarget | null = null;
  #server: { close(): void } | null = null;
  #remote: SecureConnection | null = null;
  /** The pending retry (its token: a cleared timer must not fire, as clearTimeout guarantees). */
  #retry: object | null = null;
  #attempt = 0;

  constructor(
    readonly sim: SimHub,
    readonly node: SimNode,
    deliver: (frame: FromHubFrame, apps: readonly string[]) => void,
  ) {
    this.uplink = new HubUplink({ node: { id: node.name, name: node.name }, deliver });
  }

  follow(target: GatewayTarget | null): void {
    if (JSON.stringify(target) === JSON.stringify(this.#target)) return;
    this.#target = target;
    this.#disconnect();
    if (target) this.#connect(target, ++this.#attempt);
  }

  /** app-gateway.ts's pinger. */
  ping(now: number): void {
    this.uplink.ping(now);
    this.uplink.expireWaiting(now);
    this.uplink.trimAcked(now, ackedRetentionMs(this.sim.world.cfg.timings));
  }

  #connect(target: GatewayTarget, attempt: number): void {
    const world = this.sim.world;
    if (target.role === "self") {
      const hub = this.sim.servers.get(this.node.name);
      if (!hub) return;
      const link = hub.attachLocal(this.node, (frame) => this.uplink.onFrameFromServer(frame));
      this.#server = { close: () => link.close() };
      this.sim.linkChanged(this.node, true);
      this.uplink.attachServer((frame) => link.send(frame));
      return;
    }
    const peer = this.sim.peerOf(this.node);
    if (!peer) return;
    peer.connect(
      { host: target.address, port: 0 },
      "/hub",
      (end) => ({
        message: (payload) => {
          if (this.#remote !== end) return;
          this.uplink.onFrameFromServer(decode(payload), world.now());
          if (this.uplink.needsReattach) this.#reconnect(target, attempt, end);
        },
        close: () => {
          if (this.#remote !== end) return;
          this.#server = this.#remote = null;
          this.sim.linkChanged(this.node, false);
          this.uplink.detachServer();
          world.log(`${this.node.name}: hub link to ${target.address} closed`);
          world.connectionBroke(this.node, target.role);
          this.#scheduleRetry(target, attempt);
        },
      }),
      (end) => {
        if (end instanceof Error) {
          if (attempt === this.#attempt) this.#scheduleRetry(target, attempt);
          return;
        }
        if (attempt !== this.#attempt) return end.close(1001, "Following another server now.");
        this.#server = this.#remote = end;
        this.sim.linkChanged(this.node, true);
        this.uplink.attachServer((frame, json) => end.send(encode(frame, json)));
        world.log(`${this.node.name}: hub link up to ${target.address}`);
      },
    );
  }

  #reconnect(target: GatewayTarget, attempt: number, end: SecureConnection): void {
    this.#server = this.#remote = null;
    this.sim.linkChanged(this.node, false);
    this.uplink.detachServer();
    end.close(1001, "Writes were refused as not active; reconnecting.");
    this.sim.world.log(`${this.node.name}: hub refused writes as not active; reconnecting`);
    this.#scheduleRetry(target, attempt);
  }

  #scheduleRetry(target: GatewayTarget, attempt: number): void {
    if (attempt !== this.#attempt || this.#retry) return;
    const token = (this.#retry = {});
    const world = this.sim.world;
    world.postAt(this.node.name, world.now() + RECONNECT_MS, this.node.inc, () => {
      if (this.#retry !== token) return;
      this.#retry = null;
      if (attempt === this.#attempt && this.#server === null) this.#connect(target, attempt);
    });
  }

  #disconnect(): void {
    this.#retry = null;
    const server = this.#server;
    this.#server = this.#remote = null;
    if (server) this.sim.linkChanged(this.node, false);
    if (server) {
      this.uplink.detachServer();
      server.close();
    }
  }
}

/** A delivered message, per subscriber incarnation. */
type Subscriber = {
  readonly node: string;
  readonly inc: number;
  /** Its machine's stalls (Machine.stalls): stopped, it reads nothing, whatever its link says. */
  readonly stalls: readonly [number, number][];
  /** When a hub first took this subscription from its node; null until then. */
  established: number | null;
  /** Since when its node has had no hub link (null: it has one), and its stretches without one as long as a publisher keeps what was acknowledged. */
  unlinkedSince: number | null;
  readonly longUnlinked: [number, number][];
  readonly last: Map<string, number>;
  readonly got: Set<string>;
};

type Published = {
  readonly origin: string;
  readonly seq: number;
  readonly node: string;
  readonly inc: number;
  readonly sentAt: number;
  ackedAt: number | null;
  /** Its publisher's stalls (Machine.stalls). */
  readonly stalls: readonly [number, number][];
};

/** One machine's incarnation: its hub (servers), gateway and apps. */
type Machine = {
  readonly inc: number;
  readonly gateway: SimGateway;
  readonly sub: Subscriber;
  readonly origin: string;
  seq: number;
  /** When its gateway's timer last ran, and the stretches its process was stopped (the timer ran late by a second or more). */
  lastPing: number;
  readonly stalls: [number, number][];
};

export class SimHub implements Machinery {
  readonly net: MemoryNetwork;
  readonly #peers = new Map<string, MemoryPeerNet>();
  readonly servers = new Map<string, SimHubServer>();
  readonly #machines = new Map<string, Machine>();
  readonly #published = new Map<string, Published>();
  readonly #subscribers: Subscriber[] = [];
  readonly #rng: Rng;
  /** Apps publish only in this window (run.ts sets it: from warm-up until faults stop). */
  publishing = { from: Infinity, to: -Infinity };
  readonly violations: string[] = [];
  published = 0;
  delivered = 0;
  /** (message, subscriber) pairs DH1 did not judge: the subscriber had no hub for longer than the retention. */
  beyondRetention = 0;
  /** (message, subscriber) pairs DH1 judged. */
  judged = 0;
  /** Runs whose end HL1 judged (a paired backup idle beside the active main). */
  lanesJudged = 0;

  constructor(
    readonly world: World,
    seed: number,
  ) {
    this.#rng = new Rng(seed ^ 0x5bd1e995);
    const rng = this.#rng;
    const { heartbeatMs: h } = world.cfg.timings;
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

  /**
   * The Data Hub copy as a server runs it (peer-runtime.ts): the main answers on /replicate
   * (HubService.acceptReplication), the backup runs HubStateReplication over its peer port,
   * copying from the main while core's replicationSource says so, its first answer reported
   * as syncDone and a broken link as the main's; a new pairing starts it afresh (restart()).
   */
  #replication(n: SimNode, server: SimHubServer, peer: MemoryPeerNet): void {
    const w = this.world;
    const quiet = { info() {}, warn() {}, error() {} } as never;
    const service = new SyncedHubService(server, keyBytes(this.keyOf(n.name)), quiet);
    this.#services.set(n.name, service);
    peer.serve({ path: "/replicate", accept: (c) => service.acceptReplication(c) });
    if (n.role !== "backup") return;
    const timers = this.#timers(n);
    const net = this.#dialer(peer);
    const replication = new HubStateReplication({
      net,
      // The address its setup names now (peer-runtime.ts heartbeatTargets().main), not where the main really is.
      source: () => (replicationSource(n.state) === "main" ? (n.runner?.serverAddress("main") ?? null) : null),
      hub: service,
      periodMs: w.cfg.timings.heartbeatMs,
      refusals: new PeerRefusals(w.clock, quiet, () => this.#rng.next()),
      mark: this.#copyMark(n),
      signals: {
        synced: () => w.feed(n, { type: "syncDone" }),
        broken: () => w.connectionBroke(n, "main"),
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
  }

  /**
   * The backup's copy mark on its disk (store/copy-mark-file.ts as server-data.ts copyMark uses it):
   * the `through` of the last answer imported, for the main it is paired with; survives a crash.
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

  /** The server's Data Hub lane is its retained state's last version (peer-runtime.ts lanes()). */
  #syncLane(n: SimNode, core: HubCore): void {
    const v = core.lastVersion;
    const l = n.disk.lanes;
    if (l.hubEpoch !== v.epoch || l.hubSeq !== v.seq) n.disk.lanes = { ...l, hubEpoch: v.epoch, hubSeq: v.seq };
  }

  writeHub(main: SimNode): void {
    const m = this.#machines.get(main.name);
    if (!m) return;
    m.seq += 1;
    m.gateway.uplink.fromApp("pub", { type: "set", key: `s/${main.name}/${m.seq % 5}`, value: m.seq, origin: m.origin, seq: m.seq }, this.world.now());
  }

  /** Each running server's HubService (for /replicate and its imports). */
  readonly #services = new Map<string, HubService>();

  /**
   * The main's catch-up as peer-runtime.ts catchUp runs it: fetchHubStateChanges from the backup's
   * peer port since its own last version, imported by its HubService; any failure is a failed copy.
   */
  catchUp(main: SimNode, done: (ok: boolean) => void): void {
    const [peer, service, inc] = [this.#peers.get(main.name), this.#services.get(main.name), main.inc];
    if (!peer || !service) return done(false);
    const live = () => main.inc === inc && !!main.state;
    fetchHubStateChanges(this.#dialer(peer), this.world.endpointOf("backup"), service.core.lastVersion, this.#timers(main)).then(
      (changes) => {
        if (!live()) return;
        service.importChanges(changes);
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

  /**
   * PeerNet's dial over the twin. A promise settles outside any event, so each callback that can
   * settle one (the dial's answer, a frame, a close) tells the world to run promise jobs before its next event.
   */
  #dialer(peer: MemoryPeerNet): PeerDialer {
    const w = this.world;
    const settles = (events: ConnectionEvents): ConnectionEvents => ({
      ...(events.broadcast ? { broadcast: (frame: Uint8Array) => events.broadcast?.(frame) } : {}),
      ...(events.bulk ? { bulk: (payload: Uint8Array) => events.bulk?.(payload) } : {}),
      message: (payload) => {
        w.promisesSettled = true;
        events.message(payload);
      },
      close: (reason, code) => {
        w.promisesSettled = true;
        events.close(reason, code);
      },
    });
    return {
      dial: (to, path, events) =>
        new Promise((resolve, reject) =>
          peer.connect(to, path, (c) => settles(events(c)), (result) => {
            w.promisesSettled = true;
            if (result instanceof Error) reject(result);
            else resolve(result);
          }),
        ),
    };
  }

  /** This machine's peer port (null while it is down). */
  peerOf(n: SimNode): MemoryPeerNet | null {
    return this.#peers.get(n.name) ?? null;
  }

  /** A machine's timers on the world's queue: held while it is frozen, gone with its incarnation. */
  #timers(n: SimNode): Timers {
    const w = this.world;
    const inc = n.inc;
    return {
      after: (ms, run) => {
        let live = true;
        w.postAt(n.name, w.now() + ms, inc, () => live && run());
        return () => void (live = false);
      },
      every: (ms, run) => {
        let live = true;
        const again = () => {
          if (!live) return;
          run();
          w.postAt(n.name, w.now() + ms, inc, again);
        };
        w.postAt(n.name, w.now() + ms, inc, again);
        return () => void (live = false);
      },
    };
  }

  started(n: SimNode): void {
    const w = this.world;
    if (n.role !== "client") {
      let disk = this.#disks.get(n.name);
      if (!disk) this.#disks.set(n.name, (disk = new DiskHubState()));
      const core = new HubCore({ epoch: n.disk.epoch, streamId: `${n.name}-${n.inc}`, persistence: disk });
      this.servers.set(n.name, new SimHubServer(core, (node) => this.#subscribed(node), () => this.#syncLane(n, core)));
      this.#syncLane(n, core);
    }
    const peer = this.net.attach({
      at: { host: w.addressOf(n.name), port: 0 },
      machineId: n.name,
      publicKey: simMachineKey(n.name),
      networkKey: keyBytes(this.keyOf(n.name)),
      timers: this.#timers(n),
    });
    this.#peers.set(n.name, peer);
    const server = this.servers.get(n.name);
    if (server) peer.serve({ path: "/hub", accept: (c) => server.acceptHub(c) });
    if (server) this.#replication(n, server, peer);
    const origin = `${n.name}.${n.inc}`;
    const stalls: [number, number][] = [];
    const sub: Subscriber = { node: n.name, inc: n.inc, stalls, established: null, unlinkedSince: w.now(), longUnlinked: [], last: new Map(), got: new Set() };
    this.#subscribers.push(sub);
    const gateway = new SimGateway(this, n, (frame, apps) => {
      for (const app of apps) this.#toApp(n, app, frame);
    });
    const machine: Machine = { inc: n.inc, gateway, sub, origin, seq: 0, lastPing: w.now(), stalls };
    this.#machines.set(n.name, machine);
    // The subscriber app subscribes at once; its node subscribes upstream whenever it attaches.
    gateway.uplink.fromApp("sub", { type: "sub", filter: "t/#" }, w.now());
    const inc = n.inc;
    const every = (ms: number, run: () => void) => {
      const again = (): void => {
        run();
        w.postAt(n.name, w.now() + ms, inc, again);
      };
      w.postAt(n.name, w.now() + this.#rng.int(1, ms), inc, again);
    };
    every(PING_MS, () => {
      if (w.now() - machine.lastPing >= 2 * PING_MS) machine.stalls.push([machine.lastPing + PING_MS, w.now()]);
      machine.lastPing = w.now();
      gateway.ping(w.now());
    });
    const hub = this.servers.get(n.name);
    if (hub) every(PRESENCE_MS, () => hub.second(w.now()));
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
    this.servers.delete(n.name);
    this.#machines.delete(n.name);
  }

  startServing(n: SimNode, epoch: number): void {
    this.servers.get(n.name)?.startServing(epoch);
    this.#servingNow(n.name, true);
  }

  stopServing(n: SimNode): void {
    this.servers.get(n.name)?.stopServing();
    this.#servingNow(n.name, false);
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

  /** peer-runtime.ts followUplink: self, or the address the setup names for that server. */
  uplink(n: SimNode, target: UplinkTarget): void {
    const gateway = this.#machines.get(n.name)?.gateway;
    if (!gateway) return;
    if (target.server === "self") return gateway.follow({ role: "self" });
    // The address the setup names (the runner's), as peer-runtime.ts reads its servers; before the runner exists, the world's.
    const at = target.server === null ? null : n.runner ? n.runner.serverAddress(target.server) : this.world.endpointOf(target.server);
    const known = target.server !== null && (n.role !== "client" || n.knows[target.server]);
    gateway.follow(target.server !== null && known && at ? { role: target.server, address: at.host } : null);
  }

  /** Each machine's network key (a generation number; all start on 1). Heartbeats are sealed with pair keys and do not depend on it. */
  readonly #keys = new Map<string, number>();

  keyOf(name: string): number {
    return this.#keys.get(name) ?? 1;
  }

  /** A new network key saved on a machine: from now on it dials and answers with it (open connections keep theirs). */
  setKey(name: string, key: number): void {
    this.world.log(`NETWORK KEY ${key} on ${name}`);
    this.#keys.set(name, key);
    this.#peers.get(name)?.setNetworkKey(keyBytes(key));
  }

  #publish(n: SimNode, m: Machine): void {
    m.seq += 1;
    const seq = m.seq;
    this.#published.set(`${m.origin}#${seq}`, { origin: m.origin, seq, node: n.name, inc: n.inc, sentAt: this.world.now(), ackedAt: null, stalls: m.stalls });
    this.published += 1;
    m.gateway.uplink.fromApp("pub", { type: "pub", topic: `t/${n.name}`, data: seq, origin: m.origin, seq }, this.world.now());
  }

  #toApp(n: SimNode, app: string, frame: FromHubFrame): void {
    const m = this.#machines.get(n.name);
    if (!m) return;
    if (app === "pub" && frame.type === "ack") {
      const p = this.#published.get(`${frame.origin}#${frame.seq}`);
      if (p && p.ackedAt === null) p.ackedAt = this.world.now();
      return;
    }
    if (app !== "sub") return;
    if (frame.type !== "msg") return;
    const key = `${frame.from}#${frame.seq}`;
    this.delivered += 1;
    if (m.sub.got.has(key)) this.#fail(`DH2 ${n.name}'s subscriber got ${key} twice`);
    const last = m.sub.last.get(frame.from) ?? 0;
    if (frame.seq <= last) this.#fail(`DH3 ${n.name}'s subscriber got ${key} after seq ${last} of that origin`);
    m.sub.last.set(frame.from, Math.max(last, frame.seq));
    m.sub.got.add(key);
  }

  /** A machine's gateway got or lost its hub link. */
  linkChanged(n: SimNode, linked: boolean): void {
    const sub = this.#machines.get(n.name)?.sub;
    if (!sub || sub.inc !== n.inc) return;
    if (!linked) sub.unlinkedSince ??= this.world.now();
    else if (sub.unlinkedSince !== null) {
      this.#noteUnlinked(sub, this.world.now());
      sub.unlinkedSince = null;
    }
  }

  #noteUnlinked(sub: Subscriber, until: number): void {
    if (sub.unlinkedSince !== null && until - sub.unlinkedSince >= this.#retention) sub.longUnlinked.push([sub.unlinkedSince, until]);
  }

  get #retention(): number {
    return ackedRetentionMs(this.world.cfg.timings);
  }

  #subscribed(node: string): void {
    const m = this.#machines.get(node);
    if (m && m.sub.established === null) m.sub.established = this.world.now();
  }

  #fail(what: string): void {
    this.world.log(`VIOLATION ${what}`);
    this.violations.push(`t=${this.world.now()}: ${what}`);
  }

  /** At the end of a run: DH1 over every acknowledged message (DH2 and DH3 were checked as messages arrived). */
  check(): string[] {
    const alive = (node: string, inc: number) => {
      const n = this.world.nodes.get(node);
      return !!n?.state && n.inc === inc;
    };
    const lost: string[] = [];
    const retention = this.#retention;
    const end = this.world.now();
    for (const s of this.#subscribers) {
      this.#noteUnlinked(s, end);
      s.unlinkedSince = null;
    }
    if (this.#splitSince !== null) this.#splits.push([this.#splitSince, end]);
    for (const p of this.#published.values()) {
      const acked = p.ackedAt;
      if (acked === null || !alive(p.node, p.inc)) continue;
      for (const s of this.#subscribers) {
        if (s.established === null || s.established >= p.sentAt || !alive(s.node, s.inc)) continue;
        // Away from every hub for longer than the publisher keeps a message after its ack: beyond the promise (§Data Hub).
        // So is a publisher or subscriber stopped (SIGSTOP) within the retention after the ack: the stop counts as time kept,
        // and a stopped subscriber reads nothing while its link still stands (frames held, then lost with it).
        const stopped = (stalls: readonly [number, number][]) => stalls.some(([from, to]) => to > acked && from < acked + retention);
        // Or published during a split that outlasted the retention: the other side's subscribers are on another hub meanwhile.
        const longSplit = this.#splits.some(([from, to]) => to - Math.max(from, acked) >= retention);
        if (longSplit || stopped(p.stalls) || stopped(s.stalls) || s.longUnlinked.some(([from, to]) => to - Math.max(from, acked) >= retention)) {
          this.beyondRetention += 1;
          continue;
        }
        this.judged += 1;
        if (!s.got.has(`${p.origin}#${p.seq}`)) lost.push(`${p.origin}#${p.seq} (acked at ${acked}) to ${s.node}`);
      }
    }
    if (lost.length > 0) this.#fail(`DH1 ${lost.length} acknowledged messages never reached a subscriber: ${lost.slice(0, 4).join(", ")}`);
    this.#checkLanes();
    return this.violations;
  }

  /** HL1: a paired backup idle beside the active main at the end holds the main's Data Hub state, entry for entry. */
  #checkLanes(): void {
    const [mn, bn] = [this.world.node("main"), this.world.node("backup")];
    const [m, b] = [this.servers.get("main"), this.servers.get("backup")];
    if (!m || !b || mn.serving === null || bn.serving !== null || bn.disk.pairing?.peerId !== "main" || mn.disk.pairing?.peerId !== "backup") return;
    this.lanesJudged += 1;
    // Values, not versions: a write resent by its publisher is taken again under the other server's version.
    const values = (core: HubCore) =>
      JSON.stringify(core.exportStateSince(ZERO_VERSION).entries.filter((e) => e.value !== null).map((e) => [e.key, e.value]).sort());
    const [want, have] = [values(m.core), values(b.core)];
    if (want !== have) {
      this.world.log(`HL1 main ${want} backup ${have}`);
      this.#fail(`HL1 the backup's copy of the Data Hub state differs from the main's after faults stopped (main ${want} at ${JSON.stringify(m.core.lastVersion)}, backup ${have} at ${JSON.stringify(b.core.lastVersion)})`);
    }
  }
}
