/**
 * The simulated world: one main, one backup, clients, a network of directed
 * links, and a runner per machine that executes core effects in order, just
 * as the real runner will. Everything happens on one ManualClock, in the
 * order of a seeded event queue, so a seed replays exactly.
 *
 * Faults: crash (process gone; restarts with only its persisted epoch),
 * freeze (SIGSTOP: no ticks, inputs queue up and are handled on resume),
 * per-link cut / loss / extra delay (partitions may be one-way).
 */
import type { Timings } from "../../src/core/failure-detector.ts";
import {
  startBackup,
  startClient,
  startMain,
  transition,
  type BackupEvent,
  type BeatBody,
  type ClientEvent,
  type Effect,
  type Failback,
  type MainEvent,
  type NodeState,
  type Peer,
  type Role,
  type ServerRole,
} from "../../src/core/failover/index.ts";
import { ManualClock } from "../support/clock.ts";
import { Rng } from "./prng.ts";
import { describe } from "./describe.ts";
import { EventQueue } from "./queue.ts";

export interface SimConfig {
  readonly timings: Timings;
  readonly failback: Failback;
  /** How often each runner ticks its core (TICK_MS in index.ts). */
  readonly tickMs: number;
  /** Normal one-way latency range, ms. */
  readonly latency: readonly [number, number];
  /** How long the main's copy from the backup takes, ms. */
  readonly catchUpMs: readonly [number, number];
}

type Inbound =
  | { readonly kind: "beat"; readonly from: string; readonly inc: number; readonly seq: number; readonly beat: BeatBody }
  | { readonly kind: "linkBroken"; readonly peer: ServerRole }
  | { readonly kind: "catchUp"; readonly ok: boolean; readonly token: number; readonly inc: number }
  | { readonly kind: "switchBack" }
  | { readonly kind: "setServers"; readonly main: boolean; readonly backup: boolean };

type SimEvent =
  | { kind: "deliver"; to: string; msg: Inbound; faulty: boolean; cancelled: boolean }
  | { kind: "tick"; node: string; inc: number }
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
  state: NodeState | null;
  frozen: boolean;
  readonly queue: Inbound[];
  inc: number;
  /** What survives a crash: the persisted epoch. */
  readonly disk: { epoch: number };
  /** The runner's view: the epoch it accepts Data Hub writes at, from start/stopServing. */
  serving: number | null;
  /** The client runner's view, from `follow` effects. */
  following: { server: ServerRole | null; epoch: number | null };
  readonly offset: number;
  sendSeq: number;
  readonly lastSeq: Map<string, { inc: number; seq: number }>;
  catchUpToken: number;
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

/** Hooks the invariant checker plugs in. `effect` runs before the runner executes it. */
export interface Observer {
  effect(world: World, node: SimNode, fx: Effect): void;
  /** After each event; `touched` is the machine that handled it, or null when anything may have changed. */
  afterStep(world: World, touched: SimNode | null): void;
}

