/**
 * What runs on each machine beside its runner, over the library's in-memory
 * peer port (src/net/peer-net-memory.ts) with the world's links' faults:
 * - the Data Hub side of the machine as a machine runs it, the production
 *   DataHubParts (src/machine/data-hub-parts.ts, which peer-runtime.ts builds
 *   too): each server's HubService over its HubCore (`/hub`, `/replicate`,
 *   presence and replay trimming, serving, a new network key), its copy of the
 *   other server's state (HubStateReplication) and the main's catch-up, and
 *   each machine's AppGateway (its HubUplink with the acked-writes resend,
 *   replay and de-duplication, its ServerLink, the refusal back-off, frame
 *   batching and sealed broadcasts) following the core's uplink; two in-process
 *   apps on the gateway, one subscribing and one publishing;
 * - the show-file log lane (sim-lanes.ts): the production LogReplicationSource
 *   and LogReplicationSink over SQLite in memory (Bun only).
 * The runner's effects drive them. The simulator only taps them for its
 * ledgers (hub-ledger.ts, sim-lanes.ts), by wrapping the served `/hub`, the
 * hub's local attach and import, and the uplink, and keeps each server's
 * retained state and copy mark on a disk that survives a crash.
 *
 * Invariants checked here besides the ledgers':
 *  HL1 a paired backup idle beside the active main at the end of a run
 *      holds the main's Data Hub state, entry for entry (the lane converged).
 */
import { ackedRetentionMs } from "../../src/hub/acked-writes.ts";
import type { ToHubFrame, Version } from "../../src/hub/frames.ts";
import type { HubUplink } from "../../src/hub/hub-uplink.ts";
import { ZERO_VERSION, type HubCore } from "../../src/hub/hub-core.ts";
import type { HubStateChange, HubStatePersistence, PersistedHubState, RetainedEntry, SetMark } from "../../src/hub/retained-state.ts";
import type { UplinkTarget } from "../../src/core/routing.ts";
import type { Timers } from "../../src/core/clock.ts";
import { Rng } from "./prng.ts";
import type { ServerRole } from "../../src/core/failover/index.ts";
import type { InProcessApp } from "../../src/services/app-gateway.ts";
import type { HubService } from "../../src/services/hub-service.ts";
import type { PeerService } from "../../src/net/peer-net.ts";
import { MemoryNetwork, type MemoryPeerNet } from "../../src/net/peer-net-memory.ts";
import { DataHubParts, type CopyMarks } from "../../src/machine/data-hub-parts.ts";
import { ROLE_PLANS } from "../../src/machine/role-plan.ts";
import { mainCopySource } from "../../src/machine/server-copy.ts";
import { HubLedger } from "./hub-ledger.ts";
import { StandbyCopyCheck } from "./standby-copy-check.ts";
import { machineDefer, machineLogger, machineTimers, settlingDialer, settlingService } from "./machine-io.ts";
import type { LogLanes } from "./sim-lanes.ts";
import type { Machinery, SimNode, World } from "./world.ts";
import { simMachineKey } from "./sim-pairing.ts";

/** The log lane needs bun:sqlite: under Deno the simulator runs without it. */
const lanesModule = "Bun" in globalThis ? await import("./sim-lanes.ts") : null;

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

