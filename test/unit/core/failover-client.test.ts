import { describe, expect, test } from "bun:test";
import { DEFAULT_TIMINGS } from "../../../src/core/failure-detector.ts";
import {
  clientTransition,
  startClient,
  statusChip,
  tickPeriodMs,
  transition,
  type BeatBody,
  type ClientEvent,
  type ClientState,
  type Effect,
} from "../../../src/core/failover/index.ts";
import { ManualClock } from "../../support/clock.ts";

const TICK = tickPeriodMs(DEFAULT_TIMINGS.heartbeatMs);

const server = (role: "main" | "backup", state: BeatBody["state"], epoch: number, active: boolean): ClientEvent => ({
  type: "heartbeat",
  id: role === "main" ? "m" : "b",
  beat: { role, state, epoch, activeEpoch: active ? epoch : null, msSinceHeardMain: 0, msSinceHeardBackup: 0, condition: null, syncProgress: null, pairedWith: null, lanes: null, hubCopied: null },
});
const mainActive = (e: number) => server("main", "active", e, true);
const backupActive = (e: number) => server("backup", "active", e, true);
const backupIdle = (e: number) => server("backup", "idle", e, false);
const mainRejoining = (e: number) => server("main", "rejoining", e, false);

class Client {
  readonly clock = new ManualClock(1000);
  state: ClientState;
  effects: Effect[] = [];
  constructor(knows = { main: true, backup: true }) {
    const r = startClient({ timings: DEFAULT_TIMINGS, knows }, this.clock.now());
    this.state = r.state;
    this.effects.push(...r.effects);
  }
  on(ev: ClientEvent): Effect[] {
    const r = clientTransition(this.state, ev, this.clock.now());
    this.state = r.state;
    this.effects.push(...r.effects);
    return [...r.effects];
  }
  /** Ticks for `ms`, hearing `beats` every 100 ms. */
  run(ms: number, ...beats: ClientEvent[]): void {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.advance(TICK);
      if (this.clock.now() % 100 === 0) for (const b of beats) this.on(b);
      this.on({ type: "tick" });
    }
  }
  get follows(): string {
    return this.state.following === null ? "none" : `${this.state.following}@${this.state.followingEpoch}`;
  }
}

describe("client: which server to follow", () => {
  // what the client hears → whom it follows
  const table: [string, ClientEvent[], string][] = [
    ["nothing heard", [], "none"],
    ["the main active", [mainActive(1), backupIdle(1)], "main@1"],
    ["the backup took over at a higher epoch", [mainActive(1), backupActive(2)], "backup@2"],
    ["the main took back at a higher epoch", [backupActive(2), mainActive(3)], "main@3"],
    ["the main back but still rejoining", [mainRejoining(2), backupActive(2)], "backup@2"],
    ["no server active", [mainRejoining(3), backupIdle(3)], "none"],
  ];
  for (const [name, beats, expected] of table) {
    test(`${name}: ${expected}`, () => {
      const c = new Client();
      c.run(500, ...beats);
      expect(c.follows).toBe(expected);
    });
  }

  test("a change of server is one follow effect, and both servers are told at once", () => {
    const c = new Client();
    const fx = c.on(mainActive(1));
    expect(fx.filter((e) => e.type === "follow")).toEqual([{ type: "follow", server: "main", epoch: 1 }]);
    const sends = fx.filter((e): e is Extract<Effect, { type: "send" }> => e.type === "send");
    expect(sends.map((e) => e.to.role).sort()).toEqual(["backup", "main"]);
    expect(sends[0]!.beat).toMatchObject({ role: "client", state: "follow-main", activeEpoch: 1, epoch: 1, msSinceHeardMain: 0 });
  });

  test("a silent main is dropped after the timeout, not before", () => {
    const c = new Client();
    c.run(300, mainActive(1), backupActive(2));
    expect(c.follows).toBe("backup@2");
    const d = new Client();
    d.run(300, mainActive(1));
    d.run(900); // silent, under the timeout
    expect(d.follows).toBe("main@1");
    d.run(200);
    expect(d.follows).toBe("none");
  });

  test("a broken hub socket drops the main at once and says so to the backup", () => {
    const c = new Client();
    c.run(300, mainActive(1), backupIdle(1));
    const fx = c.on({ type: "linkBroken", peer: "main" });
    expect(c.follows).toBe("none");
    const toBackup = fx.find((e) => e.type === "send" && e.to.role === "backup");
    expect(toBackup?.type === "send" && toBackup.beat.msSinceHeardMain).toBeNull();
  });

  test("after a stall of its own the client keeps its server until it has read what queued up", () => {
    const c = new Client();
    c.run(300, mainActive(1));
    c.clock.advance(5000);
    c.on({ type: "tick" });
    expect(c.follows).toBe("main@1");
    c.on(mainActive(1));
    expect(c.follows).toBe("main@1");
  });

  test("started while the main is down, knowing the backup's address: follows the active backup", () => {
    const c = new Client();
    c.run(100, backupActive(2));
    expect(c.follows).toBe("backup@2");
    expect(statusChip(c.state, c.clock.now()).text).toBe("Backup is active");
  });

  test("knowing only the main: heartbeats only the main; told the backup's address, heartbeats both", () => {
    const c = new Client({ main: true, backup: false });
    c.effects = [];
    c.run(200);
    expect(new Set(c.effects.flatMap((e) => (e.type === "send" ? [e.to.role] : [])))).toEqual(new Set(["main"]));
    c.on({ type: "setServers", main: true, backup: true });
    c.effects = [];
    c.run(200);
    expect(new Set(c.effects.flatMap((e) => (e.type === "send" ? [e.to.role] : [])))).toEqual(new Set(["main", "backup"]));
  });

  test("heartbeats go out once per period", () => {
    const c = new Client();
    c.effects = [];
    c.run(1000);
    expect(c.effects.filter((e) => e.type === "send" && e.to.role === "main")).toHaveLength(10);
  });

  test("the unified transition dispatches on the role", () => {
    const c = new Client();
    const r = transition(c.state, mainActive(1), c.clock.now());
    expect(r.state.following).toBe("main");
  });
});

describe("client: a failback it has not heard the main's side of yet", () => {
  test("the backup it follows steps down before the main's active beat arrives: no 'No server reachable' within a timeout, then it is", () => {
    const c = new Client();
    c.run(300, backupActive(2));
    expect(c.follows).toBe("backup@2");
    c.on(backupIdle(2));
    expect(c.follows).toBe("none");
    expect(statusChip(c.state, c.clock.now()).text).toBe("Backup is active");
    c.on(mainActive(3));
    expect(c.follows).toBe("main@3");
    expect(statusChip(c.state, c.clock.now()).text).not.toBe("No server reachable");
  });

  test("the main never comes: after a failover timeout the chip says so", () => {
    const c = new Client();
    c.run(300, backupActive(2));
    c.on(backupIdle(2));
    c.run(DEFAULT_TIMINGS.failoverTimeoutMs + 100, backupIdle(2));
    expect(statusChip(c.state, c.clock.now()).text).toBe("No server reachable");
  });
});

test("client: the backup's socket closing as it steps down, before its idle beat, is a switch underway too", () => {
  const c = new Client();
  c.run(300, backupActive(2));
  c.on({ type: "linkBroken", peer: "backup" });
  expect(c.follows).toBe("none");
  expect(statusChip(c.state, c.clock.now()).text).toBe("Backup is active");
  c.on(mainActive(3));
  expect(c.follows).toBe("main@3");
});