export class World {
  readonly clock = new ManualClock(0);
  readonly nodes = new Map<string, SimNode>();
  readonly #links = new Map<string, Map<string, Link>>();
  readonly trace: string[] | null;
  faultsStopped = false;
  /** Bumped by every change to links or processes, so the checker knows when to look again. */
  topology = 0;
  /** Bumped whenever a server starts or stops serving, a client's hub moves, or a process dies or starts. */
  stateVersion = 0;
  readonly #queue = new EventQueue<SimEvent>();

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
    if (!l) row.set(to, (l = { cut: false, loss: 0, extraDelay: 0 }));
    return l;
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Adds a machine and starts it now. Clients know both server addresses unless told otherwise. */
  spawn(name: string, role: Role, knows = { main: true, backup: true }): SimNode {
    const node: SimNode = {
      name, role, state: null, frozen: false, queue: [], inc: 0, disk: { epoch: 0 }, serving: null,
      following: { server: null, epoch: null }, offset: this.net.int(0, 1_000_000), sendSeq: 0,
      lastSeq: new Map(), catchUpToken: 0, knows: { ...knows }, startedAt: 0, lastFromOther: -Infinity,
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

  /** Processes every event up to and including time `until`. */
  runUntil(until: number): void {
    for (;;) {
      const top = this.#queue.peek();
      if (!top || top.t > until) break;
      this.#queue.pop();
      this.clock.advanceTo(top.t);
      this.observer.afterStep(this, this.#handle(top.ev));
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
    n.state = null;
    n.frozen = false;
    n.queue.length = 0;
    n.serving = null;
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

  freeze(name: string): void {
    const n = this.node(name);
    if (!n.state || n.frozen) return;
    this.log(`FREEZE ${name}`);
    this.topology += 1;
    n.frozen = true;
    n.frozenAt = this.now();
  }

  resume(name: string): void {
    const n = this.node(name);
    if (!n.frozen) return;
    this.log(`RESUME ${name} (${n.queue.length} queued)`);
    this.topology += 1;
    n.frozen = false;
    n.lastFreezeMs = this.now() - n.frozenAt;
    // An event loop may run its overdue timer before it reads the socket buffers: the core must cope.
    if (this.net.chance(0.5)) this.#step(n, { type: "tick" });
    while (n.queue.length > 0 && n.state && !n.frozen) this.#receive(n, n.queue.shift()!);
  }

  switchBack(): void {
    this.log("SWITCH BACK requested on the main");
    const main = this.node("main");
    if (main.state) this.#deliverTo(main, { kind: "switchBack" });
  }

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

  // ---- the runner -----------------------------------------------------------

  private start(n: SimNode): void {
    this.stateVersion += 1;
    n.inc += 1;
    n.sendSeq = 0;
    n.serving = null;
    n.following = { server: null, epoch: null };
    Object.assign(n, {
      startedAt: this.now(), lastFromOther: -Infinity, lastFromOtherState: null, brokenSinceHeard: false, caughtUp: false, copyFailingSince: null,
    });
    const now = this.now() + n.offset;
    const t = this.cfg.timings;
    const step =
      n.role === "main"
        ? startMain({ timings: t, failback: this.cfg.failback, paired: true, epoch: n.disk.epoch }, now)
        : n.role === "backup"
          ? startBackup({ timings: t, paired: true, synced: true, epoch: n.disk.epoch }, now)
          : startClient({ timings: t, knows: n.knows }, now);
    n.state = step.state;
    this.#run(n, step.effects);
    // Each runner ticks on its own phase, as separate machines do.
    this.#push(this.now() + this.net.int(1, this.cfg.tickMs), { kind: "tick", node: n.name, inc: n.inc });
  }

  /** Handles one event; returns the machine it touched, or null if it may have touched any. */
  #handle(ev: SimEvent): SimNode | null {
    switch (ev.kind) {
      case "action":
        this.log(`-- ${ev.label}`);
        ev.run();
        return null;
      case "tick": {
        const n = this.node(ev.node);
        if (!n.state || n.inc !== ev.inc) return n; // that process is gone; its timer with it
        this.#push(this.now() + this.cfg.tickMs, ev);
        if (!n.frozen) this.#step(n, { type: "tick" });
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

  #receive(n: SimNode, msg: Inbound): void {
    switch (msg.kind) {
      case "beat": {
        // The net layer drops replays and older sequences from the same boot. It cannot
        // order boots, so a late datagram from a previous incarnation still gets through.
        const last = n.lastSeq.get(msg.from);
        if (last && last.inc === msg.inc && msg.seq <= last.seq) return;
        if (!last || msg.inc >= last.inc) n.lastSeq.set(msg.from, { inc: msg.inc, seq: msg.seq });
        if (msg.beat.role !== "client" && msg.beat.role !== n.role) {
          Object.assign(n, { lastFromOther: this.now(), lastFromOtherState: msg.beat.state, brokenSinceHeard: false });
        }
        this.#step(n, { type: "heartbeat", id: msg.from, beat: msg.beat });
        return;
      }
      case "linkBroken":
        if (msg.peer !== n.role) n.brokenSinceHeard = true;
        this.#step(n, { type: "linkBroken", peer: msg.peer });
        return;
      case "catchUp":
        if (msg.inc !== n.inc || msg.token !== n.catchUpToken) return;
        if (msg.ok) n.caughtUp = true;
        else n.copyFailingSince ??= this.now();
        this.#step(n, { type: msg.ok ? "catchUpDone" : "catchUpFailed" });
        return;
      case "switchBack":
        this.#step(n, { type: "switchBack" });
        return;
      case "setServers":
        this.#step(n, { type: "setServers", main: msg.main, backup: msg.backup });
    }
  }

  #step(n: SimNode, ev: MainEvent | BackupEvent | ClientEvent): void {
    const s = n.state;
    if (!s) return;
    const before = this.trace ? describe(s) : "";
    const r = transition(s as never, ev as never, this.now() + n.offset) as { state: NodeState; effects: readonly Effect[] };
    n.state = r.state;
    this.#run(n, r.effects);
    if (this.trace) {
      const after = describe(r.state);
      if (after !== before) this.log(`${n.name}: ${before} -> ${after} (on ${ev.type})`);
    }
  }

  #run(n: SimNode, effects: readonly Effect[]): void {
    for (const fx of effects) {
      this.observer.effect(this, n, fx);
      switch (fx.type) {
        case "persistEpoch":
          n.disk.epoch = fx.epoch;
          break;
        case "send":
          n.sendSeq += 1;
          this.#transmit(n, peerName(fx.to), { kind: "beat", from: n.name, inc: n.inc, seq: n.sendSeq, beat: fx.beat });
          break;
        case "startServing":
          this.stateVersion += 1;
          n.serving = fx.epoch;
          n.caughtUp = false;
          n.copyFailingSince = null;
          this.log(`${n.name}: START serving at epoch ${fx.epoch}`);
          break;
        case "stopServing":
          this.stateVersion += 1;
          n.serving = null;
          this.log(`${n.name}: STOP serving epoch ${fx.epoch}`);
          break;
        case "startCatchUp":
          this.#catchUp(n);
          break;
        case "follow":
          this.stateVersion += 1;
          n.following = { server: fx.server, epoch: fx.epoch };
          break;
        case "log":
          this.log(`${n.name} log: ${fx.message}`);
          break;
      }
    }
  }

  /** The copy works if, when it ends, the backup runs and both directions between them are up. */
  #catchUp(main: SimNode): void {
    const token = ++main.catchUpToken;
    const inc = main.inc;
    const delay = this.net.int(this.cfg.catchUpMs[0], this.cfg.catchUpMs[1]);
    this.at(this.now() + delay, "catch-up ends", () => {
      const b = this.nodes.get("backup");
      const ok = !!b?.state && !b.frozen && !this.linkState("main", "backup").cut && !this.linkState("backup", "main").cut;
      if (main.state && main.inc === inc) this.#deliverTo(main, { kind: "catchUp", ok, token, inc });
    });
  }

  #transmit(from: SimNode, to: string, msg: Inbound): void {
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

function peerName(p: Peer): string {
  return p.role === "client" ? p.id : p.role;
}
