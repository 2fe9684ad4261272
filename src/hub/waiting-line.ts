/**
 * Writes that found the node's outbound queue full (HubUplink): they wait here,
 * in arrival order, for room (backpressure on the apps instead of a refusal).
 * Bounded by frames and bytes; the uplink refuses what waited too long.
 */
import type { EncodedWrite } from "./outbound-queue.ts";

export type WaitingWrite<A> = { readonly write: EncodedWrite; readonly app: A; readonly since: number };

export class WaitingLine<A> {
  private entries: WaitingWrite<A>[] = [];
  private head = 0;
  private byteCount = 0;

  constructor(
    readonly maxFrames: number,
    readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Whether one more write of `bytes` would break a bound. */
  isFullFor(bytes: number): boolean {
    return this.size >= this.maxFrames || this.byteCount + bytes > this.maxBytes;
  }

  push(write: WaitingWrite<A>): void {
    this.entries.push(write);
    this.byteCount += write.write.bytes;
  }

  /** The write waiting longest, if any. */
  first(): WaitingWrite<A> | undefined {
    return this.size > 0 ? this.entries[this.head] : undefined;
  }

  shift(): WaitingWrite<A> {
    const entry = this.entries[this.head]!;
    this.entries[this.head++] = undefined as never;
    this.byteCount -= entry.write.bytes;
    if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return entry;
  }
}
