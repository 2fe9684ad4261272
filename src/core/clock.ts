/**
 * Time enters the pure core only through a Clock. Production passes SystemClock
 * (from the edge); tests and the simulator pass a ManualClock they advance.
 */
export interface Clock {
  /** Milliseconds since an arbitrary origin; only differences are meaningful. */
  now(): number;
}
