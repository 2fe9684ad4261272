/**
 * A Clock that moves only when told: tests and the simulator advance it, so
 * timeouts are exact and take no real time.
 */
import type { Clock, Timers } from "../../src/core/clock.ts";

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

/** Timers on a ManualClock: `advance` moves the clock and runs every timer that falls due, in order. */
export class ManualTimers implements Timers {
  readonly clock: ManualClock;
  #next = 1;
  readonly #pending = new Map<number, { at: number; run: () => void; everyMs: number | null }>();

  constructor(clock = new ManualClock()) {
    this.clock = clock;
  }

  get now(): number {
    return this.clock.now();
  }

  /** Timers still waiting. */
  get count(): number {
    return this.#pending.size;
  }

  after(ms: number, run: () => void): () => void {
    return this.#add(ms, run, null);
  }

  every(ms: number, run: () => void): () => void {
    return this.#add(ms, run, ms);
  }

  advance(ms: number): void {
    const end = this.clock.now() + ms;
    for (;;) {
      const due = [...this.#pending.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      const [id, timer] = due;
      this.clock.advanceTo(timer.at);
      if (timer.everyMs === null) this.#pending.delete(id);
      else timer.at += Math.max(1, timer.everyMs);
      timer.run();
    }
    this.clock.advanceTo(end);
  }

  #add(ms: number, run: () => void, everyMs: number | null): () => void {
    const id = this.#next++;
    this.#pending.set(id, { at: this.clock.now() + ms, run, everyMs });
    return () => this.#pending.delete(id);
  }
}
