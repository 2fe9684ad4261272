import { describe, expect, test } from "bun:test";
import { admit, NO_MEMO, type Freshness, type SenderMemo, type Verdict } from "../../../src/core/freshness.ts";

const ME = "my-boot-1";
const WINDOW = 1000;

/** A heartbeat from a sender in boot `boot` with sequence `seq`, echoing our stamp sent at `echoAt` (null: none) in `echoBoot`. */
function hb(boot: string, seq: number, echoAt: number | null, echoBoot = ME): Freshness {
  return { stamp: { boot, seq, sentAt: 5 }, echo: echoAt === null ? null : { boot: echoBoot, seq: 1, sentAt: echoAt } };
}

/** Each case: [now, heartbeat] in order, and the verdicts. */
const cases: [string, [number, Freshness][], Verdict[]][] = [
  ["a recent echo counts; later ones too", [[100, hb("a", 1, 50)], [200, hb("a", 2, 150)]], ["fresh", "fresh"]],
  ["the same datagram again is a replay", [[100, hb("a", 1, 50)], [120, hb("a", 1, 50)]], ["fresh", "replay"]],
  ["an older sequence is a replay", [[100, hb("a", 5, 50)], [120, hb("a", 4, 60)]], ["fresh", "replay"]],
  ["no echo yet (first contact) does not count", [[100, hb("a", 1, null)]], ["unverified"]],
  ["an echo older than the window does not count", [[5000, hb("a", 1, 3000)]], ["unverified"]],
  ["an echo of our previous boot does not count", [[100, hb("a", 1, 50, "my-boot-0")]], ["unverified"]],
  ["an echo from our future (clock reset) does not count", [[100, hb("a", 1, 500)]], ["unverified"]],
  ["a sender's restart counts once it echoes us", [[100, hb("a", 900, 50)], [300, hb("b", 1, null)], [400, hb("b", 2, 350)]], ["fresh", "unverified", "fresh"]],
  ["a replay of an earlier boot, recorded and sent later, never counts", [[100, hb("b", 1, 50)], [5000, hb("a", 999, 50)], [5100, hb("b", 2, 5050)]], ["fresh", "unverified", "fresh"]],
];

describe("heartbeat freshness", () => {
  test.each(cases)("%s", (_name, arrivals, verdicts) => {
    let memo: SenderMemo = NO_MEMO;
    const got: Verdict[] = [];
    for (const [now, beat] of arrivals) {
      const r = admit(memo, beat, ME, now, WINDOW);
      memo = r.memo;
      got.push(r.verdict);
    }
    expect(got).toEqual(verdicts);
  });

  test("once a sender is verified, a replay of another boot never moves what is echoed back", () => {
    let memo = admit(NO_MEMO, hb("b", 7, 50), ME, 100, WINDOW).memo;
    memo = admit(memo, hb("a", 99, null), ME, 200, WINDOW).memo;
    expect(memo.echo?.boot).toBe("b");
    expect(memo.echo?.seq).toBe(7);
  });

  test("before verification the latest datagram is echoed (so first contact completes)", () => {
    const memo = admit(NO_MEMO, hb("a", 3, null), ME, 100, WINDOW).memo;
    expect(memo.echo).toEqual({ boot: "a", seq: 3, sentAt: 5 });
  });
});
