/**
 * The simulated world: one main, one backup, clients, a network of directed
 * links, and per machine the production FailoverRunner (src/machine) with a
 * simulated clock, transport and disk: the same effect switch, freshness
 * judgement and routing that run on a real machine. Everything happens on one ManualClock, in the
 * order of a seeded event queue, so a seed replays exactly.
 *
 * Faults: crash (process gone; restarts with only its persisted epoch),
 * freeze (SIGSTOP: no ticks, inputs queue up and are handled on resume),
 * per-link cut / loss / extra delay (partitions may be one-way).
 */
import type { Timings } from "../../src/core/failure-detector.ts";
import type { Verdict } from "../../src/core/freshness.ts";
import { EMPTY_LANES, type Effect, type Failback, type Lanes, type NodeEvent, type NodeState, type PairingRecord, type Role, type ServerRole } from "../../src/core/failover/index.ts";
import { FailoverRunner, type Endpoint } from "../../src/machine/failover-runner.ts";
import type { UplinkTarget } from "../../src/core/routing.ts";
import { aliveMessage, type ClaimSigner } from "../../src/core/signed-claims.ts";
import type { Heartbeat } from "../../src/net/heartbeat.ts";
import { pairRequestRefusal, unpairCounts } from "../../src/core/pairing-rules.ts";
import { ManualClock } from "../support/clock.ts";
import { Rng } from "./prng.ts";
import { describe } from "./describe.ts";
import { EventQueue } from "./queue.ts";
import type { PairingMachinery } from "./sim-pairing.ts";

export interface SimConfig {
  readonly timings: Timings;
  readonly failback: Failback;
  /** How often each runner ticks its core (TICK_MS in index.ts). */
  readonly tickMs: number;
  /** Normal one-way latency range, ms. */
  readonly latency: readonly [number, number];
}

type Inbound =
  /**
   * `from` is the source address (a rogue may spoof it); `sealedBy` the machine whose key the datagram
   * is sealed under (net/heartbeat-keys.ts), null for the network key that every key holder has.
   */
  | { readonly kind: "beat"; readonly from: string; readonly hb: Heartbeat; readonly replayed: boolean; readonly sealedBy: string | null }
  | { readonly kind: "linkBroken"; readonly peer: ServerRole }
  | { readonly kind: "catchUp"; readonly ok: boolean; readonly done: (ok: boolean) => void; readonly inc: number }
  | { readonly kind: "event"; readonly event: NodeEvent }
  | { readonly kind: "setServers"; readonly main: boolean; readonly backup: boolean }
  /** Work for one incarnation of the machine (a frame on a connection, a timer of its machinery); dropped if it died since. */
  | { readonly kind: "run"; readonly inc: number; readonly run: () => void };

type SimEvent =
  | { kind: "deliver"; to: string; msg: Inbound; faulty: boolean; cancelled: boolean }
  | { kind: "tick"; node: string; inc: number }
  /** A heartbeat handed over ahead comes due on its machine's heartbeat thread. */
  | { kind: "ahead"; node: string; inc: number; host: string; handover: number; hb: Heartbeat; notAfter: number }
  | { kind: "action"; label: string; run: () => void };

export interface Link {
  cut: boolean;
  loss: number;
  /** Extra one-way delay, uniform in [0, extraDelay]. */
  extraDelay: number;
}

