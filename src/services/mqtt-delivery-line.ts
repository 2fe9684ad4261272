/**
 * Messages from the hub on their way into the front door's broker (mqtt-front-door.ts), in order.
 *
 * aedes takes every `publish` at once and queues what its emitter cannot deliver yet without a
 * bound: with MQTT subscribers slower than the hub, a client node held 90,000 undelivered
 * messages (≈ 37 MiB of live heap, most of its 200 MiB peak) in the hub bench. So at most
 * `maxInFlight` are handed to the broker at a time (each is done once aedes has written it to
 * every subscriber), and the rest wait here, bounded by count and bytes (topic + payload).
 *
 * Past a bound a message is dropped (these are QoS 0 deliveries: at most once) and counted; the
 * next message kept is preceded on the gap topic by how many were missed, as a gap the hub
 * reports is. A retained value is not lost that way (the broker would answer new subscribers
 * with a stale value): past the bound it waits aside, only the newest per key, and goes in once
 * the line has room again (the hub bounds how many keys there are).
 */
export type Delivery = { readonly topic: string; readonly payload: Uint8Array; readonly retain: boolean };

export type DeliveryLineLimits = {
  /** Messages handed to the broker and not yet delivered, at most. */
  readonly maxInFlight: number;
  /** Messages waiting, and their bytes (topic + payload), at most. */
  readonly maxWaiting: number;
  readonly maxWaitingBytes: number;
};

/**
 * Messages aedes' emitter runs at once (its default is 100); it queues the rest without a bound.
 * Each is done on the next turn of the event loop (the front door does not wait for a socket to
 * drain), so this is also about how many go into the broker per turn.
 */
export const MQTT_BROKER_CONCURRENCY = 1_000;

export const DEFAULT_DELIVERY_LINE_LIMITS: DeliveryLineLimits = {
  // Below the emitter's concurrency, so its queue stays empty; room is left for the clients' own PUBLISHes.
  maxInFlight: 500,
  maxWaiting: 20_000,
  maxWaitingBytes: 4 * 1024 * 1024,
};

/** Hands `delivery` to the broker; calls `done` once it was delivered (or failed). */
export type PublishToBroker = (delivery: Delivery, done: () => void) => void;

/** The notice published on the gap topic after drops: what the hub's gap frame carries. */
export type MissedNotice = { readonly missed: number; readonly message: string };

export class DeliveryLine {
  private waiting: Delivery[] = [];
  private head = 0;
  private bytes = 0;
  private inFlight = 0;
  private droppedSinceNotice = 0;
  private droppedTotal = 0;
  /** True while `feed` runs: a broker that calls back at once (no subscribers) must not recurse once per message. */
  private feeding = false;
  /** Retained values that found the line full, newest per key, in the order they came. */
  private readonly retainedAside = new Map<string, Delivery>();

  constructor(
    private readonly publish: PublishToBroker,
    private readonly notice: (missed: MissedNotice) => Delivery,
    private readonly limits: DeliveryLineLimits = DEFAULT_DELIVERY_LINE_LIMITS,
  ) {}

  /** Messages waiting for the broker (not counting those handed to it). */
  get size(): number {
    return this.waiting.length - this.head;
  }

  /** Retained values waiting aside for room (one per key). */
  get aside(): number {
    return this.retainedAside.size;
  }

  get waitingBytes(): number {
    return this.bytes;
  }

  get delivering(): number {
    return this.inFlight;
  }

  /** Messages dropped past a bound since this line began. */
  get dropped(): number {
    return this.droppedTotal;
  }

  /** Queues `delivery` (or drops it past a bound; a retained value waits aside instead) and feeds the broker. */
  push(delivery: Delivery): void {
    if (delivery.retain && (this.full(delivery) || this.retainedAside.size > 0)) {
      // Behind any value already aside for this key: the newest wins, as in the broker.
      this.retainedAside.delete(delivery.topic);
      this.retainedAside.set(delivery.topic, delivery);
      this.feed();
      return;
    }
    if (this.full(delivery)) {
      this.droppedSinceNotice++;
      this.droppedTotal++;
      return;
    }
    // The first message kept after drops is preceded by the count of those missed, in order.
    if (this.droppedSinceNotice > 0) {
      const missed = this.droppedSinceNotice;
      this.droppedSinceNotice = 0;
      this.add(this.notice({ missed, message: `${missed} messages were dropped on this node: its MQTT subscribers did not keep up with the Data Hub.` }));
    }
    this.add(delivery);
    this.feed();
  }

  private full(delivery: Delivery): boolean {
    return this.size >= this.limits.maxWaiting || this.bytes + sizeOf(delivery) > this.limits.maxWaitingBytes;
  }

  private add(delivery: Delivery): void {
    this.waiting.push(delivery);
    this.bytes += sizeOf(delivery);
  }

  private feed(): void {
    if (this.feeding) return;
    this.feeding = true;
    try {
      this.handOver();
    } finally {
      this.feeding = false;
    }
  }

  private handOver(): void {
    for (;;) {
      this.takeAside();
      if (this.inFlight >= this.limits.maxInFlight || this.size === 0) break;
      const next = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as never;
      this.bytes -= sizeOf(next);
      this.inFlight++;
      let finished = false;
      this.publish(next, () => {
        if (finished) return;
        finished = true;
        this.inFlight--;
        this.feed();
      });
    }
    if (this.head >= 1024 && this.head * 2 >= this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }

  /** Retained values set aside go into the line, oldest first, while it has room. */
  private takeAside(): void {
    for (const [topic, value] of this.retainedAside) {
      // An empty line takes one whatever its size, so a value larger than the byte bound still goes.
      if (this.size > 0 && this.full(value)) return;
      this.retainedAside.delete(topic);
      this.add(value);
    }
  }
}

function sizeOf(delivery: Delivery): number {
  return delivery.topic.length + delivery.payload.length;
}
