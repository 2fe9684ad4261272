/**
 * HubUplink: a client node's side of the Data Hub, pure (no sockets, no timers).
 *
 * Local apps talk to their own node (loopback, same frames as to a hub); the
 * node talks to whichever server is active through one connection, which the
 * runner attaches and detaches as servers switch. So failover is invisible
 * to apps (docs/design.md §Failover, step 3; §Data Hub):
 *
 * - subscriptions are the union of the apps' filters, re-sent after a switch;
 *   services offered by apps are re-offered;
 * - pub/set frames wait in a bounded queue until the hub acks them, and all
 *   unacknowledged ones are resent in order to the next server (which
 *   de-duplicates by origin and seq); at most a window of them is on the wire
 *   at once. Acknowledged ones are kept a while longer (acked-writes.ts) and
 *   resent first: the hub that acked them may have died before fanning them
 *   out, or (at a failback) acked them after the subscribers had moved on.
 *   When the queue is full, new writes wait in line (backpressure) and are
 *   refused only after `publishWaitMs` (or when the line is full too);
 * - the node tells the server it comes back to what it had: the epoch it
 *   followed (`resumeFromEpoch`, from `welcome`), and that hub's stream and the
 *   last position it received; it sends `resync` after its subscriptions, so
 *   the server replays what this node missed (after a switch: what publishers
 *   resent there before this node arrived; after a cut from the same server:
 *   what was published meanwhile). What the server no longer holds reaches
 *   the apps as a `gap` frame with its count;
 * - incoming messages are de-duplicated by (from, seq), and retained values
 *   by version, so a switch (or a replay) never delivers the same message twice to an app;
 * - a call in flight during a switch fails (it may or may not have run);
 *   gets are simply resent.
 *
 * Ids are rewritten on the way through (apps pick their own get/call ids,
 * the hub picks ids for calls it forwards), so replies find the right app and
 * a reply meant for the previous server is never sent to the next one.
 */
import type { AppError } from "../core/errors.ts";
import {
  errorFrame,
  parseFromHubFrame,
  parseToHubFrame,
  refOf,
  type ErrorFrame,
  type ErrorRef,
  type FromHubFrame,
  type FromHubFrameOf,
  type ToHubFrame,
  type ToHubFrameOf,
  type Version,
} from "./frames.ts";
import { CallInterrupted, LimitReached, NoService, NotConnected, ProviderGone, PublishTimedOut, QueueFull, ServiceTaken } from "./hub-errors.ts";
import { OriginMarks, DEFAULT_MAX_TRACKED_ORIGINS } from "./origin-marks.ts";
import { OutboundQueue, encodeWrite, type QueueEntry, type QueuedWrite } from "./outbound-queue.ts";
import { AckedWrites } from "./acked-writes.ts";
import { NodeValueCache } from "./node-value-cache.ts";
import { SubscriptionIndex } from "./subscription-index.ts";
import { WaitingLine } from "./waiting-line.ts";

export type AppId = string;
/** Deliver one frame to these local apps (encode once, write to each). */
export type DeliverToApps = (frame: FromHubFrame, apps: readonly AppId[]) => void;
/** `text`, when given, is the frame's JSON already made (a queued write): send it rather than encode again. */
export type SendToServer = (frame: ToHubFrame, text?: string) => void;

export const DEFAULT_MAX_PENDING_REQUESTS = 10_000;
/** Distinct filters a node subscribes upstream for all its apps together (the hub allows as many per connection). */
export const DEFAULT_MAX_FILTERS = 2_000;
/** Filters one local app may hold: one app cannot take every other app's share (it was a node-wide 1,000 before). */
export const DEFAULT_MAX_FILTERS_PER_APP = 500;
/** How long a write may wait for room in a full queue before it is refused (PUBLISH_TIMEOUT). */
export const DEFAULT_PUBLISH_WAIT_MS = 30_000;
/** Writes waiting for room, at most, in number and bytes; past either a write is refused at once (QUEUE_FULL). */
export const DEFAULT_MAX_WAITING_FRAMES = 50_000;
export const DEFAULT_MAX_WAITING_BYTES = 16 * 1024 * 1024;

