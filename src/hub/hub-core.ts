/**
 * HubCore: the Data Hub's rules, with no I/O and no timers (docs/design.md §Data Hub).
 *
 * The adapter (WebSocket `/hub`, or an in-memory network in tests) owns the
 * sockets. It attaches each connection with a `send` callback for frames
 * meant for that connection alone (acks, errors, answers, forwarded calls),
 * hands every received frame to `receive`, and dispatches what `receive`
 * returns: `Fanout`s, one frame object for many connections, which it encodes
 * and seals once (broadcast key) and writes as the same bytes to each.
 *
 * Writes (`pub`, `set`) are taken only while this server is the active one
 * (`setWritable(true)`); elsewhere they are refused with NOT_ACTIVE and the
 * client node keeps them queued. Each write is named by (origin, seq) and
 * de-duplicated, so a frame resent after a switch is delivered once. Nodes
 * resend what other hubs acknowledged lately, too (acked-writes.ts): a resent
 * `set` names the version that hub gave it and applies only over older writes
 * (resend-order.ts), so resends in any order leave the key as that hub had it.
 *
 * The hub keeps what it accepted in its current epoch (a bounded ReplayRing,
 * emptied when the epoch rises), each message stamped with its position in
 * this hub's stream (`pos`; `welcome` names the stream and its position). A
 * node that comes back gets what it missed:
 * - after a switch (its `hello` names an older `resumeFromEpoch`, or another
 *   stream at this epoch: this hub restarted), everything the ring holds: a
 *   subscriber arriving after a publisher resent its queue still gets it;
 * - after a cut from this same hub at this epoch (`resumeStream` is this
 *   stream), what came after `resumeFromPos`.
 * It gets no live messages until it sends `resync` (after its `sub`s); the hub
 * then replays the kept messages matching its filters, in the order it accepted
 * them, and lets it go live. Everything accepted meanwhile is in the ring, so
 * nothing overtakes and nothing falls between replay and live; the node drops
 * repeats by (from, seq). What the ring no longer holds is announced with a
 * `gap` frame and its count, never silently skipped.
 *
 * Nothing here throws on a bad frame: the sender gets an `error` frame.
 */
import { compareVersions, RetainedState, ZERO_VERSION, type HubStateChanges, type HubStatePersistence, type RetainedEntry, type RetainedUseReport } from "./retained-state.ts";
import { MAX_PRESENCE_MEMBERS, encodeFrame, errorFrame, utf8ByteLength, parseToHubFrame, refOf, type FromHubFrame, type FromHubFrameOf, type Member, type ToHubFrame, type ToHubFrameOf, type Version } from "./frames.ts";
import { AlreadyIntroduced, LimitReached, NotActive, NotIntroduced, StoreFailed } from "./hub-errors.ts";
import type { AppError } from "../core/errors.ts";
import { levelsMatch, splitLevels } from "../core/topics.ts";
import { OriginMarks } from "./origin-marks.ts";
import { ResendOrder } from "./resend-order.ts";
import { SubscriptionIndex } from "./subscription-index.ts";
import { ReplayRing } from "./replay-ring.ts";
import { DEFAULT_HUB_LIMITS, retainedShareLimits, type HubCoreOptions, type HubLimits, type ReplayStats } from "./hub-limits.ts";
import { ServiceCalls } from "./hub-service-calls.ts";

/** Opaque to the hub; the adapter picks it (one per socket). */
export type ConnectionId = string;
export type SendFrame = (frame: FromHubFrame) => void;
/** "Deliver this frame to these connections", sealed once; `text` is its JSON if the hub already made it (replay ring). */
export type Fanout = { readonly frame: FromHubFrame; readonly to: readonly ConnectionId[]; readonly text?: string };

type Connection = {
  readonly id: ConnectionId;
  readonly send: SendFrame;
  /** The machine the adapter proved (peer handshake); null for this machine's own uplink, which is its hello id. */
  readonly machine: string | null;
  /** Who it said it is (`hello`); null until then. */
  member: { id: string; name: string; kind: Member["kind"] } | null;
  delayMs: number | null;
  readonly filters: Set<string>;
  readonly services: Set<string>;
  /**
   * Set once a write on this connection was refused as NOT_ACTIVE; later
   * writes on it are refused too, even if the server becomes active meanwhile.
   * Otherwise seq 7 could be taken after seq 6 was refused, and the resent 6
   * would then look like a duplicate and be lost. The node reconnects and resends in order.
   */
  writesRefused: boolean;
};

