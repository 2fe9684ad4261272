/**
 * The in-memory twin of the peer port (peer-net.ts, docs/design.md §Ports), as hashicorp/raft ships
 * InmemTransport beside its TCP one: the same contract, no sockets, on an
 * injected clock and per-machine timers, so the simulator and unit tests run
 * the production services over it and drive its faults.
 *
 * A MemoryNetwork joins the machines; each `attach`es a MemoryPeerNet at its
 * address. A connection behaves as the secure socket does: a dial takes a
 * round trip and is refused when the two hold different network keys; frames
 * arrive in order each way; a close arrives after what was sent before it.
 * Faults, per direction between two hosts (`link(from, to)`):
 * - `cut`: frames wait until the link heals (TCP sends them again); a cut
 *   that outlasts `breakAfterMs` breaks the connection, and a dial across it fails;
 * - `delayMs`: each frame is late by up to that much (order kept);
 * - `loss`: the chance a frame's segment is lost and sent again, a
 *   retransmission timeout late (order kept: TCP);
 * - `drop`: the chance a frame is lost, which breaks the connection as a
 *   stream that cannot resend it would;
 * - `duplicate`: the chance a frame is delivered twice (a faulty middlebox),
 *   for services that must not count on the transport for exactly-once.
 * A machine's timers decide when its inputs run: a simulator holds them while
 * the machine is frozen and drops them once it died. `crash()` makes a
 * machine vanish: its peers hear their connections break, dials to it fail.
 */
import type { Clock, Timers } from "../core/clock.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import { sameNetworkKey } from "../core/keys.ts";
import { HandshakeFailed, NetworkKeyMismatch } from "./errors.ts";
import type { PeerNet, PeerService } from "./peer-net.ts";
import type { PeerPath } from "./peer-endpoint.ts";
import type { AuthenticatedPeer } from "./channel.ts";
import { CLOSE_NETWORK_KEY_CHANGED, type ConnectionEvents, type SecureConnection } from "./secure-socket.ts";

/** Faults on one direction between two hosts; all off by default. */
export type MemoryLink = { cut: boolean; delayMs: number; loss: number; drop: number; duplicate: number };

export type MemoryNetworkOptions = {
  clock: Clock;
  /** One-way latency of a healthy link, ms (drawn per frame). */
  latencyMs: () => number;
  /** Uniform in [0, 1), for the faults' chances and delays (a seeded generator in the simulator). */
  random: () => number;
  /** How long a cut may hold a frame before the connection breaks (TCP giving up). Default 5 s. */
  breakAfterMs?: number;
  /** How long a dial across a cut waits before it fails. Default `breakAfterMs`. */
  connectTimeoutMs?: number;
  /** A retransmission timeout: how late a lost segment arrives, ms (drawn per loss). Default 200 to 800. */
  retransmitMs?: () => number;
  /** The faults between two hosts, when the caller keeps them (a simulator's own link table); else the network keeps its own. */
  links?: (from: string, to: string) => MemoryLink;
  /** A network key's fingerprint, for the mismatch message (core/keys.ts fingerprint in production-like tests). */
  fingerprint: (networkKey: Uint8Array) => string;
};

export type MemoryMachine = {
  at: HostPort;
  /** Its machine id and public key, as a handshake would prove them. */
  machineId: string;
  publicKey: Uint8Array;
  networkKey: Uint8Array;
  /** This machine's timers: every input to it runs through them. */
  timers: Timers;
};

/** Close code and reason of a connection broken by the network (the socket would say 1006). */
const BROKEN = "The connection was lost.";
const NO_SERVICE = 4003;

type Carried = { readonly kind: "message" | "broadcast" | "bulk" | "close"; readonly payload: Uint8Array | null; readonly reason: string; readonly code?: number; at: number; readonly sentAt: number };

/** One end of a connection. */
class End implements SecureConnection {
  events: ConnectionEvents | null = null;
  /** This end closed (or heard the close): it sends and receives nothing more. */
  done = false;
  other!: End;
  readonly inbound: Carried[] = [];
  scheduled = false;

  constructor(
    readonly owner: MemoryPeerNet,
    readonly conn: Connection,
    readonly peer: AuthenticatedPeer,
  ) {}

  get open(): boolean {
    return !this.done && !this.conn.broken;
  }