export type HubUplinkOptions = {
  /** This node, as it says hello to the server (machine id and name). */
  node: { id: string; name: string };
  deliver: DeliverToApps;
  maxQueuedFrames?: number;
  maxQueuedBytes?: number;
  /** Writes on the wire unacknowledged at most (DEFAULT_SEND_WINDOW). */
  sendWindow?: number;
  publishWaitMs?: number;
  maxWaitingFrames?: number;
  maxWaitingBytes?: number;
  maxPendingRequests?: number;
  maxFilters?: number;
  maxFiltersPerApp?: number;
  maxTrackedOrigins?: number;
  /** Acknowledged writes kept for a resend, at most (acked-writes.ts DEFAULT_MAX_ACKED_*; 0 keeps none). */
  maxAckedFrames?: number;
  maxAckedBytes?: number;
  /** Errors from the server that concern no app (for the log). */
  onServerError?: (frame: ErrorFrame) => void;
};

type Request =
  | { kind: "get"; app: AppId; appId: string; frame: ToHubFrameOf<"get"> }
  | { kind: "call"; app: AppId; appId: string; service: string }
  | { kind: "resync"; key: string };
type IncomingCall = { app: AppId; hubId: string; service: string; generation: number };

export class HubUplink {
  private readonly options: HubUplinkOptions;
  private readonly apps = new Set<AppId>();
  private readonly appSubscriptions = new SubscriptionIndex<AppId>();
  private readonly filtersPerApp = new Map<AppId, number>();
  private readonly services = new Map<string, AppId>();
  private readonly queue: OutboundQueue<AppId>;
  private readonly acked: AckedWrites<AppId>;
  private readonly waiting: WaitingLine<AppId>;
  private readonly requests = new Map<string, Request>();
  private readonly incomingCalls = new Map<string, IncomingCall>();
  private readonly seenMessages: OriginMarks;
  private readonly values = new NodeValueCache();
  private lastPresence: FromHubFrameOf<"presence"> | null = null;
  /** The epoch of the last server that welcomed this node; null before any did. */
  private lastEpoch: number | null = null;
  /** That server's message stream and the last position received from it (positions compare only within one stream). */
  private lastStream: string | null = null;
  private lastPos = 0;
  /** Whether the current attach asked for a replay (then a new stream starts from 0, else from the welcome's position). */
  private resumed = false;
  private incompleteReplays = 0;
  private missedCount = 0;
  private server: SendToServer | null = null;
  /** The server refused a write as NOT_ACTIVE: hold writes until the runner attaches the active server. */
  private writesRefused = false;
  private generation = 0;
  private nextId = 1;

  constructor(options: HubUplinkOptions) {
    this.options = options;
    this.queue = new OutboundQueue(options.maxQueuedFrames, options.maxQueuedBytes, options.sendWindow);
    this.acked = new AckedWrites(options.maxAckedFrames, options.maxAckedBytes);
    this.waiting = new WaitingLine(options.maxWaitingFrames ?? DEFAULT_MAX_WAITING_FRAMES, options.maxWaitingBytes ?? DEFAULT_MAX_WAITING_BYTES);
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
    return this.lastEpoch;
  }

  /** How many times a server said it could not replay everything this node missed (a `gap`), and how many messages in all. */
  get replaysIncomplete(): number {
    return this.incompleteReplays;
  }

  get messagesMissed(): number {
    return this.missedCount;
  }

  get queuedFrames(): number {
    return this.queue.size;
  }

  /** Writes waiting for room in the queue (backpressure on the apps). */
  get waitingFrames(): number {
    return this.waiting.size;
  }

  get queuedBytes(): number {
    return this.queue.bytes;
  }

