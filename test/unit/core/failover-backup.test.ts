import { describe, expect, test } from "bun:test";
import { DEFAULT_TIMINGS } from "../../../src/core/failure-detector.ts";
import {
  backupTransition,
  startBackup,
  statusChip,
  type BackupEvent,
  type BackupState,
  type BeatBody,
  type Effect,
} from "../../../src/core/failover/index.ts";
import { ManualClock } from "../../support/clock.ts";

// heartbeat 100 ms, timeout 1000 ms; ticks every 20 ms as index.ts asks.
const TICK = 20;

const base: BeatBody = {
  role: "main", state: "active", epoch: 1, activeEpoch: 1, msSinceHeardMain: 0, msSinceHeardBackup: 0, condition: null, syncProgress: null,
  pairedWith: "b", lanes: { hubEpoch: 0, hubSeq: 0, logId: "", logSeq: 0 }, hubCopied: null,
};
const fromMain = (o: Partial<BeatBody> = {}): BackupEvent => ({ type: "heartbeat", id: "m", beat: { ...base, ...o } });
const fromClient = (id: string, o: Partial<BeatBody>): BackupEvent => ({
  type: "heartbeat", id, beat: { ...base, role: "client", state: "follow-main", msSinceHeardBackup: 5, ...o },
});

/** Drives a backup on a ManualClock, keeping every effect for inspection. */
class Backup {
  readonly clock = new ManualClock(10_000);
  state: BackupState;
  effects: Effect[] = [];
  constructor(opts: { paired?: boolean; synced?: boolean; epoch?: number } = {}) {
    const r = startBackup({
      timings: DEFAULT_TIMINGS,
      selfId: "b",
      pairing: opts.paired === false ? null : { peerId: "m", confirmed: true, hubCopied: opts.synced ?? true },
      epoch: opts.epoch ?? 1,
    }, this.clock.now());
    this.state = r.state;
    this.effects.push(...r.effects);
  }
  on(ev: BackupEvent): Effect[] {
    const r = backupTransition(this.state, ev, this.clock.now());
    this.state = r.state;
    this.effects.push(...r.effects);
    return [...r.effects];
  }
  /** Ticks for `ms`, feeding a heartbeat from the main every 100 ms unless `mainSilent`. */
  run(ms: number, mainSilent = true): void {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.advance(TICK);
      if (!mainSilent && this.clock.now() % 100 === 0) this.on(fromMain());
      this.on({ type: "tick" });
    }
  }
  /** Ticks up to just before `t`, then moves the clock to `t` without a tick. */
  runTo(t: number): void {
    while (this.clock.now() + TICK < t) {
      this.clock.advance(TICK);
      this.on({ type: "tick" });
    }
    this.clock.advanceTo(t);
  }
  get phase(): string {
    const p = this.state.phase;
    return p.kind === "active" ? `active@${p.epoch}` : p.kind === "idle" && p.condition ? `idle!${p.condition}` : p.kind;
  }
}

describe("backup: start and initial sync", () => {
  test("a backup never paired is unpaired; a paired one syncs first; a synced one is idle at once", () => {
    expect(new Backup({ paired: false }).phase).toBe("unpaired");
    expect(new Backup({ synced: false }).phase).toBe("syncing");
    expect(new Backup().phase).toBe("idle");
  });

  test("syncing reports progress, never takes over without a first Data Hub copy, and turns idle when caught up", () => {
    const b = new Backup({ synced: false });
    b.on({ type: "syncProgress", progress: 0.42 });
    // Nothing counts before the first complete copy of the Data Hub state.
    expect(statusChip(b.state, b.clock.now())).toEqual({ kind: "backup-syncing", text: "Backup is syncing", progress: 0 });
    b.run(5000); // the main silent all along: still nothing to serve
    expect(b.phase).toBe("syncing");
    b.on({ type: "syncDone" });
    expect(statusChip(b.state, b.clock.now()).progress).toBe(0.42);
    b.on({ type: "syncProgress", progress: 7 });
    expect(statusChip(b.state, b.clock.now()).progress).toBe(1);
    b.on(fromMain());
    expect(b.phase).toBe("idle");
  });

  test("pairing an unpaired backup starts a sync; unpairing an active one stops serving", () => {
    const b = new Backup({ paired: false });
    b.on({ type: "paired", peerId: "m" });
    expect(b.phase).toBe("syncing");
    const a = new Backup();
    a.run(1100);
    expect(a.phase).toBe("active@2");
    expect(a.on({ type: "unpaired" })).toContainEqual({ type: "stopServing", epoch: 2 });
    expect(a.phase).toBe("unpaired");
  });
});

