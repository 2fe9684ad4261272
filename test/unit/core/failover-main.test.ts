import { describe, expect, test } from "bun:test";
import { DEFAULT_TIMINGS } from "../../../src/core/failure-detector.ts";
import { HAND_BACK_RETRY_MAX_TIMEOUTS } from "../../../src/core/failover/main.ts";
import {
  mainTransition,
  startMain,
  statusChip,
  type BeatBody,
  type Effect,
  type Failback,
  type MainEvent,
  type MainState,
} from "../../../src/core/failover/index.ts";
import { ManualClock } from "../../support/clock.ts";

// heartbeat 100 ms, timeout 1000 ms; ticks every 20 ms as index.ts asks.
const TICK = 20;

const idleBackup: BeatBody = {
  role: "backup", state: "idle", epoch: 1, activeEpoch: null, msSinceHeardMain: 0, msSinceHeardBackup: 0, condition: null, syncProgress: null,
  pairedWith: "m", lanes: null, hubCopied: true,
};
const lonelyClient: MainEvent = {
  type: "heartbeat",
  id: "c",
  beat: { ...idleBackup, role: "client", state: "follow-main", msSinceHeardBackup: null, pairedWith: null, hubCopied: null },
};
const fromBackup = (o: Partial<BeatBody> = {}): MainEvent => ({ type: "heartbeat", id: "b", beat: { ...idleBackup, ...o } });
const activeBackup = (epoch: number): MainEvent => fromBackup({ state: "active", epoch, activeEpoch: epoch });

/** Drives a main on a ManualClock, keeping every effect for inspection. */
class Main {
  readonly clock = new ManualClock(50_000);
  state: MainState;
  effects: Effect[] = [];
  constructor(opts: { paired?: boolean; epoch?: number; failback?: Failback } = {}) {
    const r = startMain({ timings: DEFAULT_TIMINGS, selfId: "m", pairing: opts.paired === false ? null : { peerId: "b", confirmed: true, hubCopied: false }, epoch: opts.epoch ?? 1, failback: opts.failback }, this.clock.now());
    this.state = r.state;
    this.effects.push(...r.effects);
  }
  on(ev: MainEvent): Effect[] {
    const r = mainTransition(this.state, ev, this.clock.now());
    this.state = r.state;
    this.effects.push(...r.effects);
    return [...r.effects];
  }
  /**
   * Ticks for `ms`; `beat` (if any) arrives every 100 ms as the backup's
   * heartbeat. A client that hears only the main heartbeats it too (so the main
   * is not isolated), unless `alone`.
   */
  run(ms: number, beat: MainEvent | null = null, alone = false): void {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.advance(TICK);
      if (beat && this.clock.now() % 100 === 0) this.on(beat);
      if (!alone && this.clock.now() % 100 === 0) this.on(lonelyClient);
      this.on({ type: "tick" });
    }
  }
  get phase(): string {
    const p = this.state.phase;
    return p.kind === "active" ? `active@${p.epoch}` : p.kind;
  }
  get chip(): string {
    return statusChip(this.state, this.clock.now()).text;
  }
}

const types = (fx: Effect[]) => fx.filter((e) => e.type !== "log" && e.type !== "send").map((e) => `${e.type}${"epoch" in e ? `:${e.epoch}` : ""}`);

