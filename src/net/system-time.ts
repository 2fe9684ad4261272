/**
 * The one place that reads the system's clocks and starts real timers
 * (docs/design.md §Layout): everything else takes a Clock and Timers.
 */
import type { Clock, Timers } from "../core/clock.ts";

/** Monotonic time for timeouts and delays: never jumps when the wall clock is set. */
export const systemClock: Clock = { now: () => performance.now() };

/** Wall-clock time (ms since 1970), only for what people read or what outlives the process: licenses, history, logs. */
export const wallClock: Clock = { now: () => Date.now() };

export const systemTimers: Timers = {
  after(ms, run) {
    const timer = setTimeout(run, ms);
    return () => clearTimeout(timer);
  },
  every(ms, run) {
    const timer = setInterval(run, ms);
    return () => clearInterval(timer);
  },
};

/** Resolves after `ms` on `timers`: a pause in a loop that has nothing to wait for but time. */
export function pause(ms: number, timers: Timers = systemTimers): Promise<void> {
  return new Promise((resolve) => timers.after(ms, resolve));
}
