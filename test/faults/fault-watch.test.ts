/**
 * The fault suite's accounting (test/support/fault-watch.ts) on hand-made
 * timelines: a mistake here would report 0 lost or 0 ms with two servers
 * active, and every fault case would pass for the wrong reason. No root needed.
 */
import { describe, expect, test } from "bun:test";
import { acknowledgedIn, bothActiveMs, epochsOnlyGrow, missingMessages, takeovers } from "../support/fault-watch.ts";
import type { StatusPoll } from "../support/status-poller.ts";

const poll = (t: number, state: string | null, epoch = 1): StatusPoll => (state === null ? { t, error: "timed out" } : { t, status: { failover: { state, epoch } } });

describe("fault accounting", () => {
  test("two servers count as active together only while the latest poll of each says so", () => {
    const main = [poll(0, "active"), poll(100, null), poll(200, "active"), poll(300, "rejoining"), poll(400, "active")];
    const backup = [poll(50, "idle"), poll(150, "active"), poll(250, "active"), poll(350, "idle")];
    // 200–250 and 250–300 (main active again while the backup still is); nothing after the backup left.
    expect(bothActiveMs(main, backup)).toBe(100);
    expect(bothActiveMs(main, [])).toBe(0);
  });

  test("a takeover is a step into active, and an unanswered poll is not active", () => {
    expect(takeovers([poll(0, "idle"), poll(50, "active"), poll(100, "active"), poll(150, "idle"), poll(200, "active")])).toBe(2);
    expect(takeovers([poll(0, "active"), poll(50, null), poll(100, "active")])).toBe(1);
  });

  test("epochs may stay or grow, never go down, and unanswered polls are skipped", () => {
    expect(epochsOnlyGrow([poll(0, "active", 1), poll(50, null), poll(100, "rejoining", 1), poll(150, "active", 3)])).toBe(true);
    expect(epochsOnlyGrow([poll(0, "active", 3), poll(50, "active", 1)])).toBe(false);
  });

  test("lost means acknowledged and never received, per publisher batch", () => {
    const batches = [
      { topic: "flow/1", acknowledged: 3 },
      { topic: "flow/2", acknowledged: 2 },
    ];
    const received = [
      { topic: "flow/1", seq: 1 },
      { topic: "flow/1", seq: 3 },
      { topic: "flow/2", seq: 1 },
      { topic: "flow/2", seq: 2 },
      { topic: "flow/2", seq: 3 }, // sent but not acknowledged: not owed
    ];
    expect(missingMessages(batches, received)).toEqual(["flow/1#2"]);
  });

  test("a failed publisher's own count of acknowledged messages is read from its message", () => {
    expect(acknowledgedIn("understudy pub: The node closed the connection after 12 of 100 messages were acknowledged.")).toBe(12);
    expect(acknowledgedIn("The node acknowledged nothing for 20 s (40 of 100 messages acknowledged): no server is reachable")).toBe(40);
    expect(acknowledgedIn("refused: not active")).toBe(0);
  });
});