describe("main: starting", () => {
  test("without a backup it is active at once, the epoch persisted before serving", () => {
    const m = new Main({ paired: false, epoch: 0 });
    expect(m.phase).toBe("active@1");
    expect(types(m.effects)).toEqual(["persistEpoch:1", "startServing:1"]);
    expect(m.chip).toBe("No backup");
  });

  test("with a backup it asks first: rejoining until the backup answers or a timeout passes", () => {
    const m = new Main();
    expect(m.phase).toBe("rejoining");
    m.run(980);
    expect(m.phase).toBe("rejoining");
    m.run(TICK);
    expect(m.phase).toBe("active@3"); // a new term: it held 1 before, the main owns odd epochs
  });

  // what the backup says → what the main does before serving
  const table: [string, BeatBody["state"], string[]][] = [
    ["an idle backup: copy what it has, then serve", "idle", ["startCatchUp:1"]],
    ["a syncing backup has nothing to copy", "syncing", ["persistEpoch:3", "startServing:3"]],
    ["an unpaired backup has nothing to copy", "unpaired", ["persistEpoch:3", "startServing:3"]],
  ];
  for (const [name, state, expected] of table) {
    test(name, () => {
      const m = new Main();
      m.clock.advance(5);
      expect(types(m.on(fromBackup({ state, hubCopied: state === "idle" })))).toEqual(expected);
    });
  }

  test("after copying from an idle backup it serves at a new epoch", () => {
    const m = new Main();
    m.on(fromBackup());
    expect(types(m.on({ type: "catchUpDone" }))).toEqual(["persistEpoch:3", "startServing:3"]);
    expect(m.chip).toBe("Backup is idle");
  });

  test("an idle backup it hears but cannot copy from: after a timeout of failed copies it serves without", () => {
    const m = new Main();
    const failEvery100 = (): void => {
      for (let i = 0; i < 5; i++) {
        m.clock.advance(TICK);
        if (m.clock.now() % 100 === 0) {
          m.on(fromBackup());
          m.on({ type: "catchUpFailed" });
        }
        m.on({ type: "tick" });
      }
    };
    m.on(fromBackup());
    m.on({ type: "catchUpFailed" });
    for (let i = 0; i < 9; i++) failEvery100();
    expect(m.phase).toBe("rejoining");
    failEvery100();
    failEvery100();
    expect(m.phase).toBe("active@3");
    expect(m.effects.some((e) => e.type === "log" && e.message.includes("Cannot copy"))).toBe(true);
  });

  test("a backup that falls silent during the copy: after a timeout the copy is abandoned and the main serves", () => {
    const m = new Main();
    m.on(fromBackup());
    expect(m.state.phase.kind === "rejoining" && m.state.phase.catchUp.kind).toBe("running");
    m.run(980);
    expect(m.phase).toBe("rejoining");
    m.run(40);
    expect(m.phase).toBe("active@3");
    expect(types(m.on({ type: "catchUpDone" }))).toEqual([]); // a late answer changes nothing
  });

  test("a failed copy is retried after a heartbeat, not in a loop", () => {
    const m = new Main();
    m.on(fromBackup());
    expect(types(m.on({ type: "catchUpFailed" }))).toEqual([]);
    m.run(100, fromBackup());
    expect(types(m.effects).filter((t) => t.startsWith("startCatchUp"))).toHaveLength(2);
  });
});

