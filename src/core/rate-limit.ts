/**
 * Token buckets, per source and in total, for work a stranger can ask for
 * (handshake signatures, password checks). Pure: time is passed in as
 * milliseconds from a Clock, so tests step it.
 */

export type BucketLimits = {
  /** Tokens available at once: the burst allowed after a quiet spell. */
  burst: number;
  /** Tokens added back per second. */
  perSecond: number;
};

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limits: BucketLimits,
    now: number,
  ) {
    this.tokens = limits.burst;
    this.last = now;
  }

  /** True when a token was available (and is now spent). */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether `take` would succeed, without spending. */
  available(now: number): boolean {
    this.refill(now);
    return this.tokens >= 1;
  }

  /** True once the bucket is full again: a source that is forgotten then loses nothing. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.limits.burst;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.limits.burst, this.tokens + (elapsed / 1000) * this.limits.perSecond);
  }
}

export type SourceLimits = {
  perSource: BucketLimits;
  /** Null: no shared bucket (a flood from many sources must not refuse a good one, e.g. the right password). */
  total: BucketLimits | null;
  /** Sources remembered at most; full buckets are forgotten first, so a spray of addresses cannot grow memory. */
  maxSources: number;
};

/** Why `take` refused: the source used its own share, or everyone together used the total. */
export type RateVerdict = "ok" | "source" | "total";

/** One bucket per source (an IP address) plus one for everyone: a flood from one address cannot starve the others. */
export class SourceRateLimit {
  private readonly total: TokenBucket | null;
  private readonly sources = new Map<string, TokenBucket>();

  constructor(
    private readonly limits: SourceLimits,
    now: number,
  ) {
    this.total = limits.total ? new TokenBucket(limits.total, now) : null;
  }

  take(source: string, now: number): RateVerdict {
    let bucket = this.sources.get(source);
    if (!bucket) {
      this.makeRoom(now);
      bucket = new TokenBucket(this.limits.perSource, now);
      this.sources.set(source, bucket);
    }
    // Check both before spending either: a source refused by the total keeps its own tokens.
    if (!bucket.available(now)) return "source";
    if (this.total && !this.total.take(now)) return "total";
    bucket.take(now);
    return "ok";
  }

  /** What `take` would answer, without spending. */
  peek(source: string, now: number): RateVerdict {
    if (this.sources.get(source)?.available(now) === false) return "source";
    return !this.total || this.total.available(now) ? "ok" : "total";
  }

  get trackedSources(): number {
    return this.sources.size;
  }

  private makeRoom(now: number): void {
    if (this.sources.size < this.limits.maxSources) return;
    for (const [source, bucket] of this.sources) {
      if (bucket.full(now)) this.sources.delete(source);
    }
    // Still full of busy sources: forget the oldest (it gets a fresh bucket; the total still bounds the work).
    while (this.sources.size >= this.limits.maxSources) this.sources.delete(this.sources.keys().next().value!);
  }
}
