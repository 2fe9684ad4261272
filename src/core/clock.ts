/**
 * Time enters the code only through these two interfaces (docs/design.md §Layout).
 * Production passes the one edge implementation, `src/net/system-time.ts`; tests
 * and the simulator pass a ManualClock and timers they advance.
 */
export interface Clock {
  /** Milliseconds since an arbitrary origin; only differences are meaningful. */
  now(): number;
}

/** Timers; each returns the function that cancels it (calling it twice is harmless). */
export interface Timers {
  /** Runs `run` once, `ms` from now. */
  after(ms: number, run: () => void): () => void;
  /** Runs `run` every `ms` until cancelled. */
  every(ms: number, run: () => void): () => void;
}
