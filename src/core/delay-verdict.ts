/**
 * What the Delays panel says about one machine (issue 18 finding 8): "not
 * heard for N s" once its heartbeats stop, by the one freshness rule
 * (docs/design.md §Heartbeats and freshness); "slow" only when the round
 * trip stays high, never for one spike.
 * Pure: the caller passes the live peer entry and the sampled history.
 */
import { heardWithin } from "./heard.ts";

/** A round trip above this (ms) is slow: a studio LAN answers in well under one. */
export const SLOW_RTT_MS = 10;
/** Samples (one a second, core/status-history.ts) the slow rule looks at. */
export const SLOW_WINDOW_SAMPLES = 10;
/** At least this many heard samples in the window before a machine may be called slow. */
export const SLOW_MIN_SAMPLES = 3;

export type DelayVerdict =
  /** Not heard within the failover timeout; `silentS` whole seconds since it was (null: not known, e.g. gone from the status). */
  | { kind: "not-heard"; silentS: number | null }
  /** Heard, and the median of the last SLOW_WINDOW_SAMPLES samples is above SLOW_RTT_MS: high for more than half the window. */
  | { kind: "slow"; nowMs: number | null; typicalMs: number }
  /** Heard, and its own state says it is isolated (it reaches no server and serves no one): red like a dead one. */
  | { kind: "isolated"; nowMs: number | null }
  | { kind: "ok"; nowMs: number | null };

export type DelayInput = {
  /** The machine's entry in this machine's status now; null when the status no longer lists it. */
  now: { delayMs: number | null; lastHeardMsAgo: number; state?: string } | null;
  /** Oldest first, one a second; null where it was not heard. */
  samples: readonly (number | null)[];
  heardWithinMs: number;
  sampleMs: number;
};

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function delayVerdict(input: DelayInput): DelayVerdict {
  const { now } = input;
  if (now === null || !heardWithin(now.lastHeardMsAgo, input.heardWithinMs)) {
    if (now !== null) return { kind: "not-heard", silentS: Math.floor(now.lastHeardMsAgo / 1000) };
    // Gone from the status: the unheard samples at the end of the history tell how long, at least.
    let silent = 0;
    for (let i = input.samples.length - 1; i >= 0 && input.samples[i] === null; i--) silent++;
    return { kind: "not-heard", silentS: silent === 0 ? null : Math.floor((silent * input.sampleMs) / 1000) };
  }
  if (now.state === "isolated") return { kind: "isolated", nowMs: now.delayMs };
  const heard = input.samples.slice(-SLOW_WINDOW_SAMPLES).filter((x): x is number => x !== null);
  if (heard.length >= SLOW_MIN_SAMPLES) {
    const typical = median(heard);
    if (typical > SLOW_RTT_MS) return { kind: "slow", nowMs: now.delayMs, typicalMs: typical };
  }
  return { kind: "ok", nowMs: now.delayMs };
}
