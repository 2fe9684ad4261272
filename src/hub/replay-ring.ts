/**
 * The epoch replay buffer: the `msg` frames the active hub accepted in its
 * current epoch, oldest first, so a node that reaches this hub late after a
 * server switch still gets what publishers resent here before it arrived
 * (docs/design.md §Failover, step 3; §Data Hub; HubCore's `resync`).
 *
 * Every accepted pub goes in, whether or not anyone was subscribed at the
 * time: right after a switch the subscriber may simply not be here yet.
 * Bounded by messages and bytes (the oldest go first), and by age when the
 * runner calls `trim(now)`. What fell out since the epoch began is counted,
 * so a replay can say it is incomplete instead of being silently short.
 *
 * Positions: the n-th message appended since the last `clear` is at position
 * n (1, 2, ...), whether or not it is still kept; a node that knows the last
 * position it received asks for what came after (`matchingAfter`) and learns
 * how many of those the ring no longer holds (`droppedAfter`).
 *
 * Ages without a clock: each `trim(now)` marks "everything appended so far
 * was appended at or before `now`". A message is dropped once a mark covering
 * it is `maxAgeMs` old, so none is dropped younger than `maxAgeMs`; it may
 * live one trim interval longer.
 */
import { levelsMatch, splitLevels } from "../core/topics.ts";
import { utf8ByteLength, type FromHubFrameOf } from "./frames.ts";
import { sizeText } from "./retained-shares.ts";

export type MsgFrame = FromHubFrameOf<"msg">;

export type ReplayLimits = {
  /** Messages kept; 0 keeps none (every resuming node is then told its replay is incomplete). */
  readonly maxMessages: number;
  /** Sum of the kept frames' JSON sizes. */
  readonly maxBytes: number;
  /** Age after which `trim(now)` drops a message. */
  readonly maxAgeMs: number;
};

export const DEFAULT_REPLAY_LIMITS: ReplayLimits = {
  maxMessages: 20_000,
  maxBytes: 16 * 1024 * 1024,
  maxAgeMs: 60_000,
};

/** Marks kept at most; past it the newest mark is moved forward (messages then look younger, so they are kept longer). */
const MAX_MARKS = 1024;

type Entry = { readonly frame: MsgFrame; readonly bytes: number };
/** Everything before absolute position `end` was appended at or before `at`. */
type Mark = { end: number; at: number };

export class ReplayRing {
  readonly limits: ReplayLimits;
  // entries[head] is the oldest kept message, at absolute position `start`.
  private entries: Entry[] = [];
  private head = 0;
  private start = 0;
  private byteCount = 0;
  private droppedCount = 0;
  private readonly marks: Mark[] = [];

  constructor(limits: Partial<ReplayLimits> = {}) {
    const merged = { ...DEFAULT_REPLAY_LIMITS, ...limits };
    this.limits = { maxMessages: Math.max(0, merged.maxMessages), maxBytes: Math.max(0, merged.maxBytes), maxAgeMs: Math.max(0, merged.maxAgeMs) };
  }

  /** Messages kept now. */
  get size(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Messages dropped (by a bound or by age) since the ring was last cleared: a replay now would miss them. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Absolute position after the newest message. */
  private get end(): number {
    return this.start + this.size;
  }

  /** The position of the newest message appended (0 before any): a node that joins now has seen everything up to it. */
  get position(): number {
    return this.end;
  }

  /** How many messages after `position` the ring no longer holds. */
  droppedAfter(position: number): number {
    return Math.max(0, this.start - Math.max(0, position));
  }

  /** The `gap` frame for a node resuming after `position`, or null when the ring still holds all it missed. */
  gapAfter(position: number): FromHubFrameOf<"gap"> | null {
    const missed = this.droppedAfter(position);
    if (missed === 0) return null;
    const { maxMessages, maxBytes, maxAgeMs } = this.limits;
    const message =
      `${missed} messages published while this node was away are no longer held by the hub (it keeps at most ${maxMessages} messages, ` +
      `${sizeText(maxBytes)}, ${maxAgeMs / 1000} s, for nodes that reconnect); some may not have matched this node's subscriptions.`;
    return { type: "gap", missed, message };
  }

  /** Appends `frame` at position `this.position + 1` (the caller stamps it on the frame before); `bytes` is its JSON size, when the caller has it. */
  append(frame: MsgFrame, bytes = utf8ByteLength(JSON.stringify(frame))): void {
    this.entries.push({ frame, bytes });
    this.byteCount += bytes;
    while (this.size > 0 && (this.size > this.limits.maxMessages || this.byteCount > this.limits.maxBytes)) this.dropOldest();
  }

  /** A new epoch: start empty, nothing missing. */
  clear(): void {
    this.entries = [];
    this.head = 0;
    this.start = 0;
    this.byteCount = 0;
    this.droppedCount = 0;
    this.marks.length = 0;
  }

  /** Drops messages at least `maxAgeMs` old at `now` (ms, the runner's clock); returns how many. */
  trim(now: number): number {
    const last = this.marks.at(-1);
    if (this.end > (last?.end ?? this.start)) {
      if (last && this.marks.length >= MAX_MARKS) {
        last.end = this.end;
        last.at = now;
      } else {
        this.marks.push({ end: this.end, at: now });
      }
    }
    let dropped = 0;
    while (this.marks.length > 0 && this.marks[0]!.at <= now - this.limits.maxAgeMs) {
      const { end } = this.marks.shift()!;
      while (this.start < end && this.size > 0) {
        this.dropOldest();
        dropped++;
      }
    }
    return dropped;
  }

  /** The kept messages whose topic matches at least one of `filters`, each once, oldest first. */
  matching(filters: Iterable<string>): MsgFrame[] {
    return this.matchingAfter(filters, 0);
  }

  /** Like `matching`, for the messages after `position` only. */
  matchingAfter(filters: Iterable<string>, position: number): MsgFrame[] {
    const filterLevels = [...filters].map(splitLevels);
    if (filterLevels.length === 0) return [];
    const found: MsgFrame[] = [];
    const first = this.head + Math.max(0, Math.max(0, position) - this.start);
    for (let i = first; i < this.entries.length; i++) {
      const frame = this.entries[i]!.frame;
      const topicLevels = splitLevels(frame.topic);
      if (filterLevels.some((levels) => levelsMatch(levels, topicLevels))) found.push(frame);
    }
    return found;
  }

  private dropOldest(): void {
    const entry = this.entries[this.head]!;
    this.entries[this.head] = undefined as never; // let the frame be collected before the next compaction
    this.head++;
    this.start++;
    this.byteCount -= entry.bytes;
    this.droppedCount++;
    if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
