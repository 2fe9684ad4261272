/**
 * HubUplink: a client node's side of the Data Hub, pure (no sockets, no timers).
 *
 * Local apps talk to their own node (loopback, same frames as to a hub); the
 * node talks to whichever server is active through one connection, which the
 * runner attaches and detaches as servers switch. So failover is invisible
 * to apps (docs/design.md §Failover, step 3; §Data Hub):
 *
 * - subscriptions are the union of the apps' filters (app-filters.ts), re-sent
 *   after a switch; services offered by apps are re-offered;
 * - pub/set frames wait until the hub acks them and are resent in order to the
 *   next server, acknowledged ones first (uplink-writes.ts);
 * - the node tells the server it comes back to where it left off (resume-point.ts);
 *   it sends `resync` after its subscriptions, so
 *   the server replays what this node missed (after a switch: what publishers
 *   resent there before this node arrived; after a cut from the same server:
 *   what was published meanwhile). What the server no longer holds reaches
 *   the apps as a `gap` frame with its count;
 * - incoming messages are de-duplicated by (from, seq), and retained values
 *   by version, so a switch (or a replay) never delivers the same message twice to an app;
 * - a call in flight during a switch fails (it may or may not have run);
 *   gets are simply resent.
 *
 * Ids are rewritten on the way through (apps pick their own get/call ids, the
 * hub picks ids for calls it forwards: incoming-calls.ts).
 */
import type { AppError } from "../core/errors.ts";
import { errorFrame, parseFromHubFrame, parseToHubFrame, refOf } from "./frames.ts";
import type { ErrorFrame, ErrorRef, FromHubFrame, FromHubFrameOf, ToHubFrame, ToHubFrameOf } from "./frames.ts";
import { CallInterrupted, LimitReached, NoService, NotConnected, ProviderGone, ServiceTaken } from "./hub-errors.ts";
import { OriginMarks, DEFAULT_MAX_TRACKED_ORIGINS } from "./origin-marks.ts";
import { NodeValueCache } from "./node-value-cache.ts";
import { AppFilters } from "./app-filters.ts";
import { ResumePoint } from "./resume-point.ts";
import { IncomingCalls, replyError } from "./incoming-calls.ts";
import { UplinkWrites } from "./uplink-writes.ts";
import { DEFAULT_MAX_FILTERS, DEFAULT_MAX_FILTERS_PER_APP, DEFAULT_MAX_PENDING_REQUESTS, type AppId, type HubUplinkOptions, type SendToServer } from "./uplink-options.ts";

type Request =
  | { kind: "get"; app: AppId; appId: string; frame: ToHubFrameOf<"get"> }
  | { kind: "call"; app: AppId; appId: string; service: string }
  | { kind: "resync"; key: string };

export class HubUplink {
  private readonly options: HubUplinkOptions;
  private readonly apps = new Set<AppId>();
  private readonly appSubscriptions: AppFilters<AppId>;
  private readonly services = new Map<string, AppId>();
  /** pub/set frames on their way to the hub, waiting for room, or kept for a resend (uplink-writes.ts). */
  private readonly writes: UplinkWrites<AppId>;
  private readonly requests = new Map<string, Request>();
  private readonly incomingCalls = new IncomingCalls<AppId>();
  private readonly maxRequests: number;
  private readonly seenMessages: OriginMarks;
  private readonly values = new NodeValueCache();
  private lastPresence: FromHubFrameOf<"presence"> | null = null;
  private readonly resume = new ResumePoint();
  private server: SendToServer | null = null;
  /** The server refused a write as NOT_ACTIVE: hold writes until the runner attaches the active server. */
  private writesRefused = false;
  private generation = 0;
  private nextId = 1;

