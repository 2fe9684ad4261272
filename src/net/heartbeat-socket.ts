/**
 * The UDP edge for heartbeats: a thin adapter on Bun.udpSocket around the pure
 * HeartbeatCodec. It binds, sends sealed heartbeats to given targets, and
 * hands decoded, validated heartbeats to a callback (the failover runner
 * judges their freshness: core/freshness.ts). Anything else (garbage, other
 * versions, foreign keys) is counted and dropped; nothing thrown by a
 * datagram escapes the socket callback.
 */
import { formatHostPort, type HostPort } from "../core/config.ts";
import { AppError } from "../core/errors.ts";
import type { RandomBytes } from "./crypto.ts";
import { listenError } from "./listen-error.ts";
import { HeartbeatCodec, type Heartbeat } from "./heartbeat.ts";
import type { HeartbeatKeys } from "./heartbeat-keys.ts";

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
};

const ERROR_CODE_REASONS: Record<string, HeartbeatDropReason> = {
  WIRE_MALFORMED: "malformed",
  WIRE_VERSION: "version",
  WIRE_UNSEALED: "foreign",
  HEARTBEAT_INVALID: "invalid",
  HEARTBEAT_BUSY: "busy",
};

export class HeartbeatSocket {
  private readonly socket: Bun.udp.Socket<"uint8array">;
  private readonly codec: HeartbeatCodec;
  private readonly options: HeartbeatSocketOptions;
  readonly stats: HeartbeatSocketStats;

  /** Binds `host:port` and starts receiving. A failed bind throws an AppError naming the setting (PORT_IN_USE, …). */
  static async bind(options: HeartbeatSocketOptions): Promise<HeartbeatSocket> {
    const codec = new HeartbeatCodec(options.networkKey, options.random, options.keys ?? null);
    let self: HeartbeatSocket | undefined;
    let socket: Bun.udp.Socket<"uint8array">;
    try {
      socket = await Bun.udpSocket({
        hostname: options.host,
        port: options.port,
        binaryType: "uint8array",
        socket: {
          // Datagrams are delivered from the event loop, so `self` (set right below the await) is always there.
          data: (_socket, data, port, address, flags) => self?.receive(data, { host: address, port }, flags.truncated),
          // Without this handler Bun 1.4 exits the process on the ICMP "port unreachable" a send to a dead
          // peer brings back — exactly when the main is down. It passes only the error, despite the typings.
          error: (...args: unknown[]) => self?.socketError(args[args.length - 1]),
        },
      });
    } catch (error) {
      throw listenError(error, { host: options.host, port: options.port }, options.flag ?? "--peer-listen");
    }
    self = new HeartbeatSocket(socket, codec, options);
    return self;
  }

  private constructor(socket: Bun.udp.Socket<"uint8array">, codec: HeartbeatCodec, options: HeartbeatSocketOptions) {
    this.socket = socket;
    this.codec = codec;
    this.options = options;
    this.stats = {
      received: 0,
      accepted: 0,
      dropped: { malformed: 0, version: 0, foreign: 0, invalid: 0, busy: 0 },
      handlerErrors: 0,
      sendFailures: 0,
      socketErrors: 0,
    };
  }

  /** The bound port (the real one when bound with port 0). */
  get port(): number {
    return this.socket.port;
  }

  get host(): string {
    return this.socket.hostname;
  }

  /**
   * Seals `heartbeat` once (for machine `to` when its key is known) and sends
   * it to every target (IP addresses: Bun's UDP send takes no host names).
   * Returns how many sends the kernel accepted; never throws for a target.
   */
  send(heartbeat: Heartbeat, targets: readonly UdpEndpoint[], to: string | null = null): number {
    const datagram = this.codec.encode(heartbeat, to);
    let sent = 0;
    for (const target of targets) {
      let error: unknown = null;
      for (let attempt = 0; attempt < 2; attempt++) {
        error = null;
        try {
          if (this.socket.send(datagram, target.port, target.host)) sent++;
          else error = new Error("the send buffer is full");
          break;
        } catch (thrown) {
          error = thrown;
          // Linux hands the ICMP refusal of an earlier send (to a dead peer) back on the next send,
          // whatever its target, and that datagram is not sent. Reporting it clears it: send again once.
          if ((thrown as { code?: string }).code !== "ECONNREFUSED") break;
        }
      }
      if (error !== null) {
        this.stats.sendFailures++;
        this.notify(() => this.options.onSendError?.(error, target));
      }
    }
    return sent;
  }

  /** Heartbeats sealed under the network key use `networkKey` from now on; pair-sealed ones do not change. */
  setNetworkKey(networkKey: Uint8Array): void {
    this.codec.setNetworkKey(networkKey);
  }

  close(): void {
    this.socket.close();
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
