/**
 * A client node's queue of pub/set frames not yet acknowledged by the active
 * hub. Frames stay until the hub acks their (origin, seq), so whatever was
 * in flight when the server died is resent, in the original order, to the
 * next one (which de-duplicates). Bounded by frames and bytes.
 *
 * It also paces sending: at most `window` frames are on the wire unacknowledged
 * at a time (`nextToSend` hands out the next one in order, `rewind` starts over
 * for a new server). A burst of thousands of frames then reaches the hub as a
 * steady stream instead of one block that stalls its event loop (and with it
 * the heartbeats that keep the network from failing over).
 */
import { utf8ByteLength, type ToHubFrameOf } from "./frames.ts";

export const DEFAULT_MAX_QUEUED_FRAMES = 10_000;
export const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** Frames sent to the hub and not yet acknowledged, at most: enough to fill a loopback or LAN round trip at 50k msgs/s. */
export const DEFAULT_SEND_WINDOW = 1_000;

export type QueuedWrite = ToHubFrameOf<"pub"> | ToHubFrameOf<"set">;
export type QueueEntry<A> = { readonly frame: QueuedWrite; readonly bytes: number; readonly from: A; sent: boolean };

export class OutboundQueue<A> {
  // Map order is publish order: resends walk it from the start.
  private readonly entries = new Map<string, QueueEntry<A>>();
  /** Keys in publish order from `cursor` on: what has not been sent to the current server yet. */
  private order: string[] = [];
  private cursor = 0;
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
    return this.entries.size;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Frames sent to the current server and not acknowledged yet. */
  get inFlight(): number {
    return this.sentCount;
  }

  has(origin: string, seq: number): boolean {
    return this.entries.has(keyOf(origin, seq));
  }

  /** Adds `frame` (of `bytes`, measured once by `frameBytes`) unless it would break a bound; returns false then (nothing added). */
  offer(frame: QueuedWrite, from: A, bytes = frameBytes(frame)): boolean {
    if (this.entries.size >= this.maxFrames || this.byteCount + bytes > this.maxBytes) return false;
    const key = keyOf(frame.origin, frame.seq);
    this.entries.set(key, { frame, bytes, from, sent: false });
    this.order.push(key);
    this.byteCount += bytes;
    return true;
  }

  /** Removes and returns the entry for (origin, seq), if queued. */
  take(origin: string, seq: number): QueueEntry<A> | undefined {
    const key = keyOf(origin, seq);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.byteCount -= entry.bytes;
    if (entry.sent) this.sentCount--;
    return entry;
  }

  /** The next frame to send to the current server, in publish order, if the window has room; marks it sent. */
  nextToSend(): QueueEntry<A> | undefined {
    if (this.sentCount >= this.window) return undefined;
    while (this.cursor < this.order.length) {
      const entry = this.entries.get(this.order[this.cursor++]!);
      if (this.cursor >= 1024 && this.cursor * 2 >= this.order.length) {
        this.order = this.order.slice(this.cursor);
        this.cursor = 0;
      }
      if (!entry || entry.sent) continue;
      entry.sent = true;
      this.sentCount++;
      return entry;
    }
    return undefined;
  }

  /** A new server: nothing has been sent to it; everything queued goes again, in publish order. */
  rewind(): void {
    this.order = [...this.entries.keys()];
    this.cursor = 0;
    this.sentCount = 0;
    for (const entry of this.entries.values()) entry.sent = false;
  }
}

/** A write's size as the queue counts it (its JSON text). */
export function frameBytes(frame: QueuedWrite): number {
  return utf8ByteLength(JSON.stringify(frame));
}

function keyOf(origin: string, seq: number): string {
  return `${seq}\u0000${origin}`;
}
