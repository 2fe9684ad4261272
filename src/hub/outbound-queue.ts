/**
 * A client node's queue of pub/set frames not yet acknowledged by the active
 * hub. Frames stay until the hub acks their (origin, seq), so whatever was
 * in flight when the server died is resent, in the original order, to the
 * next one (which de-duplicates). Bounded by frames and bytes: during a long
 * switch the queue fills and new publishes fail at once rather than piling up.
 */
import { utf8ByteLength, type ToHubFrameOf } from "./frames.ts";

export const DEFAULT_MAX_QUEUED_FRAMES = 10_000;
export const DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024;

export type QueuedWrite = ToHubFrameOf<"pub"> | ToHubFrameOf<"set">;
export type QueueEntry<A> = { readonly frame: QueuedWrite; readonly bytes: number; readonly from: A };

export class OutboundQueue<A> {
  // Map order is publish order: resends walk it from the start.
  private readonly entries = new Map<string, QueueEntry<A>>();
  private byteCount = 0;
  readonly maxFrames: number;
  readonly maxBytes: number;

  constructor(maxFrames = DEFAULT_MAX_QUEUED_FRAMES, maxBytes = DEFAULT_MAX_QUEUED_BYTES) {
    this.maxFrames = Math.max(1, maxFrames);
    this.maxBytes = Math.max(1, maxBytes);
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.byteCount;
  }

  has(origin: string, seq: number): boolean {
    return this.entries.has(keyOf(origin, seq));
  }

  /** Adds `frame` unless it would break a bound; returns false then (nothing added). */
  offer(frame: QueuedWrite, from: A): boolean {
    const bytes = utf8ByteLength(JSON.stringify(frame));
    if (this.entries.size >= this.maxFrames || this.byteCount + bytes > this.maxBytes) return false;
    this.entries.set(keyOf(frame.origin, frame.seq), { frame, bytes, from });
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
    return entry;
  }

  /** A snapshot in publish order (safe to walk while acks remove entries). */
  inOrder(): QueueEntry<A>[] {
    return [...this.entries.values()];
  }
}

function keyOf(origin: string, seq: number): string {
  return `${seq}\u0000${origin}`;
}