  /** Acknowledged writes kept for a resend to the next server. */
  get ackedKept(): number {
    return this.acked.size;
  }

  /** Acknowledged writes pushed out by the count or byte bound before their time (a resend would miss them). */
  get ackedDroppedEarly(): number {
    return this.acked.droppedEarly;
  }

  /**
   * Forgets acknowledged writes older than `maxAgeMs` (acked-writes.ts ackedRetentionMs); the runner
   * calls it now and then. Only while attached: without a server nothing ages. Returns how many.
   */
  trimAcked(now: number, maxAgeMs: number): number {
    return this.server ? this.acked.trim(now, maxAgeMs) : 0;
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
    // Attached before but never welcomed (the server died first): 0 asks for everything the next one kept.
    const resumeFromEpoch = this.lastEpoch ?? (this.generation > 0 ? 0 : undefined);
    this.server = send;
    this.writesRefused = false;
    const generation = ++this.generation;
    const still = () => this.server === send && this.generation === generation;
    const hello: ToHubFrameOf<"hello"> = { type: "hello", id: this.options.node.id, name: this.options.node.name, kind: "node" };
    this.resumed = resumeFromEpoch !== undefined;
    if (resumeFromEpoch !== undefined) hello.resumeFromEpoch = resumeFromEpoch;
    if (this.lastStream !== null) {
      hello.resumeStream = this.lastStream;
      hello.resumeFromPos = this.lastPos;
    }
    this.toServer(hello);
    for (const filter of this.appSubscriptions.filters()) if (still()) this.toServer({ type: "sub", filter });
    // Right after the subs: the server holds back live messages until it has replayed (a no-op if it needs no replay).
    if (resumeFromEpoch !== undefined && still()) this.toServer({ type: "resync" });
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
    // What earlier servers acknowledged goes first: this one or the subscribers drop what they had.
    this.queue.rewind(this.acked.takeAll());
    this.pump();
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
        this.lastEpoch = frame.epoch;
        if (frame.stream !== undefined && frame.stream !== this.lastStream) {
          // A new stream: replayed messages start at its beginning; on a first attach, only what comes next is ours.
          this.lastStream = frame.stream;
          this.lastPos = this.resumed ? 0 : (frame.pos ?? 0);
        }
        return;
      case "msg":
        return this.onMessage(frame);
      case "ack": {
        const entry = this.queue.take(frame.origin, frame.seq);
        if (entry) {
          if (!entry.resent) this.toApp(entry.from, frame);
          this.keepAcked(entry, frame.version);
        }
        return this.makeRoom();
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
        return;
      case "error":
        return this.onServerError(frame);
    }
  }

  // ------------------------------------------------------------ the apps' side