describe("main: writes the backup took that the main never copied", () => {
  const serving = (m: Main) => m.state.phase.kind === "active" && m.state.phase.catchUp.kind;
  const catchUps = (fx: Effect[]) => fx.filter((e) => e.type === "startCatchUp");

  test("serving because the backup was silent: when the backup is heard again, its writes are copied in while the main keeps serving", () => {
    const m = new Main();
    m.run(1000);
    expect(m.phase).toBe("active@3");
    expect(serving(m)).toBe("idle");
    m.run(2000); // still silent: nothing to copy from
    expect(catchUps(m.effects)).toHaveLength(0);
    const fx = m.on(fromBackup({ epoch: 3 }));
    expect(catchUps(fx)).toEqual([{ type: "startCatchUp", epoch: 3 }]);
    expect(types(fx)).not.toContain("stopServing:3");
    m.run(300, fromBackup({ epoch: 3 }));
    expect(catchUps(m.effects)).toHaveLength(1); // one copy at a time
    const done = m.on({ type: "catchUpDone" });
    expect(done.some((e) => e.type === "log" && e.message.includes("Copied the Data Hub writes"))).toBe(true);
    expect(serving(m)).toBe("done");
    m.run(1000, fromBackup({ epoch: 3 }));
    expect(catchUps(m.effects)).toHaveLength(1); // copied once, not on every heartbeat
    expect(m.phase).toBe("active@3");
  });

  test("a failed copy while serving is retried a heartbeat later, then less and less often, and the main keeps serving", () => {
    const m = new Main();
    m.run(1000);
    m.on(fromBackup({ epoch: 3 }));
    const triedAt: number[] = [m.clock.now()];
    for (let i = 0; i < 12; i++) {
      expect(types(m.on({ type: "catchUpFailed" }))).toEqual([]);
      const before = catchUps(m.effects).length;
      while (catchUps(m.effects).length === before) m.run(20, fromBackup({ epoch: 3 }));
      triedAt.push(m.clock.now());
    }
    expect(m.phase).toBe("active@3");
    const waits = triedAt.slice(1).map((t, i) => t - triedAt[i]!);
    expect(waits[0]).toBeLessThanOrEqual(100);
    expect(waits[1]).toBeGreaterThan(waits[0]!);
    expect(Math.max(...waits)).toBeLessThanOrEqual(HAND_BACK_RETRY_MAX_TIMEOUTS * 1000);
    expect(waits.at(-1)).toBeGreaterThanOrEqual(HAND_BACK_RETRY_MAX_TIMEOUTS * 1000 - 100);
    m.on({ type: "catchUpDone" });
    expect(m.state.phase.kind === "active" && m.state.phase.catchUp.kind).toBe("done");
  });

  test("nothing is owed when the main caught up before serving, or has no backup", () => {
    const m = new Main();
    m.on(fromBackup());
    m.on({ type: "catchUpDone" });
    expect(serving(m)).toBe("done");
    m.run(1000, fromBackup({ epoch: 3 }));
    expect(catchUps(m.effects)).toHaveLength(1); // the one before serving
    expect(serving(new Main({ paired: false }))).toBe("done");
  });

  test("a backup back but still copying its first state, or paired elsewhere, has nothing to hand over yet", () => {
    const m = new Main();
    m.run(1000);
    m.run(500, fromBackup({ epoch: 3, state: "syncing", hubCopied: false }));
    m.run(500, fromBackup({ epoch: 3, pairedWith: "other-main" }));
    expect(catchUps(m.effects)).toHaveLength(0);
    m.on(fromBackup({ epoch: 3 }));
    expect(catchUps(m.effects)).toHaveLength(1);
  });

  test("back from an active backup: the writes it takes until it hears the new epoch are copied once it stops serving", () => {
    const m = new Main();
    m.on(activeBackup(2));
    m.on({ type: "catchUpDone" });
    expect(m.phase).toBe("active@3");
    expect(serving(m)).toBe("idle");
    m.run(300, activeBackup(2)); // it has not heard epoch 3 yet: it still takes writes
    expect(catchUps(m.effects)).toHaveLength(1);
    m.on(fromBackup({ epoch: 3, state: "syncing", hubCopied: true }));
    expect(catchUps(m.effects)).toEqual([{ type: "startCatchUp", epoch: 2 }, { type: "startCatchUp", epoch: 3 }]);
    m.on({ type: "catchUpDone" });
    expect(serving(m)).toBe("done");
    expect(m.phase).toBe("active@3");
  });

  test("in standby, the backup stops serving and cannot be heard: the main serves, then copies the backup's last writes when it returns", () => {
    const m = new Main({ failback: "manual" });
    m.on(activeBackup(2));
    m.on({ type: "catchUpDone" });
    expect(m.phase).toBe("standby");
    m.run(1100); // the backup crashed: silent a timeout
    expect(m.phase).toBe("active@3");
    m.on(fromBackup({ epoch: 3 }));
    expect(catchUps(m.effects).at(-1)).toEqual({ type: "startCatchUp", epoch: 3 });
  });
});

