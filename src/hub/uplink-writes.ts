/**
 * The write path of a node's uplink (hub-uplink.ts): pub/set frames wait in a
 * bounded queue until the hub acks them, at most a window of them on the wire;
 * when the queue is full new writes wait in line (backpressure) and are refused
 * only after `publishWaitMs` or when the line is full too; acknowledged ones are
 * kept a while longer (acked-writes.ts) and resent first to the next server.
 * Pure: the uplink says when a server is attached and sends what this gives it.
 */
import type { AppError } from "../core/errors.ts";
import { refOf, type ErrorRef, type ToHubFrame, type Version } from "./frames.ts";
import { PublishTimedOut, QueueFull } from "./hub-errors.ts";
import { AckedWrites } from "./acked-writes.ts";
import { ZERO_VERSION } from "./retained-state.ts";
import { OutboundQueue, encodeWrite, type QueueEntry, type QueuedWrite } from "./outbound-queue.ts";
import { WaitingLine } from "./waiting-line.ts";
import { DEFAULT_MAX_WAITING_BYTES, DEFAULT_MAX_WAITING_FRAMES, DEFAULT_PUBLISH_WAIT_MS, type HubUplinkOptions } from "./uplink-options.ts";

export type WritesLink<A> = {
  /** Whether a server is attached and takes writes now. */
  canSend(): boolean;
  /** Whether a server is attached at all (for the refusals' wording). */
  attached(): boolean;
  send(frame: ToHubFrame, text: string): void;
  refuse(app: A, error: AppError, ref: ErrorRef | undefined): AppError;
};

export class UplinkWrites<A> {
  private readonly queue: OutboundQueue<A>;
  private readonly acked: AckedWrites<A>;
  private readonly waiting: WaitingLine<A>;
  private readonly publishWaitMs: number;
  private pumping = false;
  private serverAliveAt = -Infinity;

  constructor(
    options: HubUplinkOptions,
    private readonly link: WritesLink<A>,
  ) {
    this.queue = new OutboundQueue(options.maxQueuedFrames, options.maxQueuedBytes, options.sendWindow);
    this.acked = new AckedWrites(options.maxAckedFrames, options.maxAckedBytes);
    this.waiting = new WaitingLine(options.maxWaitingFrames ?? DEFAULT_MAX_WAITING_FRAMES, options.maxWaitingBytes ?? DEFAULT_MAX_WAITING_BYTES);
    this.publishWaitMs = options.publishWaitMs ?? DEFAULT_PUBLISH_WAIT_MS;
  }

  get queuedFrames(): number {
    return this.queue.size;
  }

  get queuedBytes(): number {
    return this.queue.bytes;
  }

  get waitingFrames(): number {
    return this.waiting.size;
  }

  get ackedKept(): number {
    return this.acked.size;
  }

  get ackedDroppedEarly(): number {
    return this.acked.droppedEarly;
  }

  has(origin: string, seq: number): boolean {
    return this.queue.has(origin, seq);
  }

  /** Acknowledged writes age by the attached server's last proof of life, not by the clock alone (hub-uplink.ts). */
  trimAcked(now: number, maxAgeMs: number): number {
    return this.acked.trim(now, maxAgeMs, this.serverAliveAt);
  }

  /** The attached server was alive at `at` (this node's clock: the `ping` its pong answers). */
  serverAlive(at: number): void {
    this.serverAliveAt = Math.max(this.serverAliveAt, at);
  }

  /** A pub/set from an app: queued (and sent if the window allows), waiting for room, or refused (QUEUE_FULL). */
  offer(app: A, frame: QueuedWrite, now: number): AppError | null {
    if (this.queue.has(frame.origin, frame.seq)) return null; // the app resent it; it is already on its way
    // Only a node resending names the version another hub acknowledged.
    if (frame.type === "set" && frame.acked !== undefined) frame = { type: "set", key: frame.key, value: frame.value, origin: frame.origin, seq: frame.seq };
    // Behind others already waiting, even if room just opened: writes keep their order.
    const write = encodeWrite(frame);
    if (this.waiting.size === 0 && this.queue.offer(write, app)) {
      this.pump();
      return null;
    }
    if (this.waiting.isFullFor(write.bytes)) return this.link.refuse(app, new QueueFull(this.queue.size, this.link.canSend()), refOf(frame));
    this.waiting.push({ write, app, since: now });
    return null;
  }

  /** Refuses writes that waited `publishWaitMs` or longer for room (PUBLISH_TIMEOUT). Returns how many. */
  expireWaiting(now: number): number {
    let expired = 0;
    for (let first = this.waiting.first(); first && now - first.since >= this.publishWaitMs; first = this.waiting.first()) {
      const { write, app } = this.waiting.shift();
      this.link.refuse(app, new PublishTimedOut(this.publishWaitMs, this.queue.size, this.link.canSend()), refOf(write.frame));
      expired++;
    }
    return expired;
  }

  /**
   * The hub acknowledged (origin, seq): the entry leaves the queue and is kept for a resend. Null when
   * it was not queued. The caller tells the app, then calls `makeRoom` (so acks reach apps in order).
   */
  acknowledged(origin: string, seq: number, version: Version | undefined): QueueEntry<A> | null {
    const entry = this.queue.take(origin, seq) ?? null;
    if (entry) this.keepAcked(entry, version);
    return entry;
  }

  /** The hub refused (origin, seq) for good: the entry leaves the queue (then `makeRoom`). Null when it was not queued. */
  refused(origin: string, seq: number): QueueEntry<A> | null {
    return this.queue.take(origin, seq) ?? null;
  }

  /** A server was attached: what earlier servers acknowledged goes first (this one or the subscribers drop what they had), then the rest. */
  resendAll(): void {
    this.serverAliveAt = -Infinity;
    this.queue.rewind(this.acked.takeAll());
    this.pump();
  }

  /**
   * Sends queued writes in order while the window has room and the server takes writes. Not
   * re-entered: a hub in this very process answers a write synchronously, and its ack would
   * otherwise send the next write before the hub finished taking this one, so the hub's
   * replay ring held them newest first (and a node resuming from it dropped all but the last).
   */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.link.canSend()) {
        const entry = this.queue.nextToSend();
        if (!entry) return;
        this.link.send(entry.frame, entry.text);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Keeps an acknowledged write for a resend; a set names the version the hub gave it (resend-order.ts). A set
   * acknowledged without one (a repeat the hub took long before, or a resend that changed nothing) names the
   * lowest version: resent elsewhere, it fills a key the next server lacks and never overwrites a write there.
   * Sent as a new write instead, it was ordered after the node's own later writes to that key, and an old value
   * came back over a newer one (sim seed 112160, HL1).
   */
  private keepAcked(entry: QueueEntry<A>, version: Version | undefined): void {
    if (entry.frame.type === "set" && (version !== undefined || entry.frame.acked === undefined)) {
      this.acked.add({ ...encodeWrite({ ...entry.frame, acked: version ?? ZERO_VERSION }), from: entry.from });
    } else {
      this.acked.add(entry);
    }
  }

  /** An entry left the queue: let waiting writes in, in order, and send what the window allows. */
  makeRoom(): void {
    for (let next = this.waiting.first(); next && this.queue.offer(next.write, next.app); next = this.waiting.first()) this.waiting.shift();
    this.pump();
  }
}