describe("backup: taking over", () => {
  test("heartbeats from the main keep it idle", () => {
    const b = new Backup();
    b.run(10_000, false);
    expect(b.phase).toBe("idle");
  });

  test("after a timeout of silence it takes over, persisting the epoch before anything carries it", () => {
    const b = new Backup();
    b.run(980);
    expect(b.phase).toBe("idle");
    b.clock.advance(TICK); // 1000 ms of silence since start
    b.on(fromClient("c1", { msSinceHeardMain: null })); // a client speaks: known, but not a witness
    const fx = b.on({ type: "tick" });
    expect(b.phase).toBe("active@2");
    const kinds = fx.filter((e) => e.type !== "log").map((e) => (e.type === "send" ? `send:${e.to.role}:${e.beat.epoch}` : `${e.type}:${"epoch" in e ? e.epoch : ""}`));
    expect(kinds.slice(0, 2)).toEqual(["persistEpoch:2", "startServing:2"]);
    expect(kinds.slice(2).sort()).toEqual(["send:client:2", "send:main:2"]); // announced to the main and to the client
    expect(statusChip(b.state, b.clock.now()).text).toBe("Backup is active");
  });

  test("it decides on a tick, never in the middle of reading input", () => {
    const b = new Backup();
    b.run(980);
    b.clock.advance(TICK); // the main has been silent for a timeout now
    b.on(fromClient("c1", { msSinceHeardMain: null }));
    expect(b.phase).toBe("idle");
    b.on({ type: "tick" });
    expect(b.phase).toBe("active@2");
  });

  test("after a stall of its own it judges the main only on time it was running, and waits a heartbeat", () => {
    const b = new Backup();
    b.run(500, false);
    b.clock.advance(5000); // stopped (SIGSTOP) for 5 s
    b.on({ type: "tick" });
    expect(b.phase).toBe("idle");
    b.run(400);
    expect(b.phase).toBe("idle"); // 100 + 400 ms of silence that counts
    b.run(600);
    expect(b.phase).toBe("active@2");
  });

  test("a broken replication socket is down at once: takeover on the next tick", () => {
    const b = new Backup();
    b.run(300, false);
    b.on({ type: "linkBroken", peer: "main" });
    b.run(TICK);
    expect(b.phase).toBe("active@2");
  });

  test("stalls of half a heartbeat every heartbeat (a loaded machine) do not hold a takeover after the main's socket broke", () => {
    const b = new Backup();
    b.run(300, false);
    b.on({ type: "linkBroken", peer: "main" });
    for (let i = 0; i < 5 && b.phase === "idle"; i++) {
      b.clock.advance(60); // a stall past half a heartbeat
      b.on({ type: "tick" });
      expect(b.phase).toBe("idle"); // never on the tick that found the stall: queued input is read first
      b.clock.advance(TICK);
      b.on({ type: "tick" });
      b.clock.advance(TICK);
      b.on({ type: "tick" });
    }
    expect(b.phase).toBe("active@2");
  });

  test("after a stall, input read before the next tick still counts: a client that hears the main holds the takeover", () => {
    const b = new Backup();
    b.run(300, false);
    b.on({ type: "linkBroken", peer: "main" });
    b.clock.advance(60);
    b.on({ type: "tick" });
    b.on(fromClient("c1", { msSinceHeardMain: 5 }));
    b.clock.advance(TICK);
    b.on({ type: "tick" });
    expect(b.phase).toBe("idle!main-unreachable-from-backup");
  });

  test("after a stall, an overdue tick in the same turn does not take over before the main's queued heartbeats are read (sim seed 106898)", () => {
    const b = new Backup();
    b.run(300, false);
    // Cut off from the main for longer than the timeout while a client still hears it: held back.
    for (let t = 0; t < 1100; t += 100) {
      b.on(fromClient("c1", { msSinceHeardMain: 5 }));
      b.run(100);
    }
    expect(b.phase).toBe("idle!main-unreachable-from-backup");
    b.clock.advance(1400); // frozen; the link healed meanwhile, and the main's heartbeats queue up
    b.on(fromClient("c1", { msSinceHeardMain: 1500 })); // the stall is noted on the first input read
    b.on({ type: "tick" }); // the overdue tick, read before the main's datagrams
    expect(b.phase).not.toStartWith("active");
    b.on(fromMain());
    b.clock.advance(TICK);
    b.on({ type: "tick" });
    expect(b.phase).toBe("idle");
  });

  test("a blip shorter than the timeout changes nothing", () => {
    const b = new Backup();
    b.run(1000, false);
    b.run(700); // silence
    b.run(2000, false);
    expect(b.phase).toBe("idle");
    expect(b.effects.some((e) => e.type === "startServing")).toBe(false);
  });
});