  constructor(options: HubUplinkOptions) {
    this.options = options;
    this.maxRequests = options.maxPendingRequests ?? DEFAULT_MAX_PENDING_REQUESTS;
    this.appSubscriptions = new AppFilters(options.maxFiltersPerApp ?? DEFAULT_MAX_FILTERS_PER_APP, options.maxFilters ?? DEFAULT_MAX_FILTERS);
    this.writes = new UplinkWrites(options, {
      canSend: () => this.server !== null && !this.writesRefused,
      attached: () => this.server !== null,
      send: (frame, text) => this.toServer(frame, text),
      refuse: (app, error, ref) => this.refuse(app, error, ref),
    });
    this.seenMessages = new OriginMarks(options.maxTrackedOrigins ?? DEFAULT_MAX_TRACKED_ORIGINS);
  }

  get attached(): boolean {
    return this.server !== null;
  }

  /** True after the server refused writes as not active: the runner should attach the active server. */
  get needsReattach(): boolean {
    return this.writesRefused;
  }

  /** The epoch of the last server that welcomed this node (null before any did). */
  get serverEpoch(): number | null {
    return this.resume.epoch;
  }

  /** How many times a server said it could not replay everything this node missed (a `gap`), and how many messages in all. */
  get replaysIncomplete(): number {
    return this.resume.incompleteReplays;
  }

  get messagesMissed(): number {
    return this.resume.messagesMissed;
  }

  get queuedFrames(): number {
    return this.writes.queuedFrames;
  }

  /** Writes waiting for room in the queue (backpressure on the apps). */
  get waitingFrames(): number {
    return this.writes.waitingFrames;
  }

  get queuedBytes(): number {
    return this.writes.queuedBytes;
  }

  /** Acknowledged writes kept for a resend to the next server. */
  get ackedKept(): number {
    return this.writes.ackedKept;
  }

  /** Acknowledged writes pushed out by the count or byte bound before their time (a resend would miss them). */
  get ackedDroppedEarly(): number {
    return this.writes.ackedDroppedEarly;
  }

  /** Forgets acknowledged writes aged past `maxAgeMs` by the server's last pong (uplink-writes.ts), only while attached. */
  trimAcked(now: number, maxAgeMs: number): number {
    return this.server ? this.writes.trimAcked(now, maxAgeMs) : 0;
  }

  /** The union of the apps' filters: what the node subscribes to upstream. */
  subscriptions(): string[] {
    return this.appSubscriptions.filters();
  }

  // ------------------------------------------------------------ the server side

  /**
   * A connection to the active server is up (and secured): introduce the node,
   * subscribe (and ask for a replay of what it missed), offer, re-read cached
   * values, resend gets and every unacknowledged write in order.
   */
  attachServer(send: SendToServer): void {
    if (this.server) this.detachServer();
    const hello = this.resume.hello(this.options.node);
    this.server = send;
    this.writesRefused = false;
    const generation = ++this.generation;
    const still = () => this.server === send && this.generation === generation;
    this.toServer(hello);
    for (const filter of this.appSubscriptions.filters()) if (still()) this.toServer({ type: "sub", filter });
    // Right after the subs: the server holds back live messages until it has replayed (a no-op if it needs no replay).
    if (hello.resumeFromEpoch !== undefined && still()) this.toServer({ type: "resync" });
    for (const service of this.services.keys()) if (still()) this.toServer({ type: "offer", service });
    // A value deleted during the switch sends no push: ask for every cached key, the server is the truth.
    for (const key of this.values.keys()) {
      if (!still()) return;
      const id = this.newId("s");
      this.requests.set(id, { kind: "resync", key });
      this.toServer({ type: "get", key, id });
    }
    for (const [id, request] of [...this.requests]) {
      if (still() && request.kind === "get" && this.requests.has(id)) this.toServer(request.frame);
    }
    this.writes.resendAll();
  }

