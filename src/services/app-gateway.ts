/**
 * Every machine's local apps connect to their own node on `/app`; the node
 * carries their traffic to whichever server is active through one HubUplink.
 * A failover moves the uplink, never the apps: they never reconnect. While the
 * uplink has no server, what apps publish waits in the uplink's bounded queue.
 */
import type { Clock, Timers } from "../core/clock.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import type { ServerRole } from "../core/failover/index.ts";
import { encodeFrame, type FromHubFrame, type ToHubFrame } from "../hub/frames.ts";
import { HubUplink } from "../hub/hub-uplink.ts";
import type { Logger } from "../log.ts";
import { broadcastEpoch, fanOut, openBroadcast } from "../net/broadcast.ts";
import { FanoutGroups } from "../net/fanout-groups.ts";
import { BroadcastBatch } from "../net/broadcast-batch.ts";
import { FrameBatcher, nextTurn, splitFrames, type Defer } from "../net/frame-batch.ts";
import { deriveBroadcastKey, type BroadcastKey } from "../net/crypto.ts";
import type { PeerDialer, PeerService } from "../net/peer-net.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { PeerRefusals } from "../net/peer-refusals.ts";
import { ServerLink } from "../net/server-link.ts";
import { systemClock, systemTimers } from "../net/system-time.ts";

const decoder = new TextDecoder();
/** How soon to try again when the server we follow does not answer. */
export const RECONNECT_MS = 100;
/** How often the node measures its round trip to the hub. */
export const PING_MS = 1000;
/** How often the gateway looks whether its event loop was held, and how late a look must come to say it was. */
const STALL_CHECK_MS = 100;
const HELD_MS = 200;

export type UplinkTarget = { role: ServerRole; address: HostPort } | { role: "self" };
/**
 * A local app living in this process (the MQTT front door, the HTTP API): frames as objects, no socket.
 * `dataMeasured`: see parseToHubFrame (frames.ts).
 */
export type InProcessApp = { readonly id: string; send(frame: unknown, dataMeasured?: boolean): void; close(): void };
/** This machine's own hub, attached without a socket. */
export type LocalHub = { attachLocal(deliver: (frame: FromHubFrame) => void): { send(frame: ToHubFrame): void; close(): void } };

type HubSession = ConnectionEvents & { attach(): void };

export class AppGateway {
  readonly uplink: HubUplink;
  /** Servers that refused this machine: back-off, de-duplicated logs, and the refusal its status shows. */
  readonly refusals: PeerRefusals;
  private readonly apps = new Map<string, SecureConnection>();
  private readonly inProcess = new Map<string, (frame: FromHubFrame) => void>();
  private readonly groups = new FanoutGroups();
  private readonly appBatches = new Map<string, FrameBatcher>();
  private readonly appBroadcasts: BroadcastBatch;
  /** When gathered frames go out: the end of the event loop's turn (a simulator passes its own). */
  private readonly defer: Defer;
  private networkKey: Uint8Array;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly keys = new Map<number, BroadcastKey>();
  private target: UplinkTarget | null = null;
  /** The uplink to a server on the peer port; its own hub is attached without one (`self`). */
  private readonly link: ServerLink<HubSession>;
  private self: { close(): void } | null = null;
  private nextApp = 0;
  private localKey: BroadcastKey;
  private readonly stopPinger: () => void;
  private readonly timers: Timers;
  /** A switch waiting for the socket of the server being left to be read (follow). */
  private pending: { target: UplinkTarget | null; cancel: () => void } | null = null;

  private readonly localHub: (() => LocalHub | null) | undefined;

