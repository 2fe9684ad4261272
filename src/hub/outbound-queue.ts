/**
 * A client node's queue of pub/set frames not yet acknowledged by the active
 * hub. Frames stay until the hub acks their (origin, seq), so whatever was
 * in flight when the server died is resent, in the original order, to the
 * next one (which de-duplicates), after what the previous servers acknowledged
 * lately (`rewind(acked)`, acked-writes.ts). Bounded by frames and bytes.
 *
 * It also paces sending: at most `window` frames are on the wire unacknowledged
 * at a time (`nextToSend` hands out the next one in order, `rewind` starts over
 * for a new server). A burst of thousands of frames then reaches the hub as a
 * steady stream instead of one block that stalls its event loop (and with it
 * the heartbeats that keep the network from failing over).
 *
 * Every write passes here at burst rate, so each is encoded once (`encodeWrite`:
 * its text is what is counted and what is sent) and found by origin, then seq,
 * without building a key string per lookup.
 */
import { encodeFrame, utf8ByteLength, type ToHubFrameOf } from "./frames.ts";

export const DEFAULT_MAX_QUEUED_FRAMES = 10_000;
export const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** Frames sent to the hub and not yet acknowledged, at most: enough to fill a loopback or LAN round trip at 50k msgs/s. */
export const DEFAULT_SEND_WINDOW = 1_000;

export type QueuedWrite = ToHubFrameOf<"pub"> | ToHubFrameOf<"set">;
/** A write with its JSON text, made once: the queue counts its UTF-8 bytes and the uplink sends the text. */
export type EncodedWrite = { readonly frame: QueuedWrite; readonly text: string; readonly bytes: number };
/** `resent`: the previous server acknowledged it already (acked-writes.ts); its app heard that ack. */
export type QueueEntry<A> = EncodedWrite & { readonly from: A; readonly resent: boolean; sent: boolean; taken: boolean };

export function encodeWrite(frame: QueuedWrite): EncodedWrite {
  const text = encodeFrame(frame);
  return { frame, text, bytes: utf8ByteLength(text) };
}

export class OutboundQueue<A> {
  private readonly byOrigin = new Map<string, Map<number, QueueEntry<A>>>();
  /** Every queued entry in publish order from `head` on (taken ones are skipped, then dropped); resends walk it from the start. */
  private order: QueueEntry<A>[] = [];
  private head = 0;
  /** Where the next send to the current server starts looking. */
  private cursor = 0;
  private count = 0;
  private byteCount = 0;
  private sentCount = 0;
  readonly maxFrames: number;
  readonly maxBytes: number;
  readonly window: number;

  constructor(maxFrames = DEFAULT_MAX_QUEUED_FRAMES, maxBytes = DEFAULT_MAX_QUEUED_BYTES, window = DEFAULT_SEND_WINDOW) {
    this.maxFrames = Math.max(1, maxFrames);
    this.maxBytes = Math.max(1, maxBytes);
    this.window = Math.max(1, window);
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Frames sent to the current server and not acknowledged yet. */
  get inFlight(): number {
    return this.sentCount;
  }

  has(origin: string, seq: number): boolean {
    return this.byOrigin.get(origin)?.has(seq) ?? false;
  }

  /** Adds `write` unless it would break a bound; returns false then (nothing added). */
  offer(write: EncodedWrite, from: A): boolean {
    if (this.count >= this.maxFrames || this.byteCount + write.bytes > this.maxBytes) return false;
    this.order.push(this.add(write, from, false));
    return true;
  }

  private add(write: EncodedWrite, from: A, resent: boolean): QueueEntry<A> {
    const { origin, seq } = write.frame;
    let seqs = this.byOrigin.get(origin);
    if (!seqs) this.byOrigin.set(origin, (seqs = new Map()));
    const entry: QueueEntry<A> = { frame: write.frame, text: write.text, bytes: write.bytes, from, resent, sent: false, taken: false };
    seqs.set(seq, entry);
    this.count++;
    this.byteCount += write.bytes;
    return entry;
  }

  /** Removes and returns the entry for (origin, seq), if queued. */
  take(origin: string, seq: number): QueueEntry<A> | undefined {
    const seqs = this.byOrigin.get(origin);
    const entry = seqs?.get(seq);
    if (!seqs || !entry) return undefined;
    seqs.delete(seq);
    if (seqs.size === 0) this.byOrigin.delete(origin);
    entry.taken = true;
    this.count--;
    this.byteCount -= entry.bytes;
    if (entry.sent) this.sentCount--;
    this.dropTakenHead();
    return entry;
  }

  /** The next frame to send to the current server, in publish order, if the window has room; marks it sent. */
  nextToSend(): QueueEntry<A> | undefined {
    if (this.sentCount >= this.window) return undefined;
    while (this.cursor < this.order.length) {
      const entry = this.order[this.cursor++]!;
      if (entry.taken || entry.sent) continue;
      entry.sent = true;
      this.sentCount++;
      return entry;
    }
    return undefined;
  }

  /**
   * A new server: nothing has been sent to it. `acked` (what the previous servers acknowledged,
   * oldest first) goes first, then everything queued, in publish order. Those count in the
   * queue's size even past its bounds (they were accepted long ago); new writes wait meanwhile.
   */
  rewind(acked: readonly (EncodedWrite & { readonly from: A })[] = []): void {
    const again: QueueEntry<A>[] = [];
    for (const write of acked) if (!this.has(write.frame.origin, write.frame.seq)) again.push(this.add(write, write.from, true));
    this.order = again.concat(this.order.slice(this.head).filter((entry) => !entry.taken));
    this.head = 0;
    this.cursor = 0;
    this.sentCount = 0;
    for (const entry of this.order) entry.sent = false;
  }

  /** Acks come in publish order: the oldest entries leave first, and the array is cut now and then. */
  private dropTakenHead(): void {
    while (this.head < this.order.length && this.order[this.head]!.taken) this.order[this.head++] = undefined as never;
    if (this.cursor < this.head) this.cursor = this.head;
    // Entries taken out of order (refused ones) wait until the head passes them; past twice the live count they go at once.
    if (this.order.length - this.head > 2 * this.count + 1024) {
      const kept: QueueEntry<A>[] = [];
      let cursor = 0;
      for (let i = this.head; i < this.order.length; i++) {
        const entry = this.order[i]!;
        if (entry.taken) continue;
        if (i < this.cursor) cursor++;
        kept.push(entry);
      }
      this.order = kept;
      this.head = 0;
      this.cursor = cursor;
      return;
    }
    if (this.head >= 1024 && this.head * 2 >= this.order.length) {
      this.order = this.order.slice(this.head);
      this.cursor -= this.head;
      this.head = 0;
    }
  }
}