  /** The connection to the server is gone. Calls in flight fail; everything else waits for the next server. */
  detachServer(): void {
    if (!this.server) return;
    this.server = null;
    for (const [id, request] of [...this.requests]) {
      if (request.kind === "get") continue;
      this.requests.delete(id);
      if (request.kind === "call") this.toApp(request.app, replyError(request.appId, new CallInterrupted(request.service)));
    }
    // Calls the apps are still working on belong to the old server: their replies are dropped.
    this.incomingCalls.clear();
  }

  /** One frame from the server: JSON text or a parsed value. Never throws. */
  onFrameFromServer(input: unknown, now?: number): void {
    const parsed = parseFromHubFrame(input);
    if (!parsed.ok) {
      this.options.onServerError?.(errorFrame(parsed.error, parsed.ref));
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case "welcome":
        return this.resume.welcome(frame);
      case "msg":
        return this.onMessage(frame);
      case "ack": {
        const entry = this.writes.acknowledged(frame.origin, frame.seq, frame.version);
        if (entry && !entry.resent) this.toApp(entry.from, frame);
        return this.writes.makeRoom();
      }
      case "gap":
        return this.onGap(frame);
      case "value":
        return frame.id === undefined ? this.onValuePush(frame) : this.onValueAnswer(frame, frame.id);
      case "call":
        return this.onIncomingCall(frame);
      case "reply": {
        const request = this.requests.get(frame.id);
        if (request?.kind !== "call") return;
        this.requests.delete(frame.id);
        return this.toApp(request.app, { ...frame, id: request.appId });
      }
      case "presence":
        this.lastPresence = frame;
        if (this.apps.size > 0) this.deliver(frame, [...this.apps]);
        return;
      case "pong":
        if (now !== undefined) this.delayMs = Math.max(0, now - frame.sentAt);
        // It echoes this node's clock from `ping`: the server was alive after then (never later than now).
        this.writes.serverAlive(now === undefined ? frame.sentAt : Math.min(frame.sentAt, now));
        return;
      case "error":
        return this.onServerError(frame);
    }
  }

  // ------------------------------------------------------------ the apps' side

  /**
   * One frame from a local app: JSON text or a parsed value. Never throws: a
   * refusal goes to the app as an `error` frame (or, for a call, a `reply`
   * with `error`) and is also returned, for the log and tests. `dataMeasured`: parseToHubFrame's.
   */
  fromApp(app: AppId, input: unknown, now = 0, dataMeasured = false): AppError | null {
    this.apps.add(app);
    const parsed = parseToHubFrame(input, dataMeasured);
    if (!parsed.ok) return this.refuse(app, parsed.error, parsed.ref);
    const frame = parsed.frame;
    switch (frame.type) {
      case "hello":
        if (this.lastPresence) this.toApp(app, this.lastPresence);
        return null;
      case "resync":
        return null; // the node's link to its apps does not break in a switch: nothing to replay
      case "ping":
        this.toApp(app, { type: "pong", sentAt: frame.sentAt });
        return null;
      case "sub":
        return this.onAppSub(app, frame);
      case "unsub":
        this.removeAppFilter(app, frame.filter);
        return null;
      case "pub":
      case "set":
        return this.writes.offer(app, frame, now);
      case "get": {
        if (this.requests.size >= this.maxRequests) return this.refuse(app, this.tooManyRequests(), refOf(frame));
        const id = this.newId("g");
        const forward: ToHubFrameOf<"get"> = { type: "get", key: frame.key, id };
        this.requests.set(id, { kind: "get", app, appId: frame.id, frame: forward });
        if (this.server) this.toServer(forward);
        return null;
      }
      case "offer": {
        const owner = this.services.get(frame.service);
        if (owner !== undefined && owner !== app) return this.refuse(app, new ServiceTaken(frame.service, `another app on this machine`), refOf(frame));
        this.services.set(frame.service, app);
        if (owner === undefined && this.server) this.toServer(frame);
        return null;
      }
      case "unoffer":
        if (this.services.get(frame.service) === app) this.withdrawService(frame.service);
        return null;
      case "call":
        return this.onAppCall(app, frame);
      case "reply": {
        const hubId = this.incomingCalls.answer(app, frame.id, this.generation);
        if (hubId !== null && this.server) this.toServer({ ...frame, id: hubId });
        return null;
      }
    }
  }