export interface SimNode {
  readonly name: string;
  readonly role: Role;
  /** The production runner of this incarnation; null while crashed. */
  runner: FailoverRunner | null;
  /** Its core state, refreshed after every call into the runner. */
  state: NodeState | null;
  frozen: boolean;
  /** Frozen is its event loop only (a long copy, a collection): its heartbeat thread still sends what was handed to it. */
  loopOnly: boolean;
  /** The heartbeats handed over ahead (runner-ports.ts sendAhead): the hand-over in force per address. */
  readonly ahead: Map<string, number>;
  readonly queue: Inbound[];
  inc: number;
  /** What survives a crash: the persisted epoch and pairing, and a server's copy of the data (lane positions). */
  readonly disk: { epoch: number; pairing: PairingRecord | null; lanes: Lanes; formerPartners: readonly string[] };
  /** The runner's view: the epoch it accepts Data Hub writes at, from start/stopServing. */
  serving: number | null;
  /** The client runner's view, from `follow` effects. */
  following: { server: ServerRole | null; epoch: number | null };
  readonly offset: number;
  readonly knows: { main: boolean; backup: boolean };
  /** What the checker needs to judge a takeover (sim time): when this incarnation started, */
  startedAt: number;
  /** when it last handled a heartbeat from the other server, and what that said, */
  lastFromOther: number;
  lastFromOtherState: string | null;
  /** whether a socket to the other server broke since, and whether a catch-up finished since it last served. */
  brokenSinceHeard: boolean;
  caughtUp: boolean;
  /** When copying from the backup first failed since the main last served (sim time). */
  copyFailingSince: number | null;
  /** When the last freeze began, and how long it lasted once resumed. */
  frozenAt: number;
  lastFreezeMs: number;
}

/**
 * What runs on each machine beside its runner (sim-hub.ts: the Data Hub, the app gateway, the apps),
 * told of each process's life and of the runner's effects, as peer-runtime.ts wires them.
 */
export interface Machinery {
  /** A new incarnation starts (before its runner is built). */
  started(node: SimNode): void;
  /** The process is gone (crash): its memory with it. */
  crashed(node: SimNode): void;
  startServing(node: SimNode, epoch: number): void;
  stopServing(node: SimNode, epoch: number): void;
  uplink(node: SimNode, target: UplinkTarget): void;
  /** The active main's own app writes to the Data Hub (its hub lane then moves with the real state). */
  writeHub(main: SimNode): void;
  /** A show-file push on the active main (its log lane then moves with the real log). */
  writeLog(main: SimNode): void;
  /** The main's catch-up as a machine runs it (DataHubParts.catchUp); `done` says whether it worked. */
  catchUp(main: SimNode, done: (ok: boolean) => void): void;
}

/** Hooks the invariant checker plugs in. `effect` runs before the runner executes it. */
export interface Observer {
  effect(world: World, node: SimNode, fx: Effect): void;
  /** Every heartbeat the runner judged; `replayed` when the adversary sent it. */
  heartbeat(world: World, node: SimNode, hb: Heartbeat, verdict: Verdict | "untrusted", replayed: boolean): void;
  /** After each event; `touched` is the machine that handled it, or null when anything may have changed. */
  afterStep(world: World, touched: SimNode | null): void;
}

export class World {
  readonly clock = new ManualClock(0);
  readonly nodes = new Map<string, SimNode>();
  readonly #links = new Map<string, Map<string, Link>>();
  readonly trace: string[] | null;
  faultsStopped = false;
  /**
   * The operator's adds and removals of the backup (readd-backup): "initial" until a removal; then
   * "removed" (the servers may drop their pairing, and neither pairs again) until an Add Backup begins.
   */
  backupAdds: "initial" | "removed" | "added-again" = "initial";
  /** Bumped by every change to links or processes, so the checker knows when to look again. */
  topology = 0;
  /** Bumped whenever a server starts or stops serving, a client's hub moves, or a process dies or starts. */
  stateVersion = 0;
  readonly #queue = new EventQueue<SimEvent>();
  /** Hand-overs of heartbeats ahead so far: each one's number (a later one replaces it for its address). */
  #handovers = 0;
  /** Set before the first spawn. */
  machinery: Machinery | null = null;
  /** The production pairing exchange and keeper (sim-pairing.ts); set before the first spawn. */
  pairing: PairingMachinery | null = null;

  constructor(
    readonly cfg: SimConfig,
    readonly net: Rng,
    readonly observer: Observer,
    tracing: boolean,
  ) {
    this.trace = tracing ? [] : null;
  }

