import { describe, expect, test } from "bun:test";
import {
  broke,
  clampTimings,
  DEFAULT_FAILOVER_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_TIMINGS,
  excusePause,
  FAST_TIMINGS,
  heard,
  MIN_FAILOVER_TIMEOUT_MS,
  MIN_HEARTBEAT_MS,
  msSinceHeard,
  stallMs,
  verdict,
  watch,
  type Liveness,
  type Timings,
  type Verdict,
} from "../../../src/core/failure-detector.ts";
import { ManualClock } from "../../support/clock.ts";

describe("timings", () => {
  test("named defaults and the fast preset", () => {
    expect(DEFAULT_HEARTBEAT_MS).toBe(100);
    expect(DEFAULT_FAILOVER_TIMEOUT_MS).toBe(1000);
    expect(DEFAULT_TIMINGS).toEqual({ heartbeatMs: 100, failoverTimeoutMs: 1000 });
    expect(FAST_TIMINGS).toEqual({ heartbeatMs: 50, failoverTimeoutMs: 250 });
  });

  const table: [string, Partial<Timings>, Timings][] = [
    ["nothing given: defaults", {}, { heartbeatMs: 100, failoverTimeoutMs: 1000 }],
    ["the fast preset is kept", FAST_TIMINGS, FAST_TIMINGS],
    ["heartbeat below the minimum", { heartbeatMs: 1 }, { heartbeatMs: MIN_HEARTBEAT_MS, failoverTimeoutMs: 1000 }],
    ["timeout below the minimum", { heartbeatMs: 20, failoverTimeoutMs: 5 }, { heartbeatMs: 20, failoverTimeoutMs: MIN_FAILOVER_TIMEOUT_MS }],
    ["timeout shorter than three heartbeats", { heartbeatMs: 500, failoverTimeoutMs: 1000 }, { heartbeatMs: 500, failoverTimeoutMs: 1500 }],
    ["not a number: default", { heartbeatMs: Number.NaN, failoverTimeoutMs: Infinity }, DEFAULT_TIMINGS],
    ["fractions are rounded", { heartbeatMs: 99.6, failoverTimeoutMs: 1000.4 }, { heartbeatMs: 100, failoverTimeoutMs: 1000 }],
  ];
  for (const [name, input, expected] of table) {
    test(`clampTimings: ${name}`, () => expect(clampTimings(input)).toEqual(expected));
  }
});

describe("verdict (heartbeat 100 ms, timeout 1000 ms)", () => {
  const t = DEFAULT_TIMINGS;
  const heardAt500 = heard(watch(0), 500);
  const table: [string, Liveness, number, Verdict][] = [
    ["never heard, just started", watch(0), 0, "alive"],
    ["never heard, one heartbeat late", watch(0), 199, "alive"],
    ["never heard, two heartbeats missed", watch(0), 200, "suspect"],
    ["never heard, just under the timeout", watch(0), 999, "suspect"],
    ["never heard for a timeout", watch(0), 1000, "down"],
    ["heard 999 ms ago", heardAt500, 1499, "suspect"],
    ["heard 1000 ms ago", heardAt500, 1500, "down"],
    ["socket broke after the last heartbeat", broke(heardAt500, 510), 510, "down"],
    ["heard again after the socket broke", heard(broke(heardAt500, 510), 520), 520, "alive"],
  ];
  for (const [name, l, now, expected] of table) {
    test(`${name}: ${expected}`, () => expect(verdict(l, now, t)).toBe(expected));
  }

  test("a blip shorter than the timeout never reads as down", () => {
    const clock = new ManualClock(0);
    let l = watch(clock.now());
    // Heartbeats every 100 ms, then 700 ms of nothing (a blip), then heartbeats again.
    for (let ms = 0; ms <= 3000; ms++) {
      const inBlip = ms > 1000 && ms < 1800;
      if (ms % 100 === 0 && !inBlip) l = heard(l, clock.now());
      expect(verdict(l, clock.now(), t)).not.toBe("down");
      clock.advance(1);
    }
  });

  test("msSinceHeard: null until heard, and null again once the socket broke", () => {
    expect(msSinceHeard(watch(0), 50)).toBeNull();
    expect(msSinceHeard(heardAt500, 650)).toBe(150);
    expect(msSinceHeard(broke(heardAt500, 600), 650)).toBeNull();
  });
});

describe("stalls of this machine", () => {
  test("a gap longer than half a heartbeat between steps is a stall", () => {
    expect(stallMs(1000, 1020, DEFAULT_TIMINGS)).toBe(0);
    expect(stallMs(1000, 1050, DEFAULT_TIMINGS)).toBe(0);
    expect(stallMs(1000, 1051, DEFAULT_TIMINGS)).toBe(51);
    expect(stallMs(1000, 9000, DEFAULT_TIMINGS)).toBe(8000);
  });

  test("time stalled is not counted as the peer's silence", () => {
    const l = excusePause(heard(watch(0), 500), 4000);
    expect(verdict(l, 4600, DEFAULT_TIMINGS)).toBe("alive");
    expect(verdict(l, 5500, DEFAULT_TIMINGS)).toBe("down");
    expect(excusePause(watch(0), 300).since).toBe(300);
  });
});