/** One machine's incarnation: its Data Hub side (the hub on servers, the gateway) and apps. */
type Machine = {
  readonly inc: number;
  readonly parts: DataHubParts;
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
      this.standbyCopy.sample(this.#hubOf("main")?.core ?? null, this.#hubOf("backup")?.core ?? null);
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
    // This incarnation's hub, read when a frame comes (the parts are built below).
    const hubCore = (): HubCore | null => parts.hub?.core ?? null;
    // The ledger reads the subscriptions a hub takes from `/hub`; the lane follows the state.
    const serve = (service: PeerService) => peer.serve(settlingService(w, service.path === "/hub" ? this.#tapHub(n, service, hubCore) : service));
    const net = settlingDialer(w, peer);
    const current = () => n.state;
    const serverAt = (role: ServerRole) => n.runner?.serverAddress(role) ?? null;
    let disk = this.#disks.get(n.name);
    if (!disk && n.role !== "client") this.#disks.set(n.name, (disk = new DiskHubState()));
    const parts = new DataHubParts({
      plan: ROLE_PLANS[n.role],
      node: { id: n.name, name: n.name },
      net,
      serve,
      networkKey: keyBytes(this.keyOf(n.name)),
      hubState: disk ? { persistence: disk, epoch: n.disk.epoch, copyMarks: this.#copyMarks(n.name), streamId: `${n.name}-${n.inc}` } : null,
      current,
      serverAt,
      // The address the setup names (the runner's); before the runner exists, the world's, where the machine knows one.
      followAt: (role) => (n.role !== "client" || n.knows[role] ? (n.runner ? n.runner.serverAddress(role) : w.endpointOf(role)) : null),
      runner: { feed: (event) => w.feed(n, event), linkBroken: (role) => w.connectionBroke(n, role) },
      heartbeatMs: w.cfg.timings.heartbeatMs,
      retainAckedMs: this.ledger.retentionMs,
      log,
      clock: w.clock,
      timers,
      defer,
      random: () => this.#rng.next(),
    });
    const hub = parts.hub;
    if (hub) {
      this.#tapHubState(n, hub);
      this.#syncLane(n, hub.core);
      this.#restartOnNewPairing(n, parts, timers);
      this.lanes?.started({ node: n, serve, net, timers, clock: w.clock, log, source: mainCopySource({ current, serverAt }), random: () => this.#rng.next() });
    }
    const gateway = parts.gateway;
    this.#tapUplink(n, gateway.uplink);
    this.ledger.started(n);
    const sub = gateway.attachApp("sub", (frame) => this.ledger.got(n, frame));
    const origin = `${n.name}.${n.inc}`;
    const pub = gateway.attachApp("pub", (frame) => frame.type === "ack" && this.ledger.acked(frame.origin, frame.seq));
    const machine: Machine = { inc: n.inc, parts, pub, origin, seq: 0, lastProbe: w.now(), stalls: [] };
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
    this.#machines.get(n.name)?.parts.startServing(epoch);
    this.#servingNow(n.name, true);
    this.lanes?.startedServing(n);
  }

  stopServing(n: SimNode, epoch: number): void {
    this.#machines.get(n.name)?.parts.stopServing(epoch);
    this.#servingNow(n.name, false);
  }

  uplink(n: SimNode, target: UplinkTarget): void {
    this.#machines.get(n.name)?.parts.follow(target);
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

  /** The main's catch-up, DataHubParts.catchUp (its import moves the lane: #tapHubState); any failure is a failed copy. */
  catchUp(main: SimNode, done: (ok: boolean) => void): void {
    const [parts, inc] = [this.#machines.get(main.name)?.parts, main.inc];
    if (!parts?.hub) return done(false);
    const live = () => main.inc === inc && !!main.state;
    parts.catchUp().then(
      () => {
        if (!live()) return;
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

  /**
   * A new network key saved on a machine, taken as peer-runtime.ts setNetworkKey takes it: the port, then the
   * Data Hub side, then the log copy, then what it dialled and what others dialled to it are closed to dial again.
   */
  setKey(name: string, key: number): void {
    this.world.log(`NETWORK KEY ${key} on ${name}`);
    this.#keys.set(name, key);
    const bytes = keyBytes(key);
    const peer = this.#peers.get(name);
    peer?.setNetworkKey(bytes);
    this.#machines.get(name)?.parts.setNetworkKey(bytes);
    const n = this.world.nodes.get(name);
    if (n) this.lanes?.keyChanged(n);
    peer?.closeDialled("The network key changed; reconnecting with the new one.");
    peer?.closeAccepted("The network key changed here; dial again with the new one.");
  }

  /** At the end of a run: the ledgers' invariants and HL1. */
  check(): string[] {
    if (this.#splitSince !== null) this.#splits.push([this.#splitSince, this.world.now()]);
    this.ledger.check(this.#splits);
    this.#checkLanes();
    this.lanes?.check();
    const standby = this.standbyCopy.check(this.#hubOf("main")?.core ?? null);
    for (const what of standby) this.world.log(`VIOLATION ${what}`);
    return [...this.ledger.violations, ...this.#violations, ...standby.map((what) => `t=${this.world.now()}: ${what}`), ...(this.lanes?.violations ?? [])];
  }

  /**
   * The partnership's `changed` as peer-runtime.ts wires it: a new pairing is copied afresh. The simulator's
   * pairing keeps no such callback (sim-pairing.ts), so the pairing on disk is read each heartbeat.
   */
  #restartOnNewPairing(n: SimNode, parts: DataHubParts, timers: Timers): void {
    let pairedWith = n.disk.pairing?.peerId ?? null;
    timers.every(this.world.cfg.timings.heartbeatMs, () => {
      const now = n.disk.pairing?.peerId ?? null;
      if (now !== pairedWith) parts.pairingChanged();
      pairedWith = now;
    });
  }

  /** A server's copy mark on its disk (store/copy-mark-file.ts): the `through` last imported, for one peer; survives a crash. */
  #copyMarks(name: string): CopyMarks {
    const disk = this.#marks;
    return {
      read: (peerId) => {
        const mark = disk.get(name);
        return mark?.peerId === peerId ? mark.through : null;
      },
      write: (peerId, through) => void disk.set(name, { peerId, through }),
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

  /** This machine's hub (servers), while it runs. */
  #hubOf(name: string): HubService | null {
    return this.#machines.get(name)?.parts.hub ?? null;
  }

  /** A `/hub` connection's frames: the ledger notes the subscriptions a hub takes, and the lane follows the state. */
  #tapHub(n: SimNode, service: PeerService, core: () => HubCore | null): PeerService {
    return {
      path: service.path,
      accept: (c) => {
        const [events, from] = [service.accept(c), c.peer.machineId];
        return {
          ...events,
          message: (payload) => {
            if (!this.#subscribedFrom.has(from) && hasSub(payload)) this.#subscribed(from);
            events.message(payload);
            const hub = core();
            if (hub) this.#syncLane(n, hub);
          },
        };
      },
    };
  }

  /**
   * The hub's own gateway attached in process (the gateway's `self`), tapped as `/hub` is; and every import
   * (the copy's, the catch-up's) moves the lane. A restarted main's late catch-up answer is not imported.
   */
  #tapHubState(n: SimNode, hub: HubService): void {
    const [attachLocal, importChanges, inc] = [hub.attachLocal.bind(hub), hub.importChanges.bind(hub), n.inc];
    hub.attachLocal = (deliver) => {
      const link = attachLocal(deliver);
      return {
        send: (frame: ToHubFrame) => {
          if (frame.type === "sub") this.#subscribed(n.name);
          link.send(frame);
          this.#syncLane(n, hub.core);
        },
        close: () => link.close(),
      };
    };
    hub.importChanges = (changes) => {
      if (n.inc !== inc || !n.state) throw new Error("The main restarted.");
      importChanges(changes);
      this.#syncLane(n, hub.core);
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
      const target = this.#machines.get(n.name)?.parts.gateway.following ?? null;
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
    const [m, b] = [this.#hubOf("main"), this.#hubOf("backup")];
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