  now(): number {
    return this.clock.now();
  }

  log(line: string): void {
    this.trace?.push(`${String(this.now()).padStart(6)} ${line}`);
  }

  /** The link from → to, to change it (a fault): the checker recomputes connectivity after. */
  link(from: string, to: string): Link {
    this.topology += 1;
    return this.linkState(from, to);
  }

  /** The link from → to, to read it. */
  linkState(from: string, to: string): Link {
    let row = this.#links.get(from);
    if (!row) this.#links.set(from, (row = new Map()));
    let l = row.get(to);
    if (!l) row.set(to, (l = this.#newLink(from, to)));
    return l;
  }

  /** Every change of a link's cut, in order: the Data Hub's ledger reads when a machine was cut off from its hub. */
  readonly cutLog: { readonly t: number; readonly from: string; readonly to: string; readonly cut: boolean }[] = [];

  #newLink(from: string, to: string): Link {
    let cut = false;
    const log = this.cutLog;
    const clock = this.clock;
    return {
      get cut() {
        return cut;
      },
      set cut(value: boolean) {
        if (value !== cut) log.push({ t: clock.now(), from, to, cut: value });
        cut = value;
      },
      loss: 0,
      extraDelay: 0,
    };
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Adds a machine and starts it now. Clients know both server addresses unless told otherwise. */
  spawn(name: string, role: Role, knows = { main: true, backup: true }, disk?: Partial<SimNode["disk"]>): SimNode {
    const node: SimNode = {
      name, role, runner: null, state: null, frozen: false, loopOnly: false, ahead: new Map(), queue: [], inc: 0,
      disk: { epoch: 0, pairing: null, lanes: EMPTY_LANES, formerPartners: [], ...disk }, serving: null,
      following: { server: null, epoch: null }, offset: this.net.int(0, 1_000_000), knows: { ...knows }, startedAt: 0, lastFromOther: -Infinity,
      lastFromOtherState: null, brokenSinceHeard: false, caughtUp: false, copyFailingSince: null, frozenAt: 0, lastFreezeMs: 0,
    };
    this.nodes.set(name, node);
    this.topology += 1;
    this.start(node);
    return node;
  }

  at(t: number, label: string, run: () => void): void {
    this.#push(t, { kind: "action", label, run });
  }

  /**
   * Set when a promise the machinery handed out settled (a dial's answer): its callbacks run
   * before the next event, as a machine's promise jobs run before its next timer or socket event.
   */
  promisesSettled = false;
  /** As `promisesSettled`, for a chain of many awaits (the pairing exchange: sim-pairing.ts): more promise jobs run before the next event. */
  longChainSettled = false;

  /** Processes every event up to and including time `until`. */
  async runUntil(until: number): Promise<void> {
    for (;;) {
      const top = this.#queue.peek();
      if (!top || top.t > until) break;
      this.#queue.pop();
      this.clock.advanceTo(top.t);
      this.#runnerCalled = false;
      const touched = this.#handle(top.ev);
      while (this.promisesSettled || this.longChainSettled) {
        const turns = this.longChainSettled ? 128 : 16;
        this.promisesSettled = this.longChainSettled = false;
        await drainPromiseJobs(turns);
      }
      // The machinery's frames and timers that never reached a runner change nothing the checker reads.
      if (top.ev.kind === "deliver" && top.ev.msg.kind === "run" && !this.#runnerCalled) continue;
      this.observer.afterStep(this, touched);
    }
    if (this.now() < until) this.clock.advanceTo(until);
  }

  // ---- faults -------------------------------------------------------------

  crash(name: string): void {
    const n = this.node(name);
    if (!n.state) return;
    this.log(`CRASH ${name}`);
    this.topology += 1;
    this.stateVersion += 1;
    n.runner?.stop();
    n.runner = null;
    n.state = null;
    n.frozen = false;
    n.queue.length = 0;
    n.serving = null;
    this.machinery?.crashed(n);
    // The kernel closes the dead process's sockets: peers connected to it see them break.
    if (n.role === "main" || n.role === "backup") {
      for (const peer of this.nodes.values()) {
        if (peer === n || !peer.state || this.linkState(name, peer.name).cut) continue;
        const connected = peer.role === "client" ? peer.following.server === n.role : peer.role !== n.role;
        if (connected) this.#send(peer.name, { kind: "linkBroken", peer: n.role }, this.#latency(), false);
      }
    }
  }

  restart(name: string): void {
    const n = this.node(name);
    if (n.state) return;
    this.log(`RESTART ${name} (persisted epoch ${n.disk.epoch})`);
    this.topology += 1;
    this.start(n);
  }

  /**
   * The backup restarts without its pairing record (pairing.json deleted or restored from an
   * older copy) while the main keeps its own: the two disagree until the main pairs again.
   */
  forgetPairing(name: string): void {
    const n = this.node(name);
    this.crash(name);
    this.log(`${name} LOSES its pairing record`);
    n.disk.pairing = null;
    this.restart(name);
  }

  /** SIGSTOP, or with `loopOnly` a stall of its event loop alone (its heartbeat thread runs on). */
  freeze(name: string, loopOnly = false): void {
    const n = this.node(name);
    if (!n.state || n.frozen) return;
    this.log(`FREEZE ${name}${loopOnly ? " (event loop only)" : ""}`);
    this.topology += 1;
    n.frozen = true;
    n.loopOnly = loopOnly;
    n.frozenAt = this.now();
  }

  resume(name: string): void {
    const n = this.node(name);
    if (!n.frozen) return;
    this.log(`RESUME ${name} (${n.queue.length} queued)`);
    this.topology += 1;
    n.frozen = false;
    n.loopOnly = false;
    n.lastFreezeMs = this.now() - n.frozenAt;
    // An event loop may run its overdue timer before it reads the socket buffers: the core must cope.
    if (this.net.chance(0.5)) this.#call(n, (r) => r.tick());
    // Each queued input is a step of its own for the checker, as it is for the machine.
    while (n.queue.length > 0 && n.state && !n.frozen) {
      this.#receive(n, n.queue.shift()!);
      this.observer.afterStep(this, n);
    }
  }

  switchBack(): void {
    this.log("SWITCH BACK requested on the main");
    const main = this.node("main");
    if (main.state) this.#deliverTo(main, { kind: "event", event: { type: "switchBack" } });
  }

  /** The operator's Add Backup on the main's Machines panel (sim-pairing.ts runs the production exchange). */
  pair(mainLagMs = 0): void {
    this.pairing?.addBackup(mainLagMs);
  }

  /** The operator removes the backup on the main's Machines panel: the main tells the backup over /pair, then forgets it. */
  removeBackup(): void {
    this.pairing?.removeBackup();
  }

  /** A machine's settings are saved again unchanged (the setup pages' Connect with nothing changed). */
  resave(name: string): void {
    const n = this.node(name);
    if (!n.runner || n.frozen) return;
    this.log(`RESAVE settings on ${name}`);
    this.resaving = n;
    const servers = n.runner.serverAddresses();
    this.#call(n, (r) => this.#setServers(n, r, servers));
    this.resaving = null;
  }

  /** A new write on the active main: its Data Hub state or its log moves on. */
  write(lane: "hub" | "log"): void {
    const m = this.node("main");
    if (!m.state || m.serving === null) return;
    if (lane === "hub") this.machinery?.writeHub(m);
    else this.machinery?.writeLog(m);
  }

  /**
   * A recorded heartbeat delivered again by someone on the wire, to any machine. Taken as still opening
   * under its sender's key wherever it lands (a stronger adversary than the wire allows): freshness alone must refuse it.
   */
  replay(to: string, hb: Heartbeat): void {
    this.#send(to, { kind: "beat", from: hb.name, hb, replayed: true, sealedBy: hb.id }, this.#latency(), false);
  }

  /**
   * A rogue holder of the network key (a client machine, or an app on one that read its data dir)
   * sends `hb`, whatever it claims, to `to`, from the source address `from` (UDP: it may spoof one).
   * It holds no other machine's key: the datagram is sealed under the network key, or under its own.
   */
  forge(to: string, hb: Heartbeat, from: string, sealedBy: typeof ROGUE | null): void {
    this.log(`ROGUE -> ${to} (from ${from}): ${hb.id} as ${hb.role} ${hb.state} epoch ${hb.epoch}/${hb.activeEpoch} pairedWith ${hb.pairedWith}`);
    this.#send(to, { kind: "beat", from, hb, replayed: false, sealedBy }, this.#latency(), false);
  }

  /**
   * The rogue asks the backup over /pair to pair with it or to unpair, claiming to be `claims` in the
   * frame. The signed handshake proved who it is (ROGUE, at its own address), and the backup's
   * rules (core/pairing-rules.ts) judge that, not the claim.
   */
  rogueAsks(kind: "pair" | "unpair", claims: string): void {
    const b = this.node("backup");
    if (!b.state || b.frozen) return;
    const pairedWith = b.disk.pairing?.peerId ?? null;
    if (kind === "unpair") {
      this.log(`ROGUE asks the backup to unpair, as ${claims}`);
      if (unpairCounts(pairedWith, ROGUE)) this.#deliverTo(b, { kind: "event", event: { type: "unpaired" } });
      return;
    }
    const refusal = pairRequestRefusal({
      name: "backup", role: "backup", license: "server-with-failover", expectedMainHost: "main", pairedWith,
      fromId: ROGUE, fromHost: ROGUE, requesterLicense: "server-with-failover",
    });
    this.log(`ROGUE asks the backup to pair, as ${claims}: ${refusal ? refusal.code : "accepted"}`);
    if (refusal === null) this.#deliverTo(b, { kind: "event", event: { type: "paired", peerId: ROGUE } });
  }

  /** The machine whose unchanged settings are being saved again right now (the checker watches its effects). */
  resaving: SimNode | null = null;

  /** Every heartbeat sent so far, with its send time (what a wiretap records). */
  readonly sent: { t: number; hb: Heartbeat }[] = [];

  /** A client's setup page now has these server addresses. */
  setServers(name: string, knows: { main: boolean; backup: boolean }): void {
    const n = this.node(name);
    Object.assign(n.knows, knows);
    this.#deliverTo(n, { kind: "setServers", ...knows });
  }

  /** Faults stop: links heal, and messages still held up by a fault are lost with it. */
  healNetwork(): void {
    this.log("HEAL all links");
    for (const row of this.#links.values()) for (const l of row.values()) Object.assign(l, { cut: false, loss: 0, extraDelay: 0 });
    this.topology += 1;
    const latest = this.now() + this.cfg.latency[1];
    for (const q of this.#queue.entries()) if (q.ev.kind === "deliver" && q.ev.faulty && q.t > latest) q.ev.cancelled = true;
  }

  /**
   * Runs `run` on machine `to` at time `t`, in the incarnation `inc` (dropped if that process died),
   * queued while it is frozen: how the machinery's frames and timers reach a machine.
   */
  postAt(to: string, t: number, inc: number, run: () => void): void {
    this.#push(Math.max(t, this.now()), { kind: "deliver", to, msg: { kind: "run", inc, run }, faulty: false, cancelled: false });
  }

  /** A connection of `n`'s to a server broke (its machinery saw it close): the runner hears it, as on a machine. */
  connectionBroke(n: SimNode, peer: ServerRole): void {
    this.#receive(n, { kind: "linkBroken", peer });
  }

  /** Each machine's host address: its name, unless a family gives it another (IPv6). */
  readonly addresses = new Map<string, string>();

  addressOf(name: string): string {
    return this.addresses.get(name) ?? name;
  }

  endpointOf(name: string): Endpoint {
    return { host: this.addressOf(name), port: 0 };
  }

  /** The machine at `host`, or null. */
  nameAt(host: string): string | null {
    if (this.addresses.size === 0) return host;
    for (const [name, address] of this.addresses) if (address === host) return name;
    return this.addresses.has(host) ? null : host;
  }

  /** One draw of the healthy network's one-way latency. */
  latency(): number {
    return this.#latency();
  }

  // ---- the runner -----------------------------------------------------------

  private start(n: SimNode): void {
    this.stateVersion += 1;
    n.inc += 1;
    n.serving = null;
    n.following = { server: null, epoch: null };
    Object.assign(n, {
      startedAt: this.now(), lastFromOther: -Infinity, lastFromOtherState: null, brokenSinceHeard: false, caughtUp: false, copyFailingSince: null,
    });
    const inc = n.inc;
    this.machinery?.started(n);
    const mine = (): boolean => n.inc === inc;
    const servers = { main: n.knows.main || n.role === "backup" ? this.endpointOf("main") : null, backup: n.knows.backup || n.role === "main" ? this.endpointOf("backup") : null };
    n.runner = new FailoverRunner({
      role: n.role,
      id: n.name,
      name: n.name,
      boot: `boot-${n.name}-${inc}`,
      transport: {
        send: (hb, to) => mine() && this.#transmit(n, to.host, hb),
        sendAhead: (beats, to) => {
          if (!mine()) return;
          const handover = ++this.#handovers;
          n.ahead.set(to.host, handover);
          for (const b of beats) this.#push(b.at - n.offset, { kind: "ahead", node: n.name, inc, host: to.host, handover, hb: b.heartbeat, notAfter: b.notAfter });
        },
        dropAhead: () => void (mine() && n.ahead.clear()),
      },
      servers,
      timings: this.cfg.timings,
      failback: this.cfg.failback,
      epochStore: n.role === "client" ? null : { read: () => n.disk.epoch, write: (epoch) => void (n.disk.epoch = epoch) },
      pairingStore: n.role === "client" ? null : (this.pairing?.store(n) ?? { read: () => n.disk.pairing, write: (pairing) => void (n.disk.pairing = pairing) }),
      clock: { now: () => this.now() + n.offset },
      // The world ticks each runner itself (on its own phase), as the runner's own timer would.
      timers: { every: () => () => {} },
      log: { info: (m) => this.log(`${n.name} log: ${m}`), warn: (m) => this.log(`${n.name} log: ${m}`) },
      formerPartnerStore: n.role === "main" ? { read: () => n.disk.formerPartners, write: (ids) => void (n.disk.formerPartners = ids) } : null,
      lanes: n.role === "client" ? undefined : () => n.disk.lanes,
      // Clients identify each server by a peer handshake with its address; here that has always happened.
      knownServers: () => ({ main: "main", backup: "backup" }),
      // Every honest machine has sealed to every other by now; the rogue's key is known only where it sealed with it.
      keyKnown: (id) => id !== ROGUE,
      signer: simSigner(n.name),
      hooks: {
        startServing: (epoch) => {
          this.stateVersion += 1;
          n.serving = epoch;
          n.caughtUp = false;
          n.copyFailingSince = null;
          this.log(`${n.name}: START serving at epoch ${epoch}`);
          this.machinery?.startServing(n, epoch);
        },
        stopServing: (epoch) => {
          this.stateVersion += 1;
          n.serving = null;
          this.log(`${n.name}: STOP serving epoch ${epoch}`);
          this.machinery?.stopServing(n, epoch);
        },
        catchUp: (_epoch, done) => this.#catchUp(n, done),
        uplink: (target) => {
          this.stateVersion += 1;
          n.following = target.server === "self" ? { server: n.role as ServerRole, epoch: target.epoch } : { server: target.server, epoch: target.epoch };
          this.machinery?.uplink(n, target);
        },
        // The main's pairing keeper runs the exchange again (sim-pairing.ts).
        pairAgain: () => this.pairing?.pairAgain(n),
      },
      observer: {
        effect: (fx) => this.observer.effect(this, n, fx),
        heartbeat: (hb, verdict) => this.#judged(n, hb, verdict),
      },
    });
    n.state = n.runner.current;
    this.pairing?.started(n);
    // Each runner ticks on its own phase, as separate machines do.
    this.#push(this.now() + this.net.int(1, this.cfg.tickMs), { kind: "tick", node: n.name, inc: n.inc });
  }

  /** Handles one event; returns the machine it touched, or null if it may have touched any. */
  #handle(ev: SimEvent): SimNode | null {
    switch (ev.kind) {
      case "action":
        if (ev.label !== "") this.log(`-- ${ev.label}`);
        ev.run();
        return null;
      case "tick": {
        const n = this.node(ev.node);
        if (!n.state || n.inc !== ev.inc) return n; // that process is gone; its timer with it
        this.#push(this.now() + this.cfg.tickMs, ev);
        if (!n.frozen) this.#call(n, (r) => r.tick());
        return n;
      }
      case "ahead": {
        const n = this.node(ev.node);
        // Gone with its process, replaced or dropped by its runner, stopped with its process (SIGSTOP), or too late to send.
        if (!n.state || n.inc !== ev.inc || n.ahead.get(ev.host) !== ev.handover || (n.frozen && !n.loopOnly) || this.now() + n.offset >= ev.notAfter) return n;
        this.#transmit(n, ev.host, ev.hb);
        return n;
      }
      case "deliver": {
        const n = this.nodes.get(ev.to);
        if (n && !ev.cancelled) this.#deliverTo(n, ev.msg);
        return n ?? null;
      }
    }
  }

  #deliverTo(n: SimNode, msg: Inbound): void {
    if (!n.state) return;
    if (n.frozen) n.queue.push(msg);
    else this.#receive(n, msg);
  }

  #replaying = false;

  #receive(n: SimNode, msg: Inbound): void {
    switch (msg.kind) {
      case "beat":
        this.#replaying = msg.replayed;
        this.#call(n, (r) => r.onHeartbeat(msg.hb, this.endpointOf(msg.from), msg.sealedBy));
        this.#replaying = false;
        return;
      case "linkBroken":
        if (msg.peer !== n.role) n.brokenSinceHeard = true;
        this.#call(n, (r) => r.linkBroken(msg.peer));
        return;
      case "catchUp":
        if (msg.inc !== n.inc) return;
        if (msg.ok) n.caughtUp = true;
        else n.copyFailingSince ??= this.now();
        this.#call(n, () => msg.done(msg.ok));
        return;
      case "event":
        this.#call(n, (r) => r.feed(msg.event));
        return;
      case "setServers":
        this.#call(n, (r) => this.#setServers(n, r, { main: msg.main ? this.endpointOf("main") : null, backup: msg.backup ? this.endpointOf("backup") : null }));
        return;
      case "run":
        if (msg.inc === n.inc) msg.run();
    }
  }

  /**
   * Settings saved (peer-runtime.ts updateServers): the runner takes the addresses, and the hub uplink
   * dials the server it follows at the address named now (it kept the old one: sim seed 1576, move-main).
   */
  #setServers(n: SimNode, r: FailoverRunner, servers: { main: Endpoint | null; backup: Endpoint | null }): void {
    r.setServers(servers);
    this.machinery?.uplink(n, r.uplink);
  }

  /** An event for a machine's runner from its machinery (the copy's first complete answer, say). */
  feed(n: SimNode, event: NodeEvent): void {
    this.#receive(n, { kind: "event", event });
  }

  /** Bookkeeping for the checker: which heartbeats counted, and which replays did. */
  #judged(n: SimNode, hb: Heartbeat, verdict: Verdict | "untrusted"): void {
    if (verdict === "fresh" && hb.role !== "client" && hb.role !== n.role) {
      Object.assign(n, { lastFromOther: this.now(), lastFromOtherState: hb.state, brokenSinceHeard: false });
    }
    this.observer.heartbeat(this, n, hb, verdict, this.#replaying);
  }

  /** Calls into a machine's runner and refreshes the state the checker reads. */
  #runnerCalled = false;

  #call(n: SimNode, run: (runner: FailoverRunner) => void): void {
    const r = n.runner;
    if (!r) return;
    this.#runnerCalled = true;
    const before = this.trace ? describe(r.current) : "";
    run(r);
    n.state = n.runner?.current ?? null;
    if (this.trace && n.state) {
      const after = describe(n.state);
      if (after !== before) this.log(`${n.name}: ${before} -> ${after}`);
    }
  }