  /** A local app disconnected. What it published stays queued: it was accepted by the node. */
  appGone(app: AppId): void {
    if (!this.apps.delete(app)) return;
    for (const filter of this.appSubscriptions.filters()) this.removeAppFilter(app, filter);
    for (const [service, owner] of [...this.services]) if (owner === app) this.withdrawService(service);
    for (const [id, request] of [...this.requests]) if (request.kind !== "resync" && request.app === app) this.requests.delete(id);
    const owed = this.incomingCalls.dropApp(app, this.generation);
    if (this.server) for (const call of owed) this.toServer(replyError(call.hubId, new ProviderGone(call.service)));
  }

  private onAppSub(app: AppId, frame: ToHubFrameOf<"sub">): AppError | null {
    const taken = this.appSubscriptions.take(app, frame.filter);
    if (taken instanceof LimitReached) return this.refuse(app, taken, refOf(frame));
    // Values the node already holds go to the app now; values new to the node come from the server's answer to `sub`.
    for (const { key, value, version } of this.values.matching(frame.filter)) this.toApp(app, { type: "value", key, value, version });
    if (taken.newUpstream && this.server) this.toServer(frame);
    return null;
  }

  private removeAppFilter(app: AppId, filter: string): void {
    if (!this.appSubscriptions.release(app, filter)) return;
    if (this.server) this.toServer({ type: "unsub", filter });
    this.values.keepOnly((key) => this.appSubscriptions.match(key).length > 0);
  }

  /** Refuses writes that waited `publishWaitMs` or longer for room (PUBLISH_TIMEOUT); the runner calls it now and then with the clock it passes to `fromApp`. */
  expireWaiting(now: number): number {
    return this.writes.expireWaiting(now);
  }

  private onAppCall(app: AppId, frame: ToHubFrameOf<"call">): AppError | null {
    if (!this.server) return this.failCall(app, frame.id, new NotConnected(frame.service));
    if (this.requests.size >= this.maxRequests) return this.failCall(app, frame.id, this.tooManyRequests());
    const id = this.newId("c");
    this.requests.set(id, { kind: "call", app, appId: frame.id, service: frame.service });
    this.toServer({ ...frame, id });
    return null;
  }

  private onMessage(frame: FromHubFrameOf<"msg">): void {
    this.resume.received(frame.pos);
    if (this.seenMessages.isDuplicate(frame.from, frame.seq)) return;
    this.seenMessages.record(frame.from, frame.seq);
    const apps = this.appSubscriptions.match(frame.topic);
    if (apps.length > 0) this.deliver(frame, apps);
  }

  private onValuePush(frame: FromHubFrameOf<"value">): void {
    // Not news: the same version again, e.g. sent after a re-subscribe.
    if (this.values.isNews(frame.key, frame.version)) this.applyValue(frame);
  }

  private onValueAnswer(frame: FromHubFrameOf<"value">, id: string): void {
    const request = this.requests.get(id);
    if (!request || request.kind === "call") return;
    this.requests.delete(id);
    if (request.kind === "get") return this.toApp(request.app, { ...frame, id: request.appId });
    if (this.values.differsFromServer(frame.key, frame.value, frame.version)) {
      this.applyValue({ type: "value", key: frame.key, value: frame.value, version: frame.version });
    }
  }

  private applyValue(frame: FromHubFrameOf<"value">): void {
    const apps = this.appSubscriptions.match(frame.key);
    if (apps.length === 0) return; // no app follows this key (any more)
    this.values.remember(frame.key, frame.value, frame.version);
    this.deliver(frame, apps);
  }

