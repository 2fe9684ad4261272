/**
 * Fan-out frames for one set of connections, gathered while the event loop
 * works through what arrived and sealed once as one broadcast when it is done
 * (setImmediate), or sooner past `maxBytes`: a burst to N subscribers costs one
 * seal and one publish per batch, not per message (frame-batch.ts is the same
 * rule for one connection; the texts are joined by "\n" the same way).
 *
 * One set is pending at a time: frames for another set, or for one member
 * alone, send what is pending first, so every connection keeps its order.
 */
import { DEFAULT_BATCH_BYTES, nextTurn, type Defer } from "./frame-batch.ts";

const encoder = new TextEncoder();

/** Seals `payload` once and hands it to the connections `to` that are still there. */
export type BroadcastSend = (payload: Uint8Array, to: readonly string[]) => void;

export class BroadcastBatch {
  private to: readonly string[] = [];
  private members = new Set<string>();
  private sealer: unknown = null;
  private send: BroadcastSend | null = null;
  private texts: string[] = [];
  private size = 0;
  private scheduled: (() => void) | null = null;

  constructor(
    private readonly maxBytes = DEFAULT_BATCH_BYTES,
    private readonly defer: Defer = nextTurn,
  ) {}

  /** Whether frames for `to` under `sealer` would join what is pending (same ids, same order, same key). */
  pendingFor(to: readonly string[], sealer: unknown): boolean {
    if (this.texts.length === 0 || sealer !== this.sealer || to.length !== this.to.length) return false;
    for (let i = 0; i < to.length; i++) if (to[i] !== this.to[i]) return false;
    return true;
  }

  /** Adds one frame for `to`; `sealer` (the broadcast key) and `send` are the ones of a new pending set. */
  add(text: string, to: readonly string[], sealer: unknown, send: BroadcastSend): void {
    if (!this.pendingFor(to, sealer)) {
      this.flush();
      this.to = [...to];
      this.members = new Set(to);
      this.sealer = sealer;
      this.send = send;
    }
    this.texts.push(text);
    this.size += text.length + 1;
    if (this.size >= this.maxBytes) this.flush();
    else this.scheduled ??= this.defer(() => this.flush());
  }

  /** Sends what is pending when `id` is one of its connections (something else is about to go to it). */
  flushFor(id: string): void {
    if (this.members.has(id)) this.flush();
  }

  flush(): void {
    this.scheduled?.();
    this.scheduled = null;
    if (this.texts.length === 0) return;
    const payload = encoder.encode(this.texts.length === 1 ? this.texts[0]! : this.texts.join("\n"));
    const send = this.send!;
    this.texts = [];
    this.size = 0;
    this.members = new Set();
    this.sealer = null;
    this.send = null;
    send(payload, this.to);
  }

  /** Drops what is pending (the server stopped serving). */
  clear(): void {
    this.scheduled?.();
    this.scheduled = null;
    this.texts = [];
    this.size = 0;
    this.members = new Set();
    this.sealer = null;
    this.send = null;
  }
}
