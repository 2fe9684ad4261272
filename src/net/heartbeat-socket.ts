/**
 * The UDP edge for heartbeats: a thin adapter on a UDP socket around the pure
 * HeartbeatCodec. It binds, sends sealed heartbeats to given targets, and
 * hands decoded, validated heartbeats to a callback (the failover runner
 * judges their freshness: core/freshness.ts). Anything else (garbage, other
 * versions, foreign keys) is counted and dropped; nothing thrown by a
 * datagram escapes the socket callback.
 *
 * The socket lives on a thread of its own (udp-thread.ts), which also sends the
 * heartbeats handed over ahead (`sendAhead`) on time while the event loop is held.
 * If that thread cannot start or dies, the socket is bound on the event loop as
 * before (udp-direct.ts) and heartbeats are no longer sent ahead: a machine must
 * never go silent because of the thread.
 */
import { formatHostPort, type HostPort } from "../core/config.ts";
import { AppError } from "../core/errors.ts";
import type { RandomBytes } from "./crypto.ts";
import { listenError } from "./listen-error.ts";
import { HeartbeatCodec, type Heartbeat } from "./heartbeat.ts";
import type { HeartbeatKeys } from "./heartbeat-keys.ts";
import { pause } from "./system-time.ts";
import { bindOnThisThread, type UdpHandlers, type UdpPort } from "./udp-direct.ts";
import { UDP_THREAD_SOURCE, UdpThread, UdpThreadFailed, type UdpThreadHandlers } from "./udp-thread.ts";

/** Where a heartbeat goes to or came from (core/config.ts HostPort). */
export type UdpEndpoint = HostPort;

/** Why a datagram was dropped. */
export type HeartbeatDropReason =
  /** Too short, too long, truncated, or not a heartbeat frame. */
  | "malformed"
  /** Another wire version (an older or newer understudy). */
  | "version"
  /** Did not open: another network key, or altered on the way. */
  | "foreign"
  /** Opened, but the body does not fit the schema (or names another machine than the key that sealed it). */
  | "invalid"
  /** Sealed under a machine key not seen before, over this second's budget for new ones (heartbeat-keys.ts). */
  | "busy";

/**
 * A dropped datagram, or ("handler-error") an accepted heartbeat whose
 * `onHeartbeat` threw: a bug in the caller, reported rather than thrown into Bun.
 */
export type HeartbeatDrop = { reason: HeartbeatDropReason | "handler-error"; from: UdpEndpoint; error?: unknown };

/** received = accepted + every dropped count. */
export type HeartbeatSocketStats = {
  received: number;
  accepted: number;
  /** Accepted heartbeats whose `onHeartbeat` threw. */
  handlerErrors: number;
  dropped: Record<HeartbeatDropReason, number>;
  /** Sends refused at once (buffer full, a host name instead of an IP address, a refusal queued by the kernel). */
  sendFailures: number;
  /** Errors the kernel reported later, e.g. ECONNREFUSED after sending to a machine whose port is closed. */
  socketErrors: number;
  /** Heartbeats handed over ahead (`sendAhead`) that the socket's thread sent. */
  aheadSent: number;
  /** Heartbeats handed over ahead that came due at or after their `notAfter`, and were not sent. */
  aheadLate: number;
  /** Datagrams dropped unread: this thread had not yet taken the MAX_UNDELIVERED before them (a flood while the event loop was held). */
  overflowed: number;
  /** Why the socket runs on the event loop rather than its own thread (nothing is sent ahead then); null while on its thread. */
  threadFailure: string | null;
};

export type HeartbeatSocketOptions = {
  /** Address to bind, e.g. "0.0.0.0" or "127.0.0.1". */
  host: string;
  /** Port to bind; 0 picks a free one (see `port`). */
  port: number;
  networkKey: Uint8Array;
  /** This machine's pair keys: heartbeats to a machine whose key is known are sealed under it, and such heartbeats open. */
  keys?: HeartbeatKeys;
  /**
   * Every heartbeat that opened and validated (replays too: the runner refuses those), with the
   * machine whose key sealed it (null: the network key).
   */
  onHeartbeat: (heartbeat: Heartbeat, from: UdpEndpoint, sealedBy: string | null) => void;
  /** Every dropped datagram, for logs and counters; optional. */
  onDrop?: (drop: HeartbeatDrop) => void;
  /** Nonce source for sealing; tests pass `seededRandom`. */
  random?: RandomBytes;
  /** A send failed, now or later (target unknown then); e.g. the main is down. Optional, for logs. */
  onSendError?: (error: unknown, target: UdpEndpoint | null) => void;
  /** The setting named when binding fails (heartbeats share the peer port: 7401/udp). */
  flag?: string;
  /** The socket's thread could not start or died, and the socket is now bound on the event loop (said once; stats.threadFailure). Optional, for logs. */
  onThreadFailure?: (error: AppError) => void;
  /** The socket thread's code (tests give a broken one). */
  threadSource?: string;
};