  constructor(options: {
    node: { id: string; name: string };
    net: PeerDialer;
    networkKey: Uint8Array;
    log: Logger;
    onLinkBroken: (role: ServerRole) => void;
    localHub?: () => LocalHub | null;
    random?: () => number;
    /** How long acknowledged writes are kept for a resend to the next server (acked-writes.ts ackedRetentionMs). */
    retainAckedMs: number;
    /** The server to keep an idle connection to, ready for a switch (core/routing.ts spareServer); none by default. */
    spareAt?: () => HostPort | null;
    clock?: Clock;
    timers?: Timers;
    defer?: Defer;
  }) {
    this.localHub = options.localHub;
    this.defer = options.defer ?? nextTurn;
    this.appBroadcasts = new BroadcastBatch(undefined, this.defer);
    this.networkKey = options.networkKey;
    this.log = options.log;
    this.clock = options.clock ?? systemClock;
    const timers = (this.timers = options.timers ?? systemTimers);
    this.refusals = new PeerRefusals(this.clock, options.log, options.random);
    this.localKey = deriveBroadcastKey(options.networkKey, 0);
    // The hub shows each node's delay in presence (the Delays panel); writes that waited too long for room are refused;
    // acknowledged writes are kept between retainAckedMs and one PING_MS longer.
    // Time this node's own event loop was held (a stall, SIGSTOP) does not count for what it keeps: subscribers moved on
    // meanwhile and may get its acknowledged writes only from its resend (sim seed 105700: a serving backup frozen 724 ms
    // trimmed, on waking, writes its own hub had acknowledged that the main's apps never got). So a check every
    // STALL_CHECK_MS that comes that much late keeps them a whole retention longer; ping, expiry and trim run every PING_MS.
    let lastCheck = this.clock.now();
    let checks = 0;
    let keepUntil = Number.NEGATIVE_INFINITY;
    this.stopPinger = timers.every(STALL_CHECK_MS, () => {
      const now = this.clock.now();
      if (now - lastCheck - STALL_CHECK_MS > HELD_MS) keepUntil = now + options.retainAckedMs;
      lastCheck = now;
      if (++checks % (PING_MS / STALL_CHECK_MS) !== 0) return;
      this.uplink.ping(now);
      this.uplink.expireWaiting(now);
      if (now >= keepUntil) this.uplink.trimAcked(now, options.retainAckedMs);
    });
    this.uplink = new HubUplink({
      node: options.node,
      deliver: (frame, apps) => this.toApps(frame, apps),
      onServerError: (frame) => this.log.warn("hub refused", { code: frame.code, message: frame.message }),
    });
    this.link = new ServerLink({
      net: options.net,
      path: "/hub",
      target: () => (this.target && this.target.role !== "self" ? this.target.address : null),
      session: (connection, to) => this.hubSession(connection, formatHostPort(to)),
      keep: true,
      retryMs: RECONNECT_MS,
      spare: options.spareAt,
      timers,
      refusals: this.refusals,
      event: "hub link failed",
      up: (to, session) => {
        session.attach();
        this.log.info("hub link up", { server: formatHostPort(to), role: this.target?.role });
      },
      broken: (to, reason) => {
        const address = formatHostPort(to);
        this.log.warn("hub link closed", { server: address, reason });
        this.refusals.succeeded(address, "hub link failed");
        const role = this.target?.role;
        if (role && role !== "self") options.onLinkBroken(role);
      },
      // A hub that closed the session for a new network key still serves: its runner must not take it for gone
      // (every client would leave the main and tell the backup it lost it: sim seed 35, network-key). Heartbeats
      // decide about it (docs/design.md §Security).
      rekeyed: (to, reason) => this.log.info("hub link closed for a network key change; dialling again", { server: formatHostPort(to), reason }),
    });
  }

  /** Where the uplink goes now; null while no server is active. Same target: nothing changes. */
  follow(target: UplinkTarget | null): void {
    if (this.pending && JSON.stringify(target) === JSON.stringify(this.pending.target)) return;
    this.pending?.cancel();
    this.pending = null;
    // Same target: only the spare may have moved (a server's address saved anew).
    if (JSON.stringify(target) === JSON.stringify(this.target)) return this.link.step();
    // Leaving a connection still open: what its server sent before may wait unread in the socket (a node whose loop was
    // held takes the heartbeats its socket thread handed over first). Read it before the link stops its frames, one timer
    // turn later: a stopped subscriber's node lost what a main sent before it died, older than the publisher still kept.
    if (this.target !== null && this.target.role !== "self" && this.link.session !== null) {
      const cancel = this.timers.after(0, () => {
        this.pending = null;
        this.switchTo(target);
      });
      this.pending = { target, cancel };
      return;
    }
    this.switchTo(target);
  }

  private switchTo(target: UplinkTarget | null): void {
    this.target = target;
    this.detachSelf();
    this.link.drop("Following another server now.");
    if (target?.role === "self") this.attachSelf();
    else this.link.step();
  }

  get following(): UplinkTarget | null {
    return this.target;
  }

  get connected(): boolean {
    return this.self !== null || this.link.session !== null;
  }

  /**
   * A new network key: broadcasts are opened with keys derived from it, the
   * uplink reconnects under it (the next dial uses it; this one was authenticated
   * under the old key), and so must the local apps: theirs closes.
   */
  setNetworkKey(networkKey: Uint8Array): void {
    this.networkKey = networkKey;
    this.localKey = deriveBroadcastKey(networkKey, 0);
    this.keys.clear();
    this.link.drop("The network key changed; reconnecting with the new one.");
    this.link.redialSpare("The network key changed; reconnecting with the new one.");
    for (const app of this.apps.values()) app.close(1001, "The network key changed; reconnect with the new one.");
  }