  send(payload: Uint8Array): boolean {
    return this.carry("message", payload);
  }

  sendSealed(frame: Uint8Array): boolean {
    return this.carry("broadcast", frame);
  }

  sendBulk(payload: Uint8Array, head?: Uint8Array): boolean {
    if (!head) return this.carry("bulk", payload);
    const joined = new Uint8Array(head.length + payload.length);
    joined.set(head);
    joined.set(payload, head.length);
    return this.carry("bulk", joined);
  }

  close(code?: number, reason = "closed"): void {
    if (!this.open) return;
    this.done = true;
    this.owner.network.enqueue(this, "close", null, reason, code);
    this.owner.forget(this.conn);
  }

  private carry(kind: Carried["kind"], payload: Uint8Array): boolean {
    if (!this.open) return false;
    // A copy: the sender may reuse its buffer, and the receiver must not see later writes to it.
    this.owner.network.enqueue(this, kind, payload.slice(), "");
    return true;
  }
}

type Connection = {
  broken: boolean;
  readonly path: PeerPath;
  dialer: End | null;
  listener: End | null;
  /** While the handshake runs: fails the dial (the listener died or the network broke it meanwhile). */
  failDial: (() => void) | null;
};

export class MemoryNetwork {
  readonly #links = new Map<string, MemoryLink>();
  readonly #machines = new Map<string, MemoryPeerNet>();
  readonly breakAfterMs: number;
  readonly connectTimeoutMs: number;
  /** Dials refused because the two machines hold different network keys. */
  keyRefusals = 0;

  constructor(readonly options: MemoryNetworkOptions) {
    this.breakAfterMs = options.breakAfterMs ?? 5_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? this.breakAfterMs;
  }

  /** The faults from host `from` to host `to` (addresses' host parts), to read or change. */
  link(from: string, to: string): MemoryLink {
    if (this.options.links) return this.options.links(from, to);
    const key = `${from}\u0000${to}`;
    let l = this.#links.get(key);
    if (!l) this.#links.set(key, (l = { cut: false, delayMs: 0, loss: 0, drop: 0, duplicate: 0 }));
    return l;
  }

