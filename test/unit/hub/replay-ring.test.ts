import { describe, expect, test } from "bun:test";
import { DEFAULT_REPLAY_LIMITS, ReplayRing, type MsgFrame } from "../../../src/hub/replay-ring.ts";

const msg = (topic: string, seq: number, data: unknown = seq): MsgFrame => ({ type: "msg", topic, data, from: "o", seq });
const seqs = (frames: MsgFrame[]) => frames.map((f) => f.seq);

describe("the replay ring", () => {
  test("defaults: 20,000 messages, 16 MiB, 60 s", () => {
    expect(DEFAULT_REPLAY_LIMITS).toEqual({ maxMessages: 20_000, maxBytes: 16 * 1024 * 1024, maxAgeMs: 60_000 });
    expect(new ReplayRing().limits).toEqual(DEFAULT_REPLAY_LIMITS);
  });

  test("keeps messages in the order appended and returns those matching any filter, each once", () => {
    const ring = new ReplayRing();
    ring.append(msg("a/x", 1));
    ring.append(msg("b", 2));
    ring.append(msg("a/y", 3));
    ring.append(msg("$sys/a", 4));
    expect(seqs(ring.matching(["a/#"]))).toEqual([1, 3]);
    expect(seqs(ring.matching(["a/#", "#", "a/x"]))).toEqual([1, 2, 3]); // overlapping filters: once each, in order
    expect(seqs(ring.matching(["$sys/#"]))).toEqual([4]);
    expect(ring.matching([])).toEqual([]);
  });

  test("bounded by messages: the oldest go first and are counted as dropped", () => {
    const ring = new ReplayRing({ maxMessages: 10 });
    for (let seq = 1; seq <= 5000; seq++) ring.append(msg("t", seq));
    expect(ring.size).toBe(10);
    expect(ring.dropped).toBe(4990);
    expect(seqs(ring.matching(["t"]))).toEqual([4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999, 5000]);
  });

  test("bounded by bytes; a message bigger than the bound alone is not kept", () => {
    const one = JSON.stringify(msg("t", 1, "x".repeat(100))).length;
    const ring = new ReplayRing({ maxBytes: one * 3 });
    for (let seq = 1; seq <= 5; seq++) ring.append(msg("t", seq, "x".repeat(100)));
    expect(seqs(ring.matching(["t"]))).toEqual([3, 4, 5]);
    expect(ring.bytes).toBeLessThanOrEqual(one * 3);
    ring.append(msg("t", 6, "x".repeat(one * 4)));
    expect(ring.size).toBe(0);
    expect(ring.bytes).toBe(0);
    expect(ring.dropped).toBe(6);
  });

  test("maxMessages 0 keeps nothing", () => {
    const ring = new ReplayRing({ maxMessages: 0 });
    ring.append(msg("t", 1));
    expect(ring.size).toBe(0);
    expect(ring.dropped).toBe(1);
  });

  test("trim(now) drops messages once they are surely maxAgeMs old, never younger ones", () => {
    const ring = new ReplayRing({ maxAgeMs: 60_000 });
    ring.append(msg("t", 1));
    ring.append(msg("t", 2));
    expect(ring.trim(1_000)).toBe(0); // 1 and 2 were appended at or before 1 s
    ring.append(msg("t", 3)); // say at 1.5 s
    expect(ring.trim(30_000)).toBe(0);
    expect(ring.trim(60_999)).toBe(0);
    expect(ring.trim(61_000)).toBe(2); // 1 and 2 are 60 s old; 3 may be younger
    expect(seqs(ring.matching(["t"]))).toEqual([3]);
    expect(ring.trim(89_999)).toBe(0); // 3 was marked at 30 s
    expect(ring.trim(90_000)).toBe(1);
    expect(ring.size).toBe(0);
    expect(ring.dropped).toBe(3);
    expect(ring.trim(500_000)).toBe(0);
  });

  test("trim copes with messages already dropped by the bounds", () => {
    const ring = new ReplayRing({ maxMessages: 2, maxAgeMs: 10 });
    ring.append(msg("t", 1));
    ring.trim(0);
    for (let seq = 2; seq <= 4; seq++) ring.append(msg("t", seq));
    expect(ring.trim(5)).toBe(0);
    expect(ring.trim(15)).toBe(2);
    expect(ring.size).toBe(0);
    expect(ring.dropped).toBe(4);
  });

  test("clear empties it and forgets what was dropped", () => {
    const ring = new ReplayRing({ maxMessages: 1 });
    ring.append(msg("t", 1));
    ring.append(msg("t", 2));
    ring.trim(0);
    ring.clear();
    expect([ring.size, ring.bytes, ring.dropped]).toEqual([0, 0, 0]);
    ring.append(msg("t", 3));
    expect(ring.trim(DEFAULT_REPLAY_LIMITS.maxAgeMs)).toBe(0); // the old mark (at 0) went with the clear
    expect(seqs(ring.matching(["#"]))).toEqual([3]);
  });
});