  /** The main's catch-up runs in the machinery (sim-hub.ts), as peer-runtime.ts runs it. */
  #catchUp(main: SimNode, done: (ok: boolean) => void): void {
    const inc = main.inc;
    const deliver = (ok: boolean) => {
      if (main.state && main.inc === inc) this.#deliverTo(main, { kind: "catchUp", ok, done, inc });
    };
    if (this.machinery) this.machinery.catchUp(main, deliver);
    else deliver(false);
  }

  #transmit(from: SimNode, host: string, hb: Heartbeat): void {
    this.sent.push({ t: this.now(), hb });
    const to = this.nameAt(host);
    if (to === null) return;
    this.#transmitMsg(from, to, { kind: "beat", from: from.name, hb, replayed: false, sealedBy: from.name });
  }

  #transmitMsg(from: SimNode, to: string, msg: Inbound): void {
    if (!this.nodes.has(to)) return;
    const l = this.linkState(from.name, to);
    if (l.cut) return;
    if (l.loss > 0 && this.net.chance(l.loss)) return;
    const extra = l.extraDelay > 0 ? this.net.int(0, l.extraDelay) : 0;
    this.#send(to, msg, this.#latency() + extra, extra > 0);
  }

  #latency(): number {
    return this.net.int(this.cfg.latency[0], this.cfg.latency[1]);
  }

  #send(to: string, msg: Inbound, delay: number, faulty: boolean): void {
    this.#push(this.now() + delay, { kind: "deliver", to, msg, faulty, cancelled: false });
  }

  #push(t: number, ev: SimEvent): void {
    this.#queue.push(t, ev);
  }
}