  private onIncomingCall(frame: FromHubFrameOf<"call">): void {
    const app = this.services.get(frame.service);
    if (app === undefined) {
      this.toServer(replyError(frame.id, new NoService(frame.service)));
      return;
    }
    this.toApp(app, { ...frame, id: this.incomingCalls.open(app, frame.id, frame.service, this.generation) });
  }

  /** The server could not replay everything: every app that subscribes hears how many messages it missed. */
  private onGap(frame: FromHubFrameOf<"gap">): void {
    this.resume.gap(frame.missed);
    const apps = this.appSubscriptions.holders();
    if (apps.size > 0) this.deliver(frame, [...apps]);
  }

  private onServerError(frame: ErrorFrame): void {
    const ref = frame.ref;
    if ((ref?.type === "pub" || ref?.type === "set") && ref.origin !== undefined && ref.seq !== undefined) {
      if (frame.code === "NOT_ACTIVE") {
        // Keep it queued; the runner attaches the active server, which gets everything in order.
        if (this.writes.has(ref.origin, ref.seq)) this.writesRefused = true;
        return;
      }
      const entry = this.writes.refused(ref.origin, ref.seq);
      if (entry) {
        // A resent write was acknowledged to its app long ago: the refusal is for the log.
        if (entry.resent) this.options.onServerError?.(frame);
        else this.toApp(entry.from, frame);
        return this.writes.makeRoom();
      }
    }
    if (ref?.id !== undefined && (ref.type === "get" || ref.type === "call")) {
      const request = this.requests.get(ref.id);
      if (request && request.kind !== "resync") {
        this.requests.delete(ref.id);
        return this.toApp(request.app, { ...frame, ref: { ...ref, id: request.appId } });
      }
    }
    if (ref?.type === "sub" && ref.filter !== undefined) {
      const apps = this.appSubscriptions.subscribersOf(ref.filter).filter((app) => this.apps.has(app));
      if (apps.length > 0) return this.deliver(frame, apps);
    }
    if ((ref?.type === "offer" || ref?.type === "unoffer") && ref.service !== undefined) {
      const app = this.services.get(ref.service);
      if (app !== undefined) return this.toApp(app, frame);
    }
    this.options.onServerError?.(frame);
  }

  private withdrawService(service: string): void {
    this.services.delete(service);
    if (this.server) this.toServer({ type: "unoffer", service });
  }

  private tooManyRequests(): LimitReached {
    return new LimitReached(`This node has ${this.maxRequests} gets and calls waiting for answers; try again shortly.`);
  }

  private newId(prefix: string): string {
    return `${prefix}${this.nextId++}`;
  }

  private refuse(app: AppId, error: AppError, ref: ErrorRef | undefined): AppError {
    this.toApp(app, errorFrame(error, ref));
    return error;
  }

  private failCall(app: AppId, id: string, error: AppError): AppError {
    this.toApp(app, replyError(id, error));
    return error;
  }

  private toApp(app: AppId, frame: FromHubFrame): void {
    if (this.apps.has(app)) this.deliver(frame, [app]);
  }

  private deliver(frame: FromHubFrame, apps: readonly AppId[]): void {
    try {
      this.options.deliver(frame, apps);
    } catch {
      // An app's socket is closing; the runner calls appGone. The node's state must not depend on it.
    }
  }

  /** Round trip to the server, measured by `ping`; null until a pong came back. */
  delayMs: number | null = null;

  /** Measures the round trip (the pong arrives through onFrameFromServer with `now`) and reports the last one, for presence. */
  ping(now: number): void {
    if (this.server) this.toServer({ type: "ping", sentAt: now, delayMs: this.delayMs });
  }

  private toServer(frame: ToHubFrame, text?: string): void {
    try {
      this.server?.(frame, text);
    } catch {
      // The socket is closing; the runner detaches it and everything unacknowledged stays queued.
    }
  }
}