describe("main: coming back to an active backup", () => {
  test("failback auto: copy the backup's state, then take over at the next epoch", () => {
    const m = new Main();
    expect(types(m.on(activeBackup(2)))).toEqual(["persistEpoch:2", "startCatchUp:2"]);
    expect(m.chip).toBe("Backup is active");
    const fx = m.on({ type: "catchUpDone" });
    expect(types(fx)).toEqual(["persistEpoch:3", "startServing:3"]);
    // The announcement to the backup carries the new epoch, after it was persisted.
    const announce = fx.find((e) => e.type === "send" && e.to.role === "backup");
    expect(announce?.type === "send" && announce.beat.activeEpoch).toBe(3);
    expect(fx.indexOf(announce!)).toBeGreaterThan(fx.findIndex((e) => e.type === "persistEpoch" && e.epoch === 3));
  });

  test("failback manual: standby until someone switches back, then copy again and take over", () => {
    const m = new Main({ failback: "manual" });
    m.on(activeBackup(2));
    m.on({ type: "catchUpDone" });
    expect(m.phase).toBe("standby");
    m.run(10_000, activeBackup(2));
    expect(m.phase).toBe("standby");
    expect(m.chip).toBe("Backup is active");
    expect(types(m.on({ type: "switchBack" }))).toEqual(["startCatchUp:2"]);
    expect(types(m.on({ type: "catchUpDone" }))).toEqual(["persistEpoch:3", "startServing:3"]);
  });

  test("failback set to automatic on the setup page while the main waits: it goes back now; set to manual, the next return waits", () => {
    const m = new Main({ failback: "manual" });
    m.on(activeBackup(2));
    m.on({ type: "catchUpDone" });
    expect(m.phase).toBe("standby");
    expect(types(m.on({ type: "setFailback", failback: "auto" }))).toEqual(["startCatchUp:2"]);
    expect(types(m.on({ type: "catchUpDone" }))).toEqual(["persistEpoch:3", "startServing:3"]);
    const back = new Main({ failback: "auto" });
    back.on({ type: "setFailback", failback: "manual" });
    back.on(activeBackup(2));
    back.on({ type: "catchUpDone" });
    expect(back.phase).toBe("standby");
  });

  test("in standby, a backup that stops serving makes the main take over", () => {
    const m = new Main({ failback: "manual" });
    m.on(activeBackup(2));
    m.on({ type: "catchUpDone" });
    m.clock.advance(TICK);
    expect(types(m.on(fromBackup({ epoch: 2 })))).toEqual(["startCatchUp:2"]); // restarted backup: idle now
    m.on({ type: "catchUpDone" });
    expect(m.phase).toBe("active@3");
  });

  test("clients say the backup serves but it cannot be reached: wait (its state could not be copied)", () => {
    const m = new Main();
    const gossip: MainEvent = {
      type: "heartbeat", id: "c1",
      beat: { ...idleBackup, role: "client", state: "follow-backup", epoch: 2, activeEpoch: 2, msSinceHeardMain: null, msSinceHeardBackup: 30 },
    };
    m.run(3000, gossip);
    expect(m.phase).toBe("rejoining");
    expect(m.chip).toBe("Backup is active");
    m.run(1200); // the client stops talking: its word goes stale, the backup is silent: take over
    expect(m.phase).toBe("active@3");
  });
});