  /**
   * One frame from a local app: JSON text or a parsed value. Never throws: a
   * refusal goes to the app as an `error` frame (or, for a call, a `reply`
   * with `error`) and is also returned, for the log and tests.
   */
  fromApp(app: AppId, input: unknown, now = 0): AppError | null {
    this.apps.add(app);
    const parsed = parseToHubFrame(input);
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
        return this.onAppWrite(app, frame, now);
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
        const call = this.incomingCalls.get(frame.id);
        if (!call || call.app !== app) return null;
        this.incomingCalls.delete(frame.id);
        if (call.generation === this.generation && this.server) this.toServer({ ...frame, id: call.hubId });
        return null;
      }
    }
  }

  /** A local app disconnected. What it published stays queued: it was accepted by the node. */
  appGone(app: AppId): void {
    if (!this.apps.delete(app)) return;
    for (const filter of this.appSubscriptions.filters()) this.removeAppFilter(app, filter);
    this.filtersPerApp.delete(app);
    for (const [service, owner] of [...this.services]) if (owner === app) this.withdrawService(service);
    for (const [id, request] of [...this.requests]) if (request.kind !== "resync" && request.app === app) this.requests.delete(id);
    for (const [id, call] of [...this.incomingCalls]) {
      if (call.app !== app) continue;
      this.incomingCalls.delete(id);
      if (call.generation === this.generation && this.server) this.toServer(replyError(call.hubId, new ProviderGone(call.service)));
    }
  }

  // ------------------------------------------------------------ handlers

  private onAppSub(app: AppId, frame: ToHubFrameOf<"sub">): AppError | null {
    const isNewUpstream = !this.appSubscriptions.has(frame.filter);
    const isNewForApp = isNewUpstream || !this.appSubscriptions.subscribersOf(frame.filter).includes(app);
    const mine = this.filtersPerApp.get(app) ?? 0;
    const perApp = this.options.maxFiltersPerApp ?? DEFAULT_MAX_FILTERS_PER_APP;
    if (isNewForApp && mine >= perApp) {
      return this.refuse(app, new LimitReached(`An app may hold at most ${perApp} subscriptions on this node; unsubscribe some first.`), refOf(frame));
    }
    if (isNewUpstream && this.appSubscriptions.filters().length >= (this.options.maxFilters ?? DEFAULT_MAX_FILTERS)) {
      return this.refuse(app, new LimitReached(`This node holds at most ${this.options.maxFilters ?? DEFAULT_MAX_FILTERS} distinct subscriptions for all its apps together.`), refOf(frame));
    }
    if (isNewForApp) this.filtersPerApp.set(app, mine + 1);
    this.appSubscriptions.add(frame.filter, app);
    // Values the node already holds go to the app now; values new to the node come from the server's answer to `sub`.
    for (const { key, value, version } of this.values.matching(frame.filter)) this.toApp(app, { type: "value", key, value, version });
    if (isNewUpstream && this.server) this.toServer(frame);
    return null;
  }

  private removeAppFilter(app: AppId, filter: string): void {
    if (!this.appSubscriptions.subscribersOf(filter).includes(app)) return;
    const mine = this.filtersPerApp.get(app) ?? 1;
    if (mine <= 1) this.filtersPerApp.delete(app);
    else this.filtersPerApp.set(app, mine - 1);
    if (!this.appSubscriptions.remove(filter, app)) return;
    if (this.server) this.toServer({ type: "unsub", filter });
    this.values.keepOnly((key) => this.appSubscriptions.match(key).length > 0);
  }

  private onAppWrite(app: AppId, frame: QueuedWrite, now: number): AppError | null {
    if (this.queue.has(frame.origin, frame.seq)) return null; // the app resent it; it is already on its way
    // Only a node resending names the version another hub acknowledged.
    if (frame.type === "set" && frame.acked !== undefined) frame = { type: "set", key: frame.key, value: frame.value, origin: frame.origin, seq: frame.seq };
    // Behind others already waiting, even if room just opened: writes keep their order.
    const write = encodeWrite(frame);
    if (this.waitingFrames === 0 && this.queue.offer(write, app)) {
      this.pump();
      return null;
    }
    if (this.waiting.isFullFor(write.bytes)) return this.refuse(app, new QueueFull(this.queue.size, this.server !== null && !this.writesRefused), refOf(frame));
    this.waiting.push({ write, app, since: now });
    return null;
  }

  /**
   * Refuses writes that waited `publishWaitMs` or longer for room (PUBLISH_TIMEOUT); the runner
   * calls it now and then with the clock it passes to `fromApp`. Returns how many were refused.
   */
  expireWaiting(now: number): number {
    const waitMs = this.options.publishWaitMs ?? DEFAULT_PUBLISH_WAIT_MS;
    let expired = 0;
    for (let first = this.waiting.first(); first && now - first.since >= waitMs; first = this.waiting.first()) {
      const { write, app } = this.waiting.shift();
      const frame = write.frame;
      this.refuse(app, new PublishTimedOut(waitMs, this.queue.size, this.server !== null && !this.writesRefused), refOf(frame));
      expired++;
    }
    return expired;
  }

  /** Keeps an acknowledged write for a resend; a set names the version the hub gave it (resend-order.ts). */
  private keepAcked(entry: QueueEntry<AppId>, version: Version | undefined): void {
    if (entry.frame.type === "set" && version !== undefined) {
      this.acked.add({ ...encodeWrite({ ...entry.frame, acked: version }), from: entry.from });
    } else {
      this.acked.add(entry);
    }
  }

  /** An entry left the queue: let waiting writes in, in order, and send what the window allows. */
  private makeRoom(): void {
    for (let next = this.waiting.first(); next && this.queue.offer(next.write, next.app); next = this.waiting.first()) this.waiting.shift();
    this.pump();
  }

  /**
   * Sends queued writes in order while the window has room and the server takes writes. Not
   * re-entered: a hub in this very process answers a write synchronously, and its ack would
   * otherwise send the next write before the hub finished taking this one, so the hub's
   * replay ring held them newest first (and a node resuming from it dropped all but the last).
   */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.server && !this.writesRefused) {
        const entry = this.queue.nextToSend();
        if (!entry) return;
        this.toServer(entry.frame, entry.text);
      }
    } finally {
      this.pumping = false;
    }
  }

  private pumping = false;

  private onAppCall(app: AppId, frame: ToHubFrameOf<"call">): AppError | null {
    if (!this.server) return this.failCall(app, frame.id, new NotConnected(frame.service));
    if (this.requests.size >= this.maxRequests) return this.failCall(app, frame.id, this.tooManyRequests());
    const id = this.newId("c");
    this.requests.set(id, { kind: "call", app, appId: frame.id, service: frame.service });
    this.toServer({ ...frame, id });
    return null;
  }

  private onMessage(frame: FromHubFrameOf<"msg">): void {
    if (frame.pos !== undefined && frame.pos > this.lastPos) this.lastPos = frame.pos;
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
    const id = this.newId("i");
    this.incomingCalls.set(id, { app, hubId: frame.id, service: frame.service, generation: this.generation });
    this.toApp(app, { ...frame, id });
  }

  /** The server could not replay everything: every app that subscribes hears how many messages it missed. */
  private onGap(frame: FromHubFrameOf<"gap">): void {
    this.incompleteReplays++;
    this.missedCount += frame.missed;
    const apps = new Set<AppId>();
    for (const filter of this.appSubscriptions.filters()) for (const app of this.appSubscriptions.subscribersOf(filter)) apps.add(app);
    if (apps.size > 0) this.deliver(frame, [...apps]);
  }

  private onServerError(frame: ErrorFrame): void {
    const ref = frame.ref;
    if ((ref?.type === "pub" || ref?.type === "set") && ref.origin !== undefined && ref.seq !== undefined) {
      if (frame.code === "NOT_ACTIVE") {
        // Keep it queued; the runner attaches the active server, which gets everything in order.
        if (this.queue.has(ref.origin, ref.seq)) this.writesRefused = true;
        return;
      }
      const entry = this.queue.take(ref.origin, ref.seq);
      if (entry) {
        // A resent write was acknowledged to its app long ago: the refusal is for the log.
        if (entry.resent) this.options.onServerError?.(frame);
        else this.toApp(entry.from, frame);
        return this.makeRoom();
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

  // ------------------------------------------------------------ helpers

  private withdrawService(service: string): void {
    this.services.delete(service);
    if (this.server) this.toServer({ type: "unoffer", service });
  }

  private get maxRequests(): number {
    return this.options.maxPendingRequests ?? DEFAULT_MAX_PENDING_REQUESTS;
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

/** A failed call's answer; the same shape either way (to an app, or to the hub for a call an app cannot take). */
function replyError(id: string, error: AppError) {
  return { type: "reply" as const, id, error: { code: error.code, message: error.message } };
}