/** How often binding on the event loop is tried again after the socket's thread died and a bind failed. */
const REBIND_MS = 250;

const ERROR_CODE_REASONS: Record<string, HeartbeatDropReason> = {
  WIRE_MALFORMED: "malformed",
  WIRE_VERSION: "version",
  WIRE_UNSEALED: "foreign",
  HEARTBEAT_INVALID: "invalid",
  HEARTBEAT_BUSY: "busy",
};

export class HeartbeatSocket {
  private readonly codec: HeartbeatCodec;
  private readonly options: HeartbeatSocketOptions;
  readonly stats: HeartbeatSocketStats;
  /** The bound socket; null only while it is bound again on the event loop after its thread died. */
  #io: UdpPort | null = null;
  #port = 0;
  #host = "";
  #closed = false;

  /** Binds `host:port` and starts receiving. A failed bind throws an AppError naming the setting (PORT_IN_USE, …). */
  static async bind(options: HeartbeatSocketOptions): Promise<HeartbeatSocket> {
    const self = new HeartbeatSocket(new HeartbeatCodec(options.networkKey, options.random, options.keys ?? null), options);
    try {
      self.#bound(await UdpThread.start(options.host, options.port, self.#threadHandlers(), options.threadSource ?? UDP_THREAD_SOURCE));
    } catch (error) {
      if (!(error instanceof UdpThreadFailed)) throw self.#listenError(error, options.port);
      self.#threadFailed(error);
      try {
        self.#bound(await bindOnThisThread(options.host, options.port, self.#handlers()));
      } catch (direct) {
        throw self.#listenError(direct, options.port);
      }
    }
    return self;
  }

  private constructor(codec: HeartbeatCodec, options: HeartbeatSocketOptions) {
    this.codec = codec;
    this.options = options;
    this.stats = {
      received: 0,
      accepted: 0,
      dropped: { malformed: 0, version: 0, foreign: 0, invalid: 0, busy: 0 },
      handlerErrors: 0,
      sendFailures: 0,
      socketErrors: 0,
      aheadSent: 0,
      aheadLate: 0,
      overflowed: 0,
      threadFailure: null,
    };
  }

  /** The bound port (the real one when bound with port 0). */
  get port(): number {
    return this.#port;
  }

  get host(): string {
    return this.#host;
  }

