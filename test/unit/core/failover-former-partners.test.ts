/**
 * A main keeps telling the backup it removed, until that backup lets go
 * (core/failover/former-partners.ts): the main's side of the decision, and the
 * backup's last word when it lets go.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_TIMINGS } from "../../../src/core/failure-detector.ts";
import {
  backupTransition,
  fromFormerPartner,
  mainTransition,
  MAX_FORMER_PARTNERS,
  startBackup,
  startMain,
  type BeatBody,
  type Effect,
  type MainEvent,
  type MainState,
} from "../../../src/core/failover/index.ts";

const T0 = 50_000;

function paired(former: readonly string[] = []): { state: MainState; effects: Effect[] } {
  const r = startMain({ timings: DEFAULT_TIMINGS, selfId: "m", pairing: { peerId: "b", confirmed: true, hubCopied: false }, epoch: 1, formerPartners: former }, T0);
  return { state: r.state, effects: [...r.effects] };
}

function step(s: MainState, ev: MainEvent, now = T0 + 10): { state: MainState; effects: Effect[] } {
  const r = mainTransition(s, ev, now);
  return { state: r.state, effects: [...r.effects] };
}

const persisted = (fx: Effect[]) => fx.filter((e) => e.type === "persistFormerPartners").map((e) => (e as { ids: readonly string[] }).ids);

describe("main: the backups it removed", () => {
  test("removing the backup remembers it, persisted before any heartbeat goes out", () => {
    const r = step(paired().state, { type: "unpaired" });
    expect(r.state.formerPartners).toEqual(["b"]);
    expect(persisted(r.effects)).toEqual([["b"]]);
    const order = r.effects.map((e) => e.type);
    expect(order.indexOf("persistFormerPartners")).toBeLessThan(order.indexOf("send") === -1 ? Infinity : order.indexOf("send"));
  });

  test("it is forgotten once its heartbeat says it let go, not while it still names this main", () => {
    const removed = step(paired().state, { type: "unpaired" }).state;
    const still = step(removed, { type: "formerPartnerHeard", id: "b", pairedWith: "m" });
    expect(still.state.formerPartners).toEqual(["b"]);
    expect(persisted(still.effects)).toEqual([]);
    const gone = step(still.state, { type: "formerPartnerHeard", id: "b", pairedWith: null });
    expect(gone.state.formerPartners).toEqual([]);
    expect(persisted(gone.effects)).toEqual([[]]);
    expect(gone.effects).toContainEqual({ type: "log", level: "info", message: "The removed backup b has let go of this main." });
  });

  test("a machine never removed cannot make the main forget another", () => {
    const removed = step(paired().state, { type: "unpaired" }).state;
    expect(step(removed, { type: "formerPartnerHeard", id: "x", pairedWith: null }).state.formerPartners).toEqual(["b"]);
  });

  test("added again, it is the partner and no longer a former one", () => {
    const removed = step(paired().state, { type: "unpaired" }).state;
    const again = step(removed, { type: "paired", peerId: "b" });
    expect(again.state.peerId).toBe("b");
    expect(again.state.formerPartners).toEqual([]);
    expect(persisted(again.effects)).toEqual([[]]);
  });

  test("a restarted main still knows them", () => {
    expect(paired(["a", "c"]).state.formerPartners).toEqual(["a", "c"]);
  });

  test("only the newest few are kept", () => {
    let s = paired().state;
    for (let i = 0; i < MAX_FORMER_PARTNERS + 2; i++) {
      s = step(s, { type: "paired", peerId: `p${i}` }).state;
      s = step(s, { type: "unpaired" }).state;
    }
    expect(s.formerPartners.length).toBe(MAX_FORMER_PARTNERS);
    expect(s.formerPartners.at(-1)).toBe(`p${MAX_FORMER_PARTNERS + 1}`);
    expect(s.formerPartners).not.toContain("p0");
  });
});

describe("whose heartbeat is a former partner's", () => {
  const former = ["b"];
  test("only the removed backup's own, sealed under its key, speaking as a backup", () => {
    expect(fromFormerPartner({ id: "b", role: "backup" }, "b", former)).toBe(true);
    // Another key holder speaking in its name (network key, or its own key) gets nothing, not even an answer.
    expect(fromFormerPartner({ id: "b", role: "backup" }, null, former)).toBe(false);
    expect(fromFormerPartner({ id: "b", role: "backup" }, "rogue", former)).toBe(false);
    expect(fromFormerPartner({ id: "b", role: "client" }, "b", former)).toBe(false);
    expect(fromFormerPartner({ id: "x", role: "backup" }, "x", former)).toBe(false);
  });
});

describe("backup: letting go on the main's word", () => {
  const mainBeat: BeatBody = {
    role: "main", state: "active", epoch: 3, activeEpoch: 3, msSinceHeardMain: 0, msSinceHeardBackup: null, condition: null, syncProgress: null,
    pairedWith: null, lanes: null, hubCopied: null,
  };

  test("a removed backup that missed the message lets go at the main's first heartbeat, never serves, and tells the main", () => {
    const start = startBackup({ timings: DEFAULT_TIMINGS, selfId: "b", pairing: { peerId: "m", confirmed: true, hubCopied: true }, epoch: 1 }, T0);
    const r = backupTransition(start.state, { type: "heartbeat", id: "m", beat: mainBeat }, T0 + 5);
    expect(r.state.phase.kind).toBe("unpaired");
    expect(r.effects.some((e) => e.type === "startServing")).toBe(false);
    expect(r.effects).toContainEqual({ type: "persistPairing", pairing: null });
    // Unpaired, it sends its main nothing more: this last beat lets the main forget it.
    const told = r.effects.filter((e) => e.type === "send" && e.to.role === "main");
    expect(told.length).toBe(1);
    expect(told[0]!.type === "send" && told[0]!.beat.pairedWith).toBeNull();
    let s = r.state;
    for (let t = T0 + 20; t <= T0 + 5 * DEFAULT_TIMINGS.failoverTimeoutMs; t += 20) {
      const tick = backupTransition(s, { type: "tick" }, t);
      expect(tick.effects.some((e) => e.type === "startServing" || (e.type === "send" && e.to.role === "main"))).toBe(false);
      s = tick.state;
    }
  });
});
