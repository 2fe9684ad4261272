import { describe, expect, test } from "bun:test";
import { SourceRateLimit, TokenBucket } from "../../../src/core/rate-limit.ts";
import { RepeatFilter } from "../../../src/core/repeat-filter.ts";

describe("token bucket", () => {
  test("allows the burst, then refills at its rate", () => {
    const bucket = new TokenBucket({ burst: 3, perSecond: 2 }, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([true, true, true, false]);
    expect(bucket.take(499)).toBe(false);
    expect(bucket.take(500)).toBe(true);
    expect(bucket.full(10_000)).toBe(true);
  });
});

describe("per-source and total limits", () => {
  const limits = { perSource: { burst: 2, perSecond: 1 }, total: { burst: 3, perSecond: 10 }, maxSources: 4 };

  test("a flooding source is refused on its own share; others still pass until the total runs out", () => {
    const rate = new SourceRateLimit(limits, 0);
    expect([rate.take("a", 0), rate.take("a", 0), rate.take("a", 0)]).toEqual(["ok", "ok", "source"]);
    expect(rate.take("b", 0)).toBe("ok");
    expect(rate.take("c", 0)).toBe("total");
    expect(rate.take("c", 100)).toBe("ok");
  });

  test("a source refused by the total keeps its own tokens", () => {
    const rate = new SourceRateLimit({ ...limits, total: { burst: 1, perSecond: 1 } }, 0);
    expect(rate.take("a", 0)).toBe("ok");
    expect([rate.take("b", 0), rate.take("b", 0)]).toEqual(["total", "total"]);
    expect([rate.take("b", 1000), rate.take("b", 2000)]).toEqual(["ok", "ok"]);
  });

  test("a spray of source addresses keeps memory bounded", () => {
    const rate = new SourceRateLimit({ ...limits, total: { burst: 1e9, perSecond: 1e9 } }, 0);
    for (let i = 0; i < 1000; i++) rate.take(`10.0.${i >> 8}.${i & 255}`, i);
    expect(rate.trackedSources).toBeLessThanOrEqual(4);
  });
});

describe("repeat filter", () => {
  test("reports the first occurrence, counts repeats within the window, reports the count after it", () => {
    const filter = new RepeatFilter(60_000);
    expect(filter.note("10.0.0.9 NETWORK_KEY_MISMATCH", 0)).toEqual({ report: true, suppressed: 0 });
    for (let t = 100; t < 60_000; t += 100) expect(filter.note("10.0.0.9 NETWORK_KEY_MISMATCH", t).report).toBe(false);
    expect(filter.note("10.0.0.8 NETWORK_KEY_MISMATCH", 500)).toEqual({ report: true, suppressed: 0 });
    expect(filter.note("10.0.0.9 NETWORK_KEY_MISMATCH", 60_000)).toEqual({ report: true, suppressed: 599 });
  });

  test("clearPrefix: the next occurrence of those keys is reported at once, others stay quiet", () => {
    const filter = new RepeatFilter(60_000);
    filter.note("hub 10.0.0.1 A", 0);
    filter.note("hub 10.0.0.2 A", 0);
    filter.clearPrefix("hub 10.0.0.1 ");
    expect(filter.note("hub 10.0.0.1 A", 1)).toEqual({ report: true, suppressed: 0 });
    expect(filter.note("hub 10.0.0.2 A", 1)).toEqual({ report: false });
  });
});
