/**
 * Every machine's local apps connect to their own node on `/app`; the node
 * carries their traffic to whichever server is active through one HubUplink.
 * A failover moves the uplink, never the apps: they never reconnect. While the
 * uplink has no server, what apps publish waits in the uplink's bounded queue.
 */
import type { HostPort } from "../core/config.ts";
import type { ServerRole } from "../core/failover/index.ts";
import { encodeFrame, type FromHubFrame, type ToHubFrame } from "../hub/frames.ts";
import { HubUplink } from "../hub/hub-uplink.ts";
import type { Logger } from "../log.ts";
import { broadcastEpoch, fanOut, openBroadcast } from "../net/broadcast.ts";
import { FanoutGroups } from "../net/fanout-groups.ts";
import { FrameBatcher, splitFrames } from "../net/frame-batch.ts";
import { deriveBroadcastKey, type BroadcastKey } from "../net/crypto.ts";
import { connectSecure, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "../net/secure-socket.ts";
import { PeerRefusals } from "../net/peer-refusals.ts";

const decoder = new TextDecoder();
/** How soon to try again when the server we follow does not answer. */
export const RECONNECT_MS = 100;
/** How often the node measures its round trip to the hub. */
export const PING_MS = 1000;

export type UplinkTarget = { role: ServerRole; address: HostPort } | { role: "self" };
/** A local app living in this process (the MQTT front door, the HTTP API): frames as objects, no socket. */
export type InProcessApp = { readonly id: string; send(frame: unknown): void; close(): void };
/** This machine's own hub, attached without a socket. */
export type LocalHub = { attachLocal(deliver: (frame: FromHubFrame) => void): { send(frame: ToHubFrame): void; close(): void } };

export class AppGateway {
  readonly uplink: HubUplink;
  /** Servers that refused this machine: back-off, de-duplicated logs, and the refusal its status shows. */
  readonly refusals: PeerRefusals;
  private readonly apps = new Map<string, SecureConnection>();
  private readonly inProcess = new Map<string, (frame: FromHubFrame) => void>();
  private readonly groups = new FanoutGroups();
  private readonly appBatches = new Map<string, FrameBatcher>();
  private readonly secure: SecureSocketOptions;
  private readonly log: Logger;
  private readonly onLinkBroken: (role: ServerRole) => void;
  private readonly keys = new Map<number, BroadcastKey>();
  private target: UplinkTarget | null = null;
  private server: { close(code?: number, reason?: string): void } | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private nextApp = 0;
  private localKey: BroadcastKey;
  private readonly pinger: ReturnType<typeof setInterval>;

  private readonly localHub: (() => LocalHub | null) | undefined;

  constructor(options: {
    node: { id: string; name: string };
    secure: SecureSocketOptions;
    log: Logger;
    onLinkBroken: (role: ServerRole) => void;
    localHub?: () => LocalHub | null;
    random?: () => number;
    /** How long acknowledged writes are kept for a resend to the next server (acked-writes.ts ackedRetentionMs). */
    retainAckedMs: number;
  }) {
    this.localHub = options.localHub;
    this.secure = options.secure;
    this.log = options.log;
    this.onLinkBroken = options.onLinkBroken;
    this.refusals = new PeerRefusals({ now: () => performance.now() }, options.log, options.random);
    this.localKey = deriveBroadcastKey(options.secure.networkKey, 0);
    // The hub shows each node's delay in presence (the Delays panel); writes that waited too long for room are refused;
    // acknowledged writes are kept between retainAckedMs and one PING_MS longer.
    this.pinger = setInterval(() => {
      const now = performance.now();
      this.uplink.ping(now);
      this.uplink.expireWaiting(now);
      this.uplink.trimAcked(now, options.retainAckedMs);
    }, PING_MS);
    this.uplink = new HubUplink({
      node: options.node,
      deliver: (frame, apps) => this.toApps(frame, apps),
      onServerError: (frame) => this.log.warn("hub refused", { code: frame.code, message: frame.message }),
    });
  }

  /** Where the uplink goes now; null while no server is active. Same target: nothing changes. */
  follow(target: UplinkTarget | null): void {
    if (JSON.stringify(target) === JSON.stringify(this.target)) return;
    this.target = target;
    this.disconnect();
    if (target) this.connect(target, ++this.attempt);
  }

  get following(): UplinkTarget | null {
    return this.target;
  }

  get connected(): boolean {
    return this.server !== null;
  }

  /** Local apps connected now (the Routing panel). */
  get appCount(): number {
    return this.apps.size;
  }

  /** Handlers for one local app on `/app`. */
  acceptApp(connection: SecureConnection): ConnectionEvents {
    const id = `a${++this.nextApp}`;
    this.apps.set(id, connection);
    this.appBatches.set(id, new FrameBatcher((payload) => connection.send(payload)));
    return {
      message: (payload) => {
        const now = performance.now();
        for (const frame of splitFrames(payload)) this.uplink.fromApp(id, frame, now);
      },
      close: () => {
        this.apps.delete(id);
        this.appBatches.get(id)?.clear();
        this.appBatches.delete(id);
        this.groups.forget(id);
        this.uplink.appGone(id);
      },
    };
  }

  /** Attaches an app that lives in this process; `deliver` gets the frames meant for it. */
  attachApp(name: string, deliver: (frame: FromHubFrame) => void): InProcessApp {
    const id = `${name}${++this.nextApp}`;
    this.inProcess.set(id, deliver);
    return {
      id,
      send: (frame) => {
        if (this.inProcess.has(id)) this.uplink.fromApp(id, frame, performance.now());
      },
      close: () => {
        if (this.inProcess.delete(id)) this.uplink.appGone(id);
      },
    };
  }

  stop(): void {
    clearInterval(this.pinger);
    this.target = null;
    this.disconnect();
    for (const app of this.apps.values()) app.close(1001, "The node is shutting down.");
  }

  private connect(target: UplinkTarget, attempt: number): void {
    if (target.role === "self") {
      const hub = this.localHub?.();
      if (!hub) return;
      const link = hub.attachLocal((frame) => this.uplink.onFrameFromServer(frame));
      this.server = { close: () => link.close() };
      this.uplink.attachServer((frame) => link.send(frame));
      return;
    }
    const address = `${target.address.host}:${target.address.port}`;
    // Frames from a connection this node already left are dropped: a server frozen and thawed (SIGSTOP) flushes
    // what it held to the old socket before it sees the close, and a late message would mark newer ones as seen.
    connectSecure(address, "/hub", this.secure, (connection) => ({
      message: (payload) => {
        if (this.server !== connection) return;
        const now = performance.now();
        for (const frame of splitFrames(payload)) this.uplink.onFrameFromServer(frame, now);
        if (this.uplink.needsReattach) this.reconnect(target, attempt, connection, address);
      },
      broadcast: (frame) => {
        if (this.server === connection) this.fromBroadcast(frame, address);
      },
      close: (reason) => {
        if (this.server !== connection) return;
        this.server = null;
        this.uplink.detachServer();
        this.log.warn("hub link closed", { server: address, reason });
        this.refusals.succeeded(address, "hub link failed");
        this.onLinkBroken(target.role);
        this.scheduleRetry(target, attempt);
      },
    })).then(
      (connection) => {
        if (attempt !== this.attempt) {
          connection.close(1001, "Following another server now.");
          return;
        }
        this.server = connection;
        // What is still batched when the link breaks is lost with it; the uplink resends what was not acknowledged.
        const batch = new FrameBatcher((payload) => connection.send(payload));
        this.uplink.attachServer((frame, text) => batch.push(text ?? encodeFrame(frame)));
        this.refusals.succeeded(address, "hub link failed");
        this.log.info("hub link up", { server: address, role: target.role });
      },
      (error) => {
        if (attempt !== this.attempt) return;
        this.refusals.failed(address, error, "hub link failed");
        this.scheduleRetry(target, attempt);
      },
    );
  }

  /**
   * The server refused a write as not active (it was isolated, or is handing over): the uplink holds
   * every write, and that connection would refuse them for good. Reconnect shortly; by then the server
   * is active again, or the runner has moved this node to the one that is.
   */
  private reconnect(target: Extract<UplinkTarget, { address: HostPort }>, attempt: number, connection: SecureConnection, address: string): void {
    this.server = null;
    this.uplink.detachServer();
    connection.close(1001, "Writes were refused as not active; reconnecting.");
    this.log.warn("hub refused writes as not active; reconnecting", { server: address });
    this.scheduleRetry(target, attempt);
  }

  private scheduleRetry(target: Extract<UplinkTarget, { address: HostPort }>, attempt: number): void {
    if (attempt !== this.attempt || this.retry) return;
    const address = `${target.address.host}:${target.address.port}`;
    this.retry = setTimeout(() => {
      this.retry = null;
      if (attempt === this.attempt && this.server === null) this.connect(target, attempt);
    }, Math.max(RECONNECT_MS, this.refusals.waitMs(address)));
  }

  private disconnect(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const server = this.server;
    this.server = null;
    if (server) {
      this.uplink.detachServer();
      server.close(1001, "Following another server now.");
    }
  }

  private fromBroadcast(frame: Uint8Array, from: string): void {
    try {
      const epoch = broadcastEpoch(frame, from);
      let key = this.keys.get(epoch);
      if (!key) {
        key = deriveBroadcastKey(this.secure.networkKey, epoch);
        this.keys.clear();
        this.keys.set(epoch, key);
      }
      this.uplink.onFrameFromServer(decoder.decode(openBroadcast(key, frame, from)));
    } catch (error) {
      this.log.warn("dropped a hub broadcast", { from, message: (error as Error).message });
    }
  }

  /** One frame for many local apps: sealed once, published once (fanOut). */
  private toApps(frame: FromHubFrame, apps: readonly string[]): void {
    if (this.inProcess.size > 0) for (const id of apps) this.inProcess.get(id)?.(frame);
    fanOut(encodeFrame(frame), apps, this.apps, this.localKey, this.groups, this.appBatches);
  }
}