  /**
   * Seals `heartbeat` once (for machine `to` when its key is known) and sends
   * it to every target (IP addresses: Bun's UDP send takes no host names).
   * Returns how many sends were handed on (to the kernel, or to the socket's
   * thread); never throws for a target: a failure, now or from the thread, is
   * counted and goes to `onSendError`.
   */
  send(heartbeat: Heartbeat, targets: readonly UdpEndpoint[], to: string | null = null): number {
    const datagram = this.codec.encode(heartbeat, to);
    if (this.#io !== null) return this.#io.send(datagram, targets);
    for (const target of targets) this.#sendError(new Error("the heartbeat socket is being bound again"), target);
    return 0;
  }

  /**
   * Seals each heartbeat now (for machine `to` when its key is known) and hands them to the socket's
   * thread, which sends each to `target` at its `at` (this thread's `performance.now()` clock, as the
   * runner's) unless the next sendAhead for `target`, or dropAhead(), replaced it first; one not sent
   * before its `notAfter` is never sent. Does nothing when the socket runs on the event loop
   * (stats.threadFailure): what the event loop would send late is what a regular send does.
   */
  sendAhead(entries: readonly { heartbeat: Heartbeat; at: number; notAfter: number }[], target: UdpEndpoint, to: string | null): void {
    if (!(this.#io instanceof UdpThread)) return;
    const origin = performance.timeOrigin;
    this.#io.schedule(
      formatHostPort(target),
      entries.map((e) => ({ datagram: this.codec.encode(e.heartbeat, to), target, at: origin + e.at, notAfter: origin + e.notAfter })),
    );
  }

  /** Drops every heartbeat handed over and not yet sent (the runner's state changed). */
  dropAhead(): void {
    if (this.#io instanceof UdpThread) this.#io.clearSchedule();
  }

  /**
   * Heartbeats sealed under the network key use `networkKey` from now on; pair-sealed ones do not change.
   * Those handed over ahead are dropped (they may be sealed under the old key): the next regular heartbeat hands over new ones.
   */
  setNetworkKey(networkKey: Uint8Array): void {
    this.codec.setNetworkKey(networkKey);
    this.dropAhead();
  }

  /** Closes the socket (and its thread); resolves once the port is free. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#io?.close();
  }

  #bound(io: UdpPort): void {
    this.#io = io;
    this.#port = io.port;
    this.#host = io.host;
  }

  #handlers(): UdpHandlers {
    return {
      receive: (data, from, truncated) => this.receive(data, from, truncated),
      sendError: (error, target) => this.#sendError(error, target),
      socketError: (error) => this.socketError(error),
    };
  }

  #threadHandlers(): UdpThreadHandlers {
    return {
      ...this.#handlers(),
      overflowed: (count) => (this.stats.overflowed += count),
      ahead: (sent, late) => {
        this.stats.aheadSent += sent;
        this.stats.aheadLate += late;
      },
      died: (error) => void this.#rebind(error),
    };
  }

  /** The thread died (its port closed with it): bind the same port on the event loop, trying again until it is bound or closed. */
  async #rebind(error: UdpThreadFailed): Promise<void> {
    this.#io = null;
    this.#threadFailed(error);
    while (!this.#closed) {
      try {
        const io = await bindOnThisThread(this.options.host, this.#port, this.#handlers());
        if (this.#closed) return void io.close();
        return this.#bound(io);
      } catch (failure) {
        this.socketError(this.#listenError(failure, this.#port));
        await pause(REBIND_MS);
      }
    }
  }

  #threadFailed(error: UdpThreadFailed): void {
    if (this.stats.threadFailure !== null) return;
    this.stats.threadFailure = error.message;
    const failure = new AppError(
      "UDP_THREAD_FAILED",
      `Heartbeats are sent from the event loop: ${error.message}. A stalled event loop (a large copy, a long GC pause) can now delay them past the failover timeout; restart understudy to use the socket thread again.`,
      { cause: error },
    );
    this.notify(() => this.options.onThreadFailure?.(failure));
  }

  #listenError(error: unknown, port: number): AppError {
    return listenError(error, { host: this.options.host, port }, this.options.flag ?? "--peer-listen");
  }

  #sendError(error: unknown, target: UdpEndpoint): void {
    this.stats.sendFailures++;
    this.notify(() => this.options.onSendError?.(error, target));
  }

  private receive(data: Uint8Array, from: UdpEndpoint, truncated: boolean): void {
    this.stats.received++;
    let heartbeat: Heartbeat;
    let sealedBy: string | null;
    try {
      if (truncated) return this.drop("malformed", from);
      ({ heartbeat, sealedBy } = this.codec.open(data, formatHostPort(from)));
    } catch (error) {
      const reason = error instanceof AppError ? ERROR_CODE_REASONS[error.code] : undefined;
      return this.drop(reason ?? "malformed", from, error);
    }
    this.stats.accepted++;
    try {
      this.options.onHeartbeat(heartbeat, from, sealedBy);
    } catch (error) {
      this.stats.handlerErrors++;
      this.report({ reason: "handler-error", from, error });
    }
  }

  private drop(reason: HeartbeatDropReason, from: UdpEndpoint, error?: unknown): void {
    this.stats.dropped[reason]++;
    this.report({ reason, from, error });
  }

  private socketError(error: unknown): void {
    this.stats.socketErrors++;
    this.notify(() => this.options.onSendError?.(error, null));
  }

  private report(drop: HeartbeatDrop): void {
    this.notify(() => this.options.onDrop?.(drop));
  }

  private notify(callback: () => void): void {
    try {
      callback();
    } catch {
      // A logging callback that throws must not take the heartbeat socket down with it.
    }
  }
}
