/**
 * Writes the active hub acknowledged, kept for a while by the publishing node
 * (HubUplink). An ack says the hub has the write, not that every subscriber
 * got it: a hub killed right after acking may not have fanned it out, and at a
 * failback the backup may ack a write after the subscribers moved to the main.
 * So the node resends these, first and in order, to the next server it attaches
 * to; that server and the subscribing nodes drop what they already had (per-origin
 * marks), so each app still sees each message once.
 *
 * Kept until their server was heard alive `maxAgeMs` after the ack (the uplink
 * trims only while attached, and passes when it last heard its server: time a
 * frozen server kept its socket open without answering does not count), and
 * bounded by count and bytes (the oldest go first). Ages without a stored
 * clock, as ReplayRing does: each trim marks "everything kept so far was
 * acknowledged by now".
 */
import { encodeFrame } from "./frames.ts";
import type { EncodedWrite, QueuedWrite } from "./outbound-queue.ts";

export type AckedWrite<A> = EncodedWrite & { readonly from: A };
/**
 * What is kept of an acknowledged write: its frame, not its text (nor the queue entry around
 * both). Frame and text together held twice what the byte bound counts (20,000 writes of the hub
 * bench: 8.2 MiB of heap for 4.0 MiB counted; the frame alone 3.5). The text is made again only
 * for a resend, after a server switch.
 */
type KeptWrite<A> = { readonly frame: QueuedWrite; readonly bytes: number; readonly from: A };

export const DEFAULT_MAX_ACKED_FRAMES = 20_000;
export const DEFAULT_MAX_ACKED_BYTES = 8 * 1024 * 1024;

/**
 * How long a node keeps what its server acknowledged. The server may stop right after an ack
 * (frozen, or dead with the fan-out still in its socket buffers); the node moves only once the
 * backup has waited out the failover timeout and announced itself (heartbeats) and the node has
 * reconnected. Twice the timeout plus a few heartbeats leaves room for a loaded machine.
 */
export function ackedRetentionMs(timing: { failoverTimeoutMs: number; heartbeatMs: number }): number {
  return 2 * timing.failoverTimeoutMs + 4 * timing.heartbeatMs;
}

/** Marks kept at most; past it the newest mark moves forward (writes then look younger and are kept longer). */
const MAX_MARKS = 64;

export class AckedWrites<A> {
  // entries[head] is the oldest kept write, at absolute index `start`.
  private entries: KeptWrite<A>[] = [];
  private head = 0;
  private start = 0;
  private byteCount = 0;
  private droppedCount = 0;
  /** Everything before absolute index `end` was acknowledged at or before `at`. */
  private readonly marks: { end: number; at: number }[] = [];

  constructor(
    readonly maxFrames = DEFAULT_MAX_ACKED_FRAMES,
    readonly maxBytes = DEFAULT_MAX_ACKED_BYTES,
  ) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Writes pushed out by the count or byte bound before their time: a resend would miss them. */
  get droppedEarly(): number {
    return this.droppedCount;
  }

  add(write: AckedWrite<A>): void {
    if (this.maxFrames <= 0) return;
    this.entries.push({ frame: write.frame, bytes: write.bytes, from: write.from });
    this.byteCount += write.bytes;
    while (this.size > 0 && (this.size > this.maxFrames || this.byteCount > this.maxBytes)) {
      this.dropOldest();
      this.droppedCount++;
    }
  }

  /**
   * Drops writes acknowledged at least `maxAgeMs` before `aliveAt` (when their server was last
   * heard alive; `now` when that is not in doubt); returns how many.
   */
  trim(now: number, maxAgeMs: number, aliveAt = now): number {
    const end = this.start + this.size;
    const last = this.marks.at(-1);
    if (end > (last?.end ?? this.start)) {
      if (last && this.marks.length >= MAX_MARKS) Object.assign(last, { end, at: now });
      else this.marks.push({ end, at: now });
    }
    let dropped = 0;
    while (this.marks.length > 0 && this.marks[0]!.at <= Math.min(now, aliveAt) - maxAgeMs) {
      const mark = this.marks.shift()!;
      while (this.start < mark.end && this.size > 0) {
        this.dropOldest();
        dropped++;
      }
    }
    return dropped;
  }

  /** Every kept write, oldest first, for a resend; the store is empty after (they are queued again). */
  takeAll(): AckedWrite<A>[] {
    const kept = this.entries.slice(this.head);
    const all = kept.map(({ frame, bytes, from }) => ({ frame, text: encodeFrame(frame), bytes, from }));
    this.start += all.length;
    this.entries = [];
    this.head = 0;
    this.byteCount = 0;
    this.marks.length = 0;
    return all;
  }

  private dropOldest(): void {
    const entry = this.entries[this.head]!;
    this.entries[this.head++] = undefined as never;
    this.start++;
    this.byteCount -= entry.bytes;
    if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