/**
 * Runs every promise job queued now, however long its chain (a show-file entry's apply awaits a
 * dozen times): a macrotask runs after them all. Deno has no setImmediate: `turns` promise jobs there.
 */
const drainPromiseJobs: (turns: number) => Promise<void> =
  typeof setImmediate === "function"
    ? () => new Promise<void>((resolve) => setImmediate(resolve))
    : async (turns) => {
        for (let i = 0; i < turns; i++) await null;
      };

/** The rogue key holder's machine id and address (it runs no runner: test/sim/schedules.ts rogue()). */
export const ROGUE = "rogue";

/**
 * A stand-in for Ed25519 that costs nothing (the simulator runs thousands of seeds): a machine's
 * "signature" names it and the message. The rogue holds no server's key, so it may only copy
 * signatures it saw on the wire or make its own (schedules.ts); it never writes one in a server's name.
 */
export function simSigner(self: string): ClaimSigner {
  return {
    sign: (message) => simSignature(self, message),
    verify: (id, message, signature) => signature === simSignature(id, message),
    // Tokens for heartbeats built ahead: the simulator has no thread to wait for, every period is signed.
    readyAhead: (claim, at) => {
      if (claim.id !== self) return null;
      const t = Math.floor(at / claim.periodMs) * claim.periodMs;
      return { b: claim.boot, t, s: simSignature(self, aliveMessage(claim.role, claim.id, claim.boot, t)) };
    },
  };
}

export function simSignature(id: string, message: string): string {
  return `sig(${id}|${message})`;
}
