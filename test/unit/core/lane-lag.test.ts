import { expect, test } from "bun:test";
import { laneLag } from "../../../src/core/lane-lag.ts";

const lanes = (hubEpoch: number, hubSeq: number, logId: string, logSeq: number) => ({ hubEpoch, hubSeq, logId, logSeq });

test.each([
  { name: "caught up", heads: lanes(3, 10, "L", 7), copy: lanes(3, 10, "L", 7), lag: { hubState: 0, log: 0 } },
  { name: "behind in both lanes", heads: lanes(3, 10, "L", 7), copy: lanes(3, 4, "L", 2), lag: { hubState: 6, log: 5 } },
  { name: "copy from an older epoch lacks every write of the new one", heads: lanes(5, 3, "L", 0), copy: lanes(3, 90, "L", 0), lag: { hubState: 3, log: 0 } },
  { name: "copy of another log lacks all of it", heads: lanes(1, 0, "L2", 40), copy: lanes(1, 0, "L1", 40), lag: { hubState: 0, log: 40 } },
  { name: "a copy ahead (it served meanwhile) lacks nothing", heads: lanes(3, 10, "L", 7), copy: lanes(4, 2, "L", 9), lag: { hubState: 0, log: 0 } },
  { name: "no heads announced yet", heads: null, copy: lanes(3, 10, "L", 7), lag: { hubState: null, log: null } },
  { name: "no copy announced yet", heads: lanes(3, 10, "L", 7), copy: null, lag: { hubState: null, log: null } },
])("$name", ({ heads, copy, lag }) => {
  expect(laneLag(heads, copy)).toEqual(lag);
});
