import { expect, test } from "bun:test";
import { delayVerdict, SLOW_RTT_MS, type DelayInput, type DelayVerdict } from "../../../src/core/delay-verdict.ts";

const T = 1000;
const quiet = (n: number, ms = 0.7) => new Array<number | null>(n).fill(ms);
const input = (over: Partial<DelayInput>): DelayInput => ({ now: { delayMs: 0.7, lastHeardMsAgo: 40 }, samples: quiet(60), heardWithinMs: T, sampleMs: 1000, ...over });

const cases: [string, Partial<DelayInput>, DelayVerdict][] = [
  ["heard, quiet", {}, { kind: "ok", nowMs: 0.7 }],
  // Finding 8: a main dead for 35 s kept "Round trip now 0.7 ms".
  ["dead for 35 s: its last round trip is not shown", { now: { delayMs: 0.7, lastHeardMsAgo: 35_400 } }, { kind: "not-heard", silentS: 35 }],
  ["silent exactly the timeout is not heard (core/heard.ts)", { now: { delayMs: 0.7, lastHeardMsAgo: T } }, { kind: "not-heard", silentS: 1 }],
  ["silent just under the timeout is still heard", { now: { delayMs: 0.7, lastHeardMsAgo: T - 1 } }, { kind: "ok", nowMs: 0.7 }],
  ["gone from the status: the unheard samples at the end say how long", { now: null, samples: [...quiet(50), ...new Array(12).fill(null)] }, { kind: "not-heard", silentS: 12 }],
  ["gone from the status with no unheard sample yet", { now: null }, { kind: "not-heard", silentS: null }],
  // Finding 8: one 11–48 ms spike turned a row red "slow" for a minute.
  ["one 48 ms spike on an idle network is not slow", { samples: [...quiet(55), 48, ...quiet(4)] }, { kind: "ok", nowMs: 0.7 }],
  ["four spikes in the last 10 s are not slow", { samples: [...quiet(50), 11, 0.7, 30, 0.7, 48, 0.7, 20, 0.7, 0.7, 0.7] }, { kind: "ok", nowMs: 0.7 }],
  ["high for most of the last 10 s is slow, with the typical round trip", { now: { delayMs: 25, lastHeardMsAgo: 30 }, samples: [...quiet(50), 0.7, 0.7, 0.7, 0.7, 20, 22, 25, 30, 25, 24] }, { kind: "slow", nowMs: 25, typicalMs: 21 }],
  ["high a minute ago but not in the last 10 s is not slow", { samples: [...quiet(10, 40), ...quiet(50)] }, { kind: "ok", nowMs: 0.7 }],
  ["exactly the threshold is not slow", { samples: quiet(60, SLOW_RTT_MS) }, { kind: "ok", nowMs: 0.7 }],
  ["too few heard samples to call it slow", { samples: [...new Array(58).fill(null), 30, 30] }, { kind: "ok", nowMs: 0.7 }],
  ["slow over the heard samples only, gaps ignored", { samples: [...quiet(50), null, 30, null, 30, null, 30, null, 30, null, 0.7] }, { kind: "slow", nowMs: 0.7, typicalMs: 30 }],
  // Finding 10: an isolated machine is red like a dead one, though heard.
  ["heard but isolated is isolated, with its round trip", { now: { delayMs: 0.7, lastHeardMsAgo: 40, state: "isolated" } }, { kind: "isolated", nowMs: 0.7 }],
  ["isolated and silent is not heard", { now: { delayMs: 0.7, lastHeardMsAgo: 35_400, state: "isolated" } }, { kind: "not-heard", silentS: 35 }],
  ["a machine with no round trip yet but heard is ok", { now: { delayMs: null, lastHeardMsAgo: 10 }, samples: [] }, { kind: "ok", nowMs: null }],
];

for (const [name, over, expected] of cases) {
  test(name, () => expect(delayVerdict(input(over))).toEqual(expected));
}