  /** Local apps connected now (the Routing panel). */
  get appCount(): number {
    return this.apps.size;
  }

  /** `/app`: this machine's local apps on the peer port. */
  readonly appService: PeerService = { path: "/app", accept: (connection) => this.acceptApp(connection) };

  /** Handlers for one local app on `/app`. */
  acceptApp(connection: SecureConnection): ConnectionEvents {
    const id = `a${++this.nextApp}`;
    this.apps.set(id, connection);
    this.appBatches.set(id, new FrameBatcher((payload) => connection.send(payload), undefined, this.defer));
    return {
      message: (payload) => {
        const now = this.clock.now();
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
      send: (frame, dataMeasured) => {
        if (this.inProcess.has(id)) this.uplink.fromApp(id, frame, this.clock.now(), dataMeasured);
      },
      close: () => {
        if (this.inProcess.delete(id)) this.uplink.appGone(id);
      },
    };
  }

  stop(): void {
    this.stopPinger();
    this.pending?.cancel();
    this.pending = null;
    this.target = null;
    this.detachSelf();
    this.link.stop("The node is shutting down.");
    for (const app of this.apps.values()) app.close(1001, "The node is shutting down.");
  }

  private attachSelf(): void {
    const hub = this.localHub?.();
    if (!hub) return;
    const link = hub.attachLocal((frame) => this.uplink.onFrameFromServer(frame));
    this.self = { close: () => link.close() };
    this.uplink.attachServer((frame) => link.send(frame));
  }

  private detachSelf(): void {
    const self = this.self;
    this.self = null;
    if (self) {
      this.uplink.detachServer();
      self.close();
    }
  }

  /**
   * One connection to a server's hub. The link stops its frames once it leaves it: a server frozen and thawed
   * (SIGSTOP) flushes what it held to the old socket before it sees the close, and a late message would mark
   * newer ones as seen.
   */
  private hubSession(connection: SecureConnection, address: string): HubSession {
    // A dial answered after the node moved on is closed without being attached: its close must not detach the server followed now.
    let attached = false;
    return {
      attach: () => {
        attached = true;
        // What is still batched when the link breaks is lost with it; the uplink resends what was not acknowledged.
        const batch = new FrameBatcher((payload) => connection.send(payload), undefined, this.defer);
        this.uplink.attachServer((frame, text) => batch.push(text ?? encodeFrame(frame)));
      },
      message: (payload) => {
        const now = this.clock.now();
        for (const frame of splitFrames(payload)) this.uplink.onFrameFromServer(frame, now);
        // The server refused a write as not active (it was isolated, or is handing over): the uplink holds every write,
        // and that connection would refuse them for good. Reconnect shortly; by then the server is active again, or the
        // runner has moved this node to the one that is.
        if (this.uplink.needsReattach) {
          this.log.warn("hub refused writes as not active; reconnecting", { server: address });
          this.link.drop("Writes were refused as not active; reconnecting.");
        }
      },
      broadcast: (frame) => this.fromBroadcast(frame, address),
      close: () => attached && this.uplink.detachServer(),
    };
  }

  private fromBroadcast(frame: Uint8Array, from: string): void {
    try {
      const epoch = broadcastEpoch(frame, from);
      let key = this.keys.get(epoch);
      if (!key) {
        key = deriveBroadcastKey(this.networkKey, epoch);
        this.keys.clear();
        this.keys.set(epoch, key);
      }
      const now = this.clock.now();
      for (const text of splitFrames(openBroadcast(key, frame, from))) this.uplink.onFrameFromServer(text, now);
    } catch (error) {
      this.log.warn("dropped a hub broadcast", { from, message: (error as Error).message });
    }
  }

  /** One frame for many local apps: sealed once, published once (fanOut); encoded only when an app on /app gets it. */
  private toApps(frame: FromHubFrame, apps: readonly string[]): void {
    if (this.inProcess.size > 0) for (const id of apps) this.inProcess.get(id)?.(frame);
    // The MQTT door alone (the common case on a node with MQTT clients) takes the frame as it is: no JSON text per message.
    if (!this.anyConnected(apps)) return;
    fanOut(encodeFrame(frame), apps, this.apps, this.localKey, this.groups, this.appBatches, this.appBroadcasts);
  }

  private anyConnected(apps: readonly string[]): boolean {
    for (const id of apps) if (this.apps.has(id)) return true;
    return false;
  }
}