describe("backup: the witness rule", () => {
  // A client's heartbeat received `agoMs` before the main's timeout ran out, saying it heard the main `heardMs` before sending.
  const table: [string, { agoMs: number; heardMs: number | null }[], string][] = [
    ["no client heard: decides alone", [], "active@2"],
    ["a client hears the main: holds back", [{ agoMs: 0, heardMs: 40 }], "idle!main-unreachable-from-backup"],
    ["a client whose socket to the main broke is no witness", [{ agoMs: 0, heardMs: null }], "active@2"],
    ["a client that last heard the main a timeout ago is no witness", [{ agoMs: 0, heardMs: 1000 }], "active@2"],
    ["an old report: heard the main 10 ms before a report 900 ms ago: still within the timeout", [{ agoMs: 900, heardMs: 10 }], "idle!main-unreachable-from-backup"],
    ["an old report: heard the main 10 ms before a report 995 ms ago: stale", [{ agoMs: 995, heardMs: 10 }], "active@2"],
    ["one witness among clients that lost the main is enough", [{ agoMs: 0, heardMs: null }, { agoMs: 50, heardMs: 5 }], "idle!main-unreachable-from-backup"],
  ];
  for (const [name, reports, expected] of table) {
    test(name, () => {
      const b = new Backup();
      const downAt = b.clock.now() + 1000; // the main is never heard: down one timeout after start
      for (const [i, rep] of [...reports].sort((x, y) => y.agoMs - x.agoMs).entries()) {
        b.runTo(downAt - rep.agoMs);
        b.on(fromClient(`c${i}`, { msSinceHeardMain: rep.heardMs }));
      }
      b.runTo(downAt);
      b.on({ type: "tick" });
      expect(b.phase).toBe(expected);
    });
  }

  // What the main's signed token proves (core/signed-claims.ts), not what the client says, decides.
  const proven: [string, number | null, string][] = [
    ["a client's word without the main's token is no witness", null, "active@2"],
    ["a token the main signed 40 ms ago makes it a witness", 40, "idle!main-unreachable-from-backup"],
    ["a token a timeout old is no witness, whatever the client says", 1000, "active@2"],
  ];
  for (const [name, witnessMsAgo, expected] of proven) {
    test(name, () => {
      const b = new Backup();
      b.runTo(b.clock.now() + 1000);
      b.on({ ...fromClient("rogue", { msSinceHeardMain: 0 }), witnessMsAgo } as BackupEvent);
      b.on({ type: "tick" });
      expect(b.phase).toBe(expected);
    });
  }

  test("the chip says why it holds back, and the condition clears when the main is heard again", () => {
    const b = new Backup();
    b.run(500);
    b.on(fromClient("c1", { msSinceHeardMain: 10 }));
    b.run(500);
    expect(statusChip(b.state, b.clock.now()).text).toBe("Main unreachable from backup");
    expect(b.on(fromMain()).some((e) => e.type === "send" && e.beat.condition === null)).toBe(true);
    expect(b.phase).toBe("idle");
  });
});

describe("backup: fencing", () => {
  function activeBackup(): Backup {
    const b = new Backup();
    b.run(1000);
    expect(b.phase).toBe("active@2");
    return b;
  }

  test("the main active at a higher epoch: the backup stops serving and goes idle at once", () => {
    const b = activeBackup();
    const fx = b.on(fromMain({ epoch: 3, activeEpoch: 3 }));
    expect(fx).toContainEqual({ type: "persistEpoch", epoch: 3 });
    expect(fx).toContainEqual({ type: "stopServing", epoch: 2 });
    expect(b.phase).toBe("idle");
  });

  test("the main active at a lower epoch is the one to step down, not us", () => {
    const b = activeBackup();
    b.on(fromMain({ epoch: 1, activeEpoch: 1 }));
    expect(b.phase).toBe("active@2");
  });

  test("the main unheard, but a client follows it at a higher epoch: step down", () => {
    const b = activeBackup();
    b.on(fromClient("c1", { state: "follow-main", epoch: 3, activeEpoch: 3, msSinceHeardMain: 20 }));
    // Idle, and that same client is a witness that the main lives, so it stays idle.
    expect(b.phase).toBe("idle!main-unreachable-from-backup");
  });

  test("a client's word is ignored when stale, or older than what the main itself told us", () => {
    const b = activeBackup();
    b.on(fromClient("c1", { state: "follow-main", epoch: 3, activeEpoch: 3, msSinceHeardMain: 1500 }));
    expect(b.phase).toBe("active@2");
    b.on(fromMain({ state: "rejoining", epoch: 3, activeEpoch: null })); // heard directly: it knows 3 and is not active
    b.on(fromClient("c2", { state: "follow-main", epoch: 3, activeEpoch: 3, msSinceHeardMain: 20 }));
    expect(b.phase).toBe("active@2");
  });
});

describe("backup: heartbeats", () => {
  test("every heartbeat period to the main and to each client heard within a timeout; a new client gets an answer at once", () => {
    const b = new Backup();
    const first = b.on(fromClient("c1", { msSinceHeardMain: 5 }));
    expect(first.filter((e) => e.type === "send").map((e) => e.type === "send" && e.to)).toEqual([{ role: "client", id: "c1" }]);
    b.effects = [];
    b.run(1000, false);
    const sends = b.effects.filter((e): e is Extract<Effect, { type: "send" }> => e.type === "send");
    const to = (role: string) => sends.filter((e) => e.to.role === role).length;
    expect(to("main")).toBeGreaterThanOrEqual(9);
    expect(to("main")).toBeLessThanOrEqual(11);
    expect(to("client")).toBeGreaterThanOrEqual(9); // c1 heard at the start: beaten for a timeout
  });
});