describe("main: fencing", () => {
  function activeMain(): Main {
    const m = new Main({ paired: false, epoch: 0 });
    m.on({ type: "paired", peerId: "b" });
    m.run(200, fromBackup());
    expect(m.phase).toBe("active@1");
    return m;
  }

  test("the backup active at a higher epoch: stop serving, rejoin and start copying, all at once", () => {
    const m = activeMain();
    expect(types(m.on(activeBackup(2)))).toEqual(["persistEpoch:2", "stopServing:1", "startCatchUp:2"]);
    expect(m.phase).toBe("rejoining");
  });

  test("the backup active at a lower epoch changes nothing (it is the one fenced)", () => {
    const m = new Main({ epoch: 4 });
    m.run(1000);
    expect(m.phase).toBe("active@5");
    m.on(activeBackup(4));
    expect(m.phase).toBe("active@5");
  });

  test("a backup that served a later epoch and restarted (idle now): the main copies from it, then claims above it (sim seed 686)", () => {
    const m = activeMain();
    // The main was stopped while the backup took over at 2, took writes and crashed; it came back idle.
    expect(types(m.on(fromBackup({ epoch: 2 })))).toEqual(["persistEpoch:2", "stopServing:1", "startCatchUp:2"]);
    expect(m.phase).toBe("rejoining");
    m.on({ type: "catchUpDone" });
    m.run(100, fromBackup({ epoch: 2 }));
    expect(m.phase).toBe("active@3");
    // Its epoch is now the main's: nothing more to copy.
    m.run(300, fromBackup({ epoch: 3 }));
    expect(m.phase).toBe("active@3");
  });

  test("a later epoch from a backup paired with another main does not stop this one", () => {
    const m = activeMain();
    m.on(fromBackup({ epoch: 2, pairedWith: "other" }));
    expect(m.phase).toBe("active@1");
  });

  test("a client following the backup at a higher epoch fences the main when the backup is unheard", () => {
    const m = activeMain();
    m.run(1100); // backup silent: down
    m.on({
      type: "heartbeat", id: "c1",
      beat: { ...idleBackup, role: "client", state: "follow-backup", epoch: 2, activeEpoch: 2, msSinceHeardMain: 10, msSinceHeardBackup: 10 },
    });
    expect(m.phase).toBe("rejoining");
  });
});

describe("main: a backup that dropped the pairing is asked again", () => {
  const asked = (m: Main) => m.effects.filter((e) => e.type === "pairAgain").length;

  test("its heartbeats naming no main for a timeout ask for the pairing exchange again, then again each timeout", () => {
    const m = new Main();
    m.on(fromBackup());
    m.on({ type: "catchUpDone" });
    m.run(2000, fromBackup());
    expect(asked(m)).toBe(0);
    // The first such heartbeat arrives within 100 ms; a timeout after it, the main asks.
    m.run(900, fromBackup({ state: "unpaired", pairedWith: null }));
    expect(asked(m)).toBe(0);
    m.run(200, fromBackup({ state: "unpaired", pairedWith: null }));
    expect(asked(m)).toBe(1);
    expect(m.effects.find((e) => e.type === "pairAgain")).toEqual({ type: "pairAgain", peerId: "b" });
    m.run(1000, fromBackup({ state: "unpaired", pairedWith: null }));
    expect(asked(m)).toBe(2);
    expect(m.effects.filter((e) => e.type === "log" && e.message.includes("not paired with this main"))).toHaveLength(1);
    // Paired again: its heartbeats name this main, nothing more is asked.
    m.run(5000, fromBackup());
    expect(asked(m)).toBe(2);
  });

  test("a backup silent for four timeouts is asked too (its heartbeats may not even count: it lost this main's key)", () => {
    const m = new Main();
    m.on(fromBackup());
    m.on({ type: "catchUpDone" });
    m.run(3980);
    expect(asked(m)).toBe(0);
    m.run(40);
    expect(asked(m)).toBe(1);
    m.run(4000);
    expect(asked(m)).toBe(2);
    // A dead backup is asked every four timeouts for as long as it is silent, but said once in the log.
    m.run(40_000);
    expect(asked(m)).toBe(12);
    expect(m.effects.filter((e) => e.type === "log" && e.message.includes("has been silent"))).toHaveLength(1);
  });

  test("a main with no backup asks nothing", () => {
    const m = new Main({ paired: false });
    m.run(10_000);
    expect(asked(m)).toBe(0);
  });
});
