/**
 * A Clock that moves only when told: tests and the simulator advance it, so
 * timeouts are exact and take no real time.
 */
import type { Clock } from "../../src/core/clock.ts";

export class ManualClock implements Clock {
  #now: number;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms` (never backward: monotonic clocks don't). */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance needs a non-negative duration, got ${ms}`);
    this.#now += ms;
    return this.#now;
  }

  /** Moves time forward to `t`; earlier times are an error in the caller. */
  advanceTo(t: number): number {
    return this.advance(t - this.#now);
  }
}

/** A machine's own clock: the shared time seen from a different origin, as on real machines. */
export class OffsetClock implements Clock {
  constructor(
    private readonly base: Clock,
    private readonly offsetMs: number,
  ) {}

  now(): number {
    return this.base.now() + this.offsetMs;
  }
}