export class HubCore {
  private readonly connections = new Map<ConnectionId, Connection>();
  private readonly subscriptions = new SubscriptionIndex<ConnectionId>();
  private readonly calls: ServiceCalls;
  private readonly seen: OriginMarks;
  private readonly retained: RetainedState;
  private readonly resends: ResendOrder;
  private readonly limits: HubLimits;
  private readonly replay: ReplayRing;
  /** Connections that asked for a replay and have not sent `resync` yet (no live messages), with the stream position to replay after. */
  private readonly resuming = new Map<ConnectionId, number>();
  private readonly bootStream: string;
  private stream: string;
  private readonly replayCounts = { replays: 0, replayedMessages: 0, incomplete: 0 };
  /** Frames taken since this hub started, by type (/metrics turns them into rates). */
  private readonly receivedCounts: Partial<Record<ToHubFrame["type"], number>> = {};
  private currentEpoch: number;
  private isWritable: boolean;

  constructor(options: HubCoreOptions = {}) {
    this.limits = { ...DEFAULT_HUB_LIMITS, ...options.limits };
    this.currentEpoch = options.epoch ?? 0;
    this.isWritable = options.writable ?? false;
    this.seen = new OriginMarks(this.limits.maxTrackedOrigins);
    const l = this.limits;
    this.retained = new RetainedState(options.persistence, { maxSetMarks: l.maxTrackedOrigins, shares: retainedShareLimits(l) });
    this.resends = new ResendOrder(this.limits.maxTrackedOrigins);
    this.calls = new ServiceCalls({
      maxServicesPerConnection: l.maxServicesPerConnection,
      maxPendingCalls: l.maxPendingCalls,
      connection: (id) => this.connections.get(id),
      send: (id, frame) => this.sendTo(id, frame),
    });
    this.replay = new ReplayRing(options.replay);
    this.bootStream = options.streamId ?? crypto.randomUUID();
    this.stream = this.bootStream;
  }

  // ------------------------------------------------------------ runner controls

  get epoch(): number {
    return this.currentEpoch;
  }

  get writable(): boolean {
    return this.isWritable;
  }