  /** Every fault off: links heal (frames held by a cut go on). */
  heal(): void {
    for (const l of this.#links.values()) Object.assign(l, { cut: false, delayMs: 0, loss: 0, drop: 0, duplicate: 0 });
  }

  /** A machine joins at `machine.at`; one at the same address is replaced (a restart). */
  attach(machine: MemoryMachine): MemoryPeerNet {
    const net = new MemoryPeerNet(this, machine);
    const address = formatHostPort(machine.at);
    this.#machines.get(address)?.crash();
    this.#machines.set(address, net);
    return net;
  }

  /** @internal the machine listening at `to`, if any. */
  listenerAt(to: HostPort): MemoryPeerNet | null {
    const net = this.#machines.get(formatHostPort(to));
    return net && !net.stopped ? net : null;
  }

  /** @internal */
  detach(net: MemoryPeerNet): void {
    const address = formatHostPort(net.machine.at);
    if (this.#machines.get(address) === net) this.#machines.delete(address);
  }

  /** @internal one way's latency and faults for a frame sent now from → to; null when it is lost. */
  arrival(from: HostPort, to: HostPort, after: number): number | null {
    const l = this.link(from.host, to.host);
    const { random, latencyMs, clock } = this.options;
    if (l.drop > 0 && random() < l.drop) return null;
    let at = clock.now() + latencyMs();
    if (l.delayMs > 0) at += Math.floor(random() * (l.delayMs + 1));
    if (l.loss > 0 && random() < l.loss) at += this.options.retransmitMs?.() ?? 200 + Math.floor(random() * 600);
    return Math.max(at, after);
  }

  /** @internal queues a frame (or the close) from `end` to its other end. */
  enqueue(end: End, kind: Carried["kind"], payload: Uint8Array | null, reason: string, code?: number): void {
    const to = end.other;
    const last = to.inbound[to.inbound.length - 1];
    const at = this.arrival(end.owner.machine.at, to.owner.machine.at, last?.at ?? 0);
    if (at === null) return this.breakConnection(end.conn);
    const now = this.options.clock.now();
    to.inbound.push({ kind, payload, reason, code, at, sentAt: now });
    const duplicate = this.link(end.owner.machine.at.host, to.owner.machine.at.host).duplicate;
    if (kind !== "close" && duplicate > 0 && this.options.random() < duplicate) to.inbound.push({ kind, payload, reason, at, sentAt: now });
    this.pump(to);
  }

  /** @internal delivers what is due to `end` through its machine's timers; a cut holds it back. */
  pump(end: End): void {
    const head = end.inbound[0];
    if (end.scheduled || !head || end.events === null || end.conn.broken) return;
    end.scheduled = true;
    const now = this.options.clock.now();
    end.owner.machine.timers.after(Math.max(0, head.at - now), () => {
      end.scheduled = false;
      if (end.conn.broken || end.done) return;
      const t = this.options.clock.now();
      const from = end.other.owner.machine.at.host;
      if (this.link(from, end.owner.machine.at.host).cut) {
        if (t - end.inbound[0]!.sentAt >= this.breakAfterMs) return this.breakConnection(end.conn);
        const retry = t + Math.max(1, Math.round(this.options.latencyMs() * 10));
        for (const c of end.inbound) c.at = Math.max(c.at, retry);
        return this.pump(end);
      }
      while (end.inbound.length > 0 && end.inbound[0]!.at <= t && !end.done && !end.conn.broken) {
        const c = end.inbound.shift()!;
        if (c.kind === "close") {
          end.done = true;
          end.owner.forget(end.conn);
          end.events?.close(c.reason, c.code);
          return;
        }
        if (c.kind === "message") end.events?.message(c.payload!);
        else if (c.kind === "broadcast") end.events?.broadcast?.(c.payload!);
        else if (end.events?.bulk) end.events.bulk(c.payload!);
        else {
          // As the socket does: a bulk frame with nowhere to go closes the connection as malformed.
          end.close(4002, "A bulk frame this connection does not take.");
          end.events?.close("A bulk frame this connection does not take.");
          return;
        }
      }
      this.pump(end);
    });
  }

  /** @internal both ends hear the close a wire's trip from now; frames in flight are lost. */
  breakConnection(conn: Connection): void {
    if (conn.broken) return;
    conn.broken = true;
    const failDial = conn.failDial;
    conn.failDial = null;
    if (failDial && conn.dialer && !conn.dialer.owner.stopped) conn.dialer.owner.machine.timers.after(this.options.latencyMs(), failDial);
    for (const end of [conn.dialer, conn.listener]) {
      if (!end || end.done) continue;
      end.done = true;
      end.owner.forget(conn);
      if (end.owner.stopped) continue;
      end.owner.machine.timers.after(this.options.latencyMs(), () => end.events?.close(BROKEN));
    }
  }
}

export class MemoryPeerNet implements PeerNet {
  readonly #services = new Map<PeerPath, PeerService>();
  readonly #connections = new Set<Connection>();
  stopped = false;

  constructor(
    readonly network: MemoryNetwork,
    readonly machine: MemoryMachine,
  ) {}

  get address(): string {
    return formatHostPort(this.machine.at);
  }

  dial(to: HostPort, path: PeerPath, events: (connection: SecureConnection) => ConnectionEvents): Promise<SecureConnection> {
    return new Promise<SecureConnection>((resolve, reject) => this.connect(to, path, events, (result) => (result instanceof Error ? reject(result) : resolve(result))));
  }

  /**
   * `dial` with its answer through a callback, on this machine's timers: a simulator that runs
   * its event queue without yielding to the promise jobs uses this; `done` runs once.
   */
  connect(to: HostPort, path: PeerPath, events: (connection: SecureConnection) => ConnectionEvents, done: (result: SecureConnection | Error) => void): void {
    const net = this.network;
    const address = formatHostPort(to);
    let settled = false;
    const settle = (result: SecureConnection | Error) => {
      if (settled) return;
      settled = true;
      conn.failDial = null;
      done(result);
    };
    const resolve = (c: SecureConnection) => settle(c);
    const reject = (e: Error) => settle(e);
    // Declared before any early return reads it through settle.
    const conn: Connection = { broken: false, path, dialer: null, listener: null, failDial: null };
    const fail = (error: Error, afterMs: number): void => void this.machine.timers.after(afterMs, () => reject(error));
    if (this.stopped) return reject(new HandshakeFailed(address, `${address} cannot be reached: this machine's peer port is stopped.`));
    const target = net.listenerAt(to);
    const there = net.link(this.machine.at.host, to.host);
    const back = net.link(to.host, this.machine.at.host);
    if (target === null) return fail(new HandshakeFailed(address, `Nothing answers at ${address}.`), 2 * net.options.latencyMs());
    if (there.cut || back.cut) return fail(new HandshakeFailed(address, `${address} does not answer (timed out).`), net.connectTimeoutMs);
    if (!sameNetworkKey(target.machine.networkKey, this.machine.networkKey)) {
      net.keyRefusals += 1;
      const { fingerprint } = net.options;
      return fail(new NetworkKeyMismatch(address, fingerprint(target.machine.networkKey), fingerprint(this.machine.networkKey)), 2 * net.options.latencyMs());
    }
    conn.failDial = () => reject(new HandshakeFailed(address, `${address} closed the connection during the handshake.`));
    const dialer = new End(this, conn, { machineId: target.machine.machineId, publicKey: target.machine.publicKey, address });
    const listener = new End(target, conn, { machineId: this.machine.machineId, publicKey: this.machine.publicKey, address: this.address });
    dialer.other = listener;
    listener.other = dialer;
    conn.dialer = dialer;
    conn.listener = listener;
    this.#connections.add(conn);
    target.#connections.add(conn);
    // The handshake: the listener learns of it a trip from now, the dialer a trip after that.
    const lost = () => this.machine.timers.after(net.options.latencyMs(), () => reject(new HandshakeFailed(address, `${address} closed the connection during the handshake.`)));
    target.machine.timers.after(net.options.latencyMs(), () => {
      if (conn.broken || target.stopped) return lost();
      const service = target.#services.get(path);
      if (!service) {
        listener.close(NO_SERVICE, `No service on ${path} here.`);
        this.machine.timers.after(net.options.latencyMs(), () => {
          if (dialer.events === null) reject(new HandshakeFailed(address, `${address} offers nothing on ${path}.`));
        });
        return;
      }
      listener.events = service.accept(listener);
      net.pump(listener);
      this.machine.timers.after(net.options.latencyMs(), () => {
        if (conn.broken || dialer.done) return reject(new HandshakeFailed(address, `${address} closed the connection during the handshake.`));
        dialer.events = events(dialer);
        resolve(dialer);
        net.pump(dialer);
      });
    });
  }

  serve(service: PeerService): () => void {
    this.#services.set(service.path, service);
    return () => {
      if (this.#services.get(service.path) === service) this.#services.delete(service.path);
    };
  }

  setNetworkKey(networkKey: Uint8Array): void {
    this.machine.networkKey = networkKey;
  }

  closeDialled(reason: string): void {
    this.#closeForKey("dialer", reason);
  }

  closeAccepted(reason: string): void {
    this.#closeForKey("listener", reason);
  }

  /** Closes this machine's open `side` of every connection, as a key change does (CLOSE_NETWORK_KEY_CHANGED). */
  #closeForKey(side: "dialer" | "listener", reason: string): void {
    for (const conn of [...this.#connections]) {
      const mine = conn[side];
      if (mine?.owner !== this || !mine.open) continue;
      mine.close(CLOSE_NETWORK_KEY_CHANGED, reason);
      // This side hears its own close too, as a socket's close handler runs for either side's close.
      mine.owner.machine.timers.after(0, () => mine.events?.close(reason, CLOSE_NETWORK_KEY_CHANGED));
    }
  }

  /** Stops listening; open connections close (their peers hear it). */
  stop(): void {
    if (this.stopped) return;
    for (const conn of [...this.#connections]) {
      const mine = conn.dialer?.owner === this ? conn.dialer : conn.listener;
      mine?.close(1001, "Shutting down.");
    }
    this.stopped = true;
    this.network.detach(this);
  }

  /** The process is gone: no close frames, its peers see the connections break. */
  crash(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const conn of [...this.#connections]) this.network.breakConnection(conn);
    this.network.detach(this);
  }

  /** @internal */
  forget(conn: Connection): void {
    if ((conn.dialer?.done ?? true) && (conn.listener?.done ?? true)) {
      for (const end of [conn.dialer, conn.listener]) if (end) end.owner.#connections.delete(conn);
    }
  }
}