  /** Epochs only rise (docs/design.md §Failover); set it before `setWritable(true)` on a takeover. A new epoch empties the replay buffer. */
  setEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < this.currentEpoch) {
      throw new RangeError(`The hub's epoch may only rise (it is ${this.currentEpoch}; was asked for ${epoch}).`);
    }
    if (epoch > this.currentEpoch) {
      this.replay.clear();
      this.stream = `${this.bootStream}-e${epoch}`;
      // What it acknowledged in an earlier epoch may never have reached subscribers (cut off, then fenced): a
      // resend must fan out again, not count as a repeat; subscribing nodes drop what they delivered (docs/design.md §Data Hub).
      this.seen.clear();
    }
    this.currentEpoch = epoch;
  }

  setWritable(writable: boolean): void {
    this.isWritable = writable;
  }

  /** Drops replay-buffer messages older than `replay.maxAgeMs`; the runner calls it now and then with its clock (ms). Returns how many. */
  trimReplay(now: number): number {
    return this.replay.trim(now);
  }

  get replayStats(): ReplayStats {
    return { buffered: this.replay.size, bufferedBytes: this.replay.bytes, dropped: this.replay.dropped, ...this.replayCounts };
  }

  /** The newest retained version held: the standby asks for changes since it. */
  get lastVersion(): Version {
    return this.retained.lastVersion;
  }

  /** Retained entries changed after `since` (with set marks), for the standby, or the main on failback. */
  exportStateSince(since: Version): HubStateChanges {
    return this.retained.exportSince(since);
  }

  /**
   * Applies another server's changes (newer versions win) and pushes the
   * changed values to matching subscriptions. Throws what persistence threw;
   * then nothing was applied and the runner may retry.
   */
  importState(changes: HubStateChanges): Fanout[] {
    return this.retained.import(changes).flatMap((entry) => this.valueFanout(entry));
  }

  /** Forgets tombstones the standby has confirmed through `version`. */
  pruneDeletedThrough(version: Version): number {
    return this.retained.pruneDeletedThrough(version);
  }

  /** What retained state holds now, in total and per machine (for /metrics). */
  retainedUse(): RetainedUseReport {
    return this.retained.useReport((machine) => this.nameOf(machine));
  }

  /** The live retained entry for `key` (for status pages). */
  retainedEntry(key: string): RetainedEntry | undefined {
    return this.retained.get(key);
  }

  /** Round-trip delay of a connection as the runner measured it (heartbeat echo or ping). */
  setDelay(connection: ConnectionId, delayMs: number | null): void {
    const conn = this.connections.get(connection);
    if (conn) conn.delayMs = delayMs;
  }

  /** Everyone who said hello, in the order they connected (at most MAX_PRESENCE_MEMBERS, so the frame stays bounded). */
  members(): Member[] {
    const members: Member[] = [];
    for (const conn of this.connections.values()) {
      if (members.length >= MAX_PRESENCE_MEMBERS) break;
      if (conn.member) members.push({ ...conn.member, delayMs: conn.delayMs });
    }
    return members;
  }

  /** The current presence for every member; the runner sends it when delays changed (membership changes send it already). */
  presence(): Fanout[] {
    const to = [...this.connections.values()].filter((c) => c.member).map((c) => c.id);
    return to.length === 0 ? [] : [{ frame: { type: "presence", members: this.members() }, to }];
  }

  // ------------------------------------------------------------ connections

  /** A new connection (already authenticated by the adapter, which names the machine it proved; none for this machine's own). */
  attach(connection: ConnectionId, send: SendFrame, machine: string | null = null): void {
    if (this.connections.has(connection)) throw new Error(`Connection id ${connection} is already attached; the adapter must use a fresh id per socket.`);
    this.connections.set(connection, {
      id: connection,
      send,
      machine,
      member: null,
      delayMs: null,
      filters: new Set(),
      services: new Set(),
      writesRefused: false,
    });
  }

  /** The connection closed: drop its subscriptions and services, fail calls waiting on it. */
  detach(connection: ConnectionId): Fanout[] {
    const conn = this.connections.get(connection);
    if (!conn) return [];
    this.connections.delete(connection);
    this.resuming.delete(connection);
    for (const filter of conn.filters) this.subscriptions.remove(filter, connection);
    this.calls.detach(conn);
    return conn.member ? this.presence() : [];
  }

  /**
   * One frame from a connection: JSON text or an already-parsed value.
   * Replies go through the connection's `send`; fan-outs are returned.
   */
  receive(connection: ConnectionId, input: unknown): Fanout[] {
    const conn = this.connections.get(connection);
    if (!conn) return []; // closed while the frame was in flight
    const parsed = parseToHubFrame(input);
    if (!parsed.ok) {
      this.safeSend(conn, errorFrame(parsed.error, parsed.ref));
      return [];
    }
    try {
      return this.handle(conn, parsed.frame);
    } catch (error) {
      // A bug or a failing callback must not take the hub down; the sender learns its frame failed.
      const message = `The hub could not handle this "${parsed.frame.type}" frame: ${(error as Error)?.message ?? String(error)}`;
      this.safeSend(conn, errorFrame({ code: "HUB_FAILED", message }, refOf(parsed.frame)));
      return [];
    }
  }

  /** Frames taken since this hub started, by type. */
  get received(): Readonly<Partial<Record<ToHubFrame["type"], number>>> {
    return this.receivedCounts;
  }

  /** Connections attached now (node uplinks and this machine's own). */
  get connectionCount(): number {
    return this.connections.size;
  }

  private handle(conn: Connection, frame: ToHubFrame): Fanout[] {
    this.receivedCounts[frame.type] = (this.receivedCounts[frame.type] ?? 0) + 1;
    if (frame.type === "ping") return this.onPing(conn, frame);
    if (frame.type === "hello") return this.onHello(conn, frame);
    if (!conn.member) return this.refuse(conn, new NotIntroduced(frame.type), frame);
    switch (frame.type) {
      case "resync":
        return this.onResync(conn);
      case "sub":
        return this.onSub(conn, frame);
      case "unsub":
        if (conn.filters.delete(frame.filter)) this.subscriptions.remove(frame.filter, conn.id);
        return [];
      case "pub":
        return this.onPub(conn, frame);
      case "set":
        return this.onSet(conn, frame);
      case "get":
        return this.onGet(conn, frame);
      case "offer": {
        const refusal = this.calls.offer(conn, frame);
        return refusal ? this.refuse(conn, refusal, frame) : [];
      }
      case "unoffer":
        this.calls.unoffer(conn, frame);
        return [];
      case "call":
        this.calls.call(conn, frame);
        return [];
      case "reply":
        this.calls.reply(conn, frame);
        return [];
    }
  }

  // ------------------------------------------------------------ handlers

  private onPing(conn: Connection, frame: ToHubFrameOf<"ping">): Fanout[] {
    if (frame.delayMs !== undefined && frame.delayMs !== null) conn.delayMs = frame.delayMs;
    this.safeSend(conn, { type: "pong", sentAt: frame.sentAt });
    return [];
  }

  private onHello(conn: Connection, frame: ToHubFrameOf<"hello">): Fanout[] {
    if (conn.member) return this.refuse(conn, new AlreadyIntroduced(), frame);
    conn.member = { id: frame.id, name: frame.name, kind: frame.kind };
    this.safeSend(conn, { type: "welcome", epoch: this.currentEpoch, stream: this.stream, pos: this.replay.position });
    const after = this.resumeAfter(frame);
    if (after !== null) this.resuming.set(conn.id, after);
    return this.presence();
  }

  /** Where a returning node's replay starts, or null for a first hello; one from a higher epoch gets everything (this hub took writes meanwhile). */
  private resumeAfter(frame: ToHubFrameOf<"hello">): number | null {
    const epoch = frame.resumeFromEpoch;
    if (epoch === undefined) return null;
    // The same stream: a cut from this hub; otherwise a switch (or this hub restarted), and the node de-duplicates what it had.
    return epoch === this.currentEpoch && frame.resumeStream === this.stream ? (frame.resumeFromPos ?? 0) : 0;
  }

  /** Replays this epoch's messages matching the connection's filters, oldest first, then lets live ones through. Synchronous, so none overtakes. */
  private onResync(conn: Connection): Fanout[] {
    const after = this.resuming.get(conn.id);
    if (after === undefined) return [];
    this.resuming.delete(conn.id);
    if (conn.filters.size === 0) return [];
    this.replayCounts.replays++;
    const gap = this.replay.gapAfter(after);
    if (gap) {
      this.replayCounts.incomplete++;
      this.safeSend(conn, gap);
    }
    for (const frame of this.replay.matchingAfter(conn.filters, after)) {
      this.safeSend(conn, frame);
      this.replayCounts.replayedMessages++;
    }
    return [];
  }

  private onSub(conn: Connection, frame: ToHubFrameOf<"sub">): Fanout[] {
    if (conn.filters.has(frame.filter)) return [];
    if (conn.filters.size >= this.limits.maxFiltersPerConnection) {
      return this.refuse(conn, new LimitReached(`A connection may hold at most ${this.limits.maxFiltersPerConnection} subscriptions; unsubscribe some first.`), frame);
    }
    conn.filters.add(frame.filter);
    this.subscriptions.add(frame.filter, conn.id);
    // Like MQTT retained messages: a new subscription starts with the current values it covers.
    const filterLevels = splitLevels(frame.filter);
    for (const entry of this.retained.live()) {
      if (levelsMatch(filterLevels, splitLevels(entry.key))) this.safeSend(conn, { type: "value", key: entry.key, value: entry.value, version: entry.version });
    }
    return [];
  }

  private onPub(conn: Connection, frame: ToHubFrameOf<"pub">): Fanout[] {
    if (this.refusesWrites(conn)) return this.refuse(conn, new NotActive(), frame);
    const duplicate = this.seen.isDuplicate(frame.origin, frame.seq);
    this.seen.record(frame.origin, frame.seq);
    this.safeSend(conn, { type: "ack", origin: frame.origin, seq: frame.seq });
    if (duplicate) return [];
    const msg: FromHubFrameOf<"msg"> = { type: "msg", topic: frame.topic, data: frame.data, from: frame.origin, seq: frame.seq, pos: this.replay.position + 1 };
    const text = encodeFrame(msg);
    // Kept even with no subscriber now: right after a switch, the subscriber may not have reconnected yet.
    this.replay.append(msg, utf8ByteLength(text));
    let to = this.subscriptions.match(frame.topic);
    if (this.resuming.size > 0) to = to.filter((id) => !this.resuming.has(id)); // they get it from the replay, in order
    return to.length === 0 ? [] : [{ frame: msg, to, text }];
  }

  private onSet(conn: Connection, frame: ToHubFrameOf<"set">): Fanout[] {
    if (this.refusesWrites(conn)) return this.refuse(conn, new NotActive(), frame);
    const ack = (version?: Version) => this.safeSend(conn, version ? { type: "ack", origin: frame.origin, seq: frame.seq, version } : { type: "ack", origin: frame.origin, seq: frame.seq });
    const superseded = frame.acked !== undefined && this.resends.isSuperseded(frame.key, frame.acked, this.retained.versionOf(frame.key));
    // A duplicate, or a resend of a write another hub acknowledged before the key's current one: taken, changes nothing.
    if (superseded || this.seen.isDuplicate(frame.origin, frame.seq) || this.retained.isDuplicateSet(frame.origin, frame.seq)) {
      this.seen.record(frame.origin, frame.seq);
      // A repeat whose first ack was lost: its version when known, for the node's resends elsewhere (resend-order.ts).
      ack(superseded ? undefined : this.retained.versionOfSet(frame.origin, frame.seq));
      return [];
    }
    const holder = { machine: conn.machine ?? conn.member!.id, origin: frame.origin };
    const full = this.retained.writeRefusal(frame.key, frame.value, holder, (machine) => this.nameOf(machine));
    if (full) return this.refuse(conn, full, frame);
    let entry: RetainedEntry | null;
    try {
      entry = this.retained.write(frame.key, frame.value, this.currentEpoch, frame.origin, frame.seq, holder);
    } catch (error) {
      return this.refuse(conn, new StoreFailed(frame.key, error), frame);
    }
    this.seen.record(frame.origin, frame.seq);
    if (entry && frame.acked !== undefined) this.resends.record(frame.key, entry.version, frame.acked);
    ack(entry?.version);
    return entry ? this.valueFanout(entry) : [];
  }

  private onGet(conn: Connection, frame: ToHubFrameOf<"get">): Fanout[] {
    const entry = this.retained.get(frame.key);
    // A key never set answers null at version (0, 0).
    this.safeSend(conn, { type: "value", key: frame.key, value: entry?.value ?? null, version: entry?.version ?? ZERO_VERSION, id: frame.id });
    return [];
  }

  // ------------------------------------------------------------ helpers

  /** Not the active server, or fenced: it holds a write from a higher epoch than its own, so another server took over. */
  private refusesWrites(conn: Connection): boolean {
    if (this.isWritable && this.retained.canWriteAt(this.currentEpoch) && !conn.writesRefused) return false;
    conn.writesRefused = true;
    return true;
  }

  /** A machine id in words: its name as a connection said hello, and the id. */
  private nameOf(machine: string): string {
    const conn = [...this.connections.values()].find((c) => c.member && (c.machine ?? c.member.id) === machine);
    return conn?.member ? `${conn.member.name} (${machine})` : machine;
  }

  private valueFanout(entry: RetainedEntry): Fanout[] {
    const to = this.subscriptions.match(entry.key);
    return to.length === 0 ? [] : [{ frame: { type: "value", key: entry.key, value: entry.value, version: entry.version }, to }];
  }

  private refuse(conn: Connection, error: AppError, frame: ToHubFrame): Fanout[] {
    this.safeSend(conn, errorFrame(error, refOf(frame)));
    return [];
  }

  private sendTo(connection: ConnectionId, frame: FromHubFrame): void {
    const conn = this.connections.get(connection);
    if (conn) this.safeSend(conn, frame);
  }

  private safeSend(conn: Connection, frame: FromHubFrame): void {
    try {
      conn.send(frame);
    } catch {
      // The socket is closing; the adapter will detach it. Nothing the hub decides depends on this one frame.
    }
  }
}

// Re-exported so the adapter and runner import the hub's vocabulary from one place.
export { compareVersions, DEFAULT_HUB_LIMITS, ZERO_VERSION };
export type { HubCoreOptions, HubLimits, ReplayStats };
export type { HubStateChanges, HubStatePersistence, RetainedEntry, RetainedUseReport };
