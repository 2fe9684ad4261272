/**
 * The engine runner on the active server: a main engine that falls silent is
 * replaced on the router by its backup (the route confirmed by the router's
 * own report), the switch is published and the backup learns whom it stands
 * in for; the engine heard again is switched back after the hold time. Only
 * the active server holds the router, and a new active server adopts the
 * routes it finds rather than switching again.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { backupGroupSchema, type BackupGroup } from "../../../src/core/backup-groups.ts";
import { engineReplacesKey } from "../../../src/core/engine-failover.ts";
import { ROUTER_SWITCH_TOPIC, routerSwitchEventSchema, type LockState, type RouterDriver, type RouterEvent, type RouterSnapshot } from "../../../src/core/router.ts";
import { createLogger } from "../../../src/log.ts";
import { EngineWatch } from "../../../src/machine/engine-watch.ts";
import { VideohubDriver } from "../../../src/services/router/videohub-driver.ts";
import { ManualTimers } from "../../support/clock.ts";
import { VideohubSim } from "../../support/videohub-sim.ts";
import { waitFor } from "../../support/wait-for.ts";

const MAIN = "00000000000000a1";
const SPARE = "00000000000000b1";
const group: BackupGroup = { id: "green", name: "Green", mains: [{ machineId: MAIN, outputs: [{ source: 0, destination: 4 }] }], backup: { machineId: SPARE, sources: [8] }, failoverMode: "auto", switchBack: "auto", holdTimeMs: 2000 };

/** A router held in memory: routes confirm through an event, as a Videohub's status update does. */
class FakeRouter implements RouterDriver {
  /** Destination 4 shows the main engine's source 0 when the test starts. */
  routes: (number | null)[] = Array.from({ length: 12 }, (_, i) => (i === 4 ? 0 : i));
  locks: LockState[] = Array.from({ length: 12 }, () => "U" as const);
  connects = 0;
  closed = false;
  private listeners = new Set<(e: RouterEvent) => void>();
  snapshot(): RouterSnapshot {
    return { model: "fake", inputCount: 12, outputCount: 12, inputLabels: [], outputLabels: [], routes: [...this.routes], locks: [...this.locks] };
  }
  async connect() {
    this.connects++;
    return this.snapshot();
  }
  close() {
    this.closed = true;
  }
  state() {
    return this.closed ? null : this.snapshot();
  }
  async route(destination: number, source: number) {
    this.routes[destination] = source;
    for (const l of this.listeners) l({ kind: "routes", changes: [{ destination, source }], snapshot: this.snapshot() });
  }
  async setLock() {}
  onEvent(listener: (e: RouterEvent) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(event: RouterEvent) {
    for (const l of this.listeners) l(event);
  }
}

function world(groupsAtFirst: BackupGroup[] = [group]) {
  let groups = groupsAtFirst;
  const timers = new ManualTimers();
  const router = new FakeRouter();
  // The backup engine listed first, as a server may list it: the order must not matter.
  const heardAt: Record<string, number> = { [SPARE]: 0, [MAIN]: 0 };
  const published: { topic: string; data: unknown }[] = [];
  const retained = new Map<string, unknown>();
  const silent = new Set<string>();
  const watch = new EngineWatch({
    clock: timers.clock,
    wallNow: () => 1_700_000_000_000 + timers.now,
    timers,
    backups: () => ({ router: { address: "127.0.0.1:9990", enabled: true }, groups }),
    heard: () => Object.entries(heardAt).map(([id, at]) => ({ id, lastHeardMsAgo: timers.now - at })),
    openRouter: () => router,
    publish: (topic, data) => published.push({ topic, data }),
    setRetained: (key, value) => retained.set(key, value),
    readRetained: async (key) => retained.get(key) ?? null,
    log: createLogger(() => "json", () => {}),
  });
  /** Heartbeats every 100 ms from each engine not silenced, for `ms`. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      for (const id of Object.keys(heardAt)) if (!silent.has(id)) heardAt[id] = timers.now;
      timers.advance(100);
      await Promise.resolve();
      await Promise.resolve();
    }
  };
  const setGroups = (next: BackupGroup[]) => (groups = next);
  return { timers, router, watch, published, retained, silent, run, heardAt, setGroups };
}

describe("engine watch", () => {
  test("a lock the router reports in the same read as its dump is kept: the older snapshot connect() resolves with does not undo it", async () => {
    // Found under load: the dump and the lock arrived in one chunk, the driver emitted both events, and the
    // promise's continuation then fed the dump's snapshot again, so the Health panel never showed the lock.
    const w = world();
    w.router.connect = async () => {
      w.router.connects++;
      const dump = w.router.snapshot();
      w.router.emit({ kind: "connected", snapshot: dump });
      w.router.locks[4] = "L";
      w.router.emit({ kind: "locks", changes: [{ destination: 4, lock: "L" }], snapshot: w.router.snapshot() });
      return dump;
    };
    w.watch.activate();
    await w.run(500);
    expect(w.watch.view().router.locks[4]).toBe("L");
    expect(w.watch.view().warnings).toEqual([expect.objectContaining({ destination: 4, problem: "locked" })]);
  });

  test("a silent main engine is replaced by its backup on the router, published, and switched back after the hold time", async () => {
    const w = world();
    w.watch.activate();
    await w.run(1000);
    expect(w.router.routes[4]).toBe(0);
    w.silent.add(MAIN);
    await w.run(5000);
    expect(w.router.routes[4]).toBe(8);
    expect(w.published.filter((p) => p.topic === ROUTER_SWITCH_TOPIC).map((p) => p.data)).toEqual([expect.objectContaining({ groupId: "green", destination: 4, source: 8, from: MAIN, to: SPARE, reason: "silent" })]);
    expect(w.retained.get(engineReplacesKey(SPARE))).toBe(MAIN);
    expect(w.watch.view().engines[MAIN]).toMatchObject({ kind: "replaced", by: SPARE });
    expect(w.watch.alerts()).toEqual([{ engine: MAIN, backup: SPARE, condition: "silent", manual: false }]);

    w.silent.delete(MAIN);
    await w.run(1000);
    expect(w.router.routes[4]).toBe(8);
    await w.run(3000);
    expect(w.router.routes[4]).toBe(0);
    expect(w.retained.get(engineReplacesKey(SPARE))).toBeNull();
    expect(w.watch.alerts()).toEqual([]);
  });

  test("heartbeats the runner reads late (a busy server: each seen 250 ms old) keep a live engine on air; time never runs back", async () => {
    // Found by the engines e2e: only heartbeats at most one tick old were fed, so a loaded main judged live engines silent and flapped the router.
    const w = world();
    w.watch.activate();
    for (let t = 0; t < 6000; t += 100) {
      w.heardAt[MAIN] = w.timers.now - 250;
      w.heardAt[SPARE] = w.timers.now - 250;
      w.timers.advance(100);
      await Promise.resolve();
    }
    expect(w.router.routes[4]).toBe(0);
    expect(w.published.filter((p) => p.topic === ROUTER_SWITCH_TOPIC)).toEqual([]);
    expect(w.watch.view().engines[MAIN]).toMatchObject({ kind: "on-air" });
  });

  test("a group created while the server serves meets its engines as heard: nothing is switched", async () => {
    // Found by the engines e2e: the new group was decided before the heartbeats, every engine counted silent since the server began, and the backup went on air.
    const w = world([]);
    w.watch.activate();
    await w.run(5000);
    w.setGroups([group]);
    await w.run(3000);
    expect(w.router.routes[4]).toBe(0);
    expect(w.published.filter((p) => p.topic === ROUTER_SWITCH_TOPIC)).toEqual([]);
  });

  test("a server stalled past the silence timeout, then hearing every engine again, switches nothing (whatever order it lists them in)", async () => {
    // Found by the engines e2e on a loaded machine: each heartbeat was fed with its own decision, so the backup, read first, went on air for a moment.
    const w = world();
    w.watch.activate();
    await w.run(1000);
    const stalledAt = w.timers.now;
    w.timers.advance(3_600);
    await Promise.resolve();
    for (const id of Object.keys(w.heardAt)) w.heardAt[id] = stalledAt + 3_590;
    await w.run(1000);
    expect(w.router.routes[4]).toBe(0);
    expect(w.published.filter((p) => p.topic === ROUTER_SWITCH_TOPIC)).toEqual([]);
  });

  test("only while active: deactivated it lets go of the router; activated again it adopts the routes it finds", async () => {
    const w = world();
    w.watch.activate();
    await w.run(500);
    w.watch.deactivate();
    expect(w.router.closed).toBe(true);
    expect(() => w.watch.manual("green", MAIN, "backup")).toThrow("server that serves");
    // Meanwhile the other server put the backup on air by hand; this one takes over and leaves it.
    w.router.routes[4] = 8;
    w.router.closed = false;
    w.watch.activate();
    await w.run(1000);
    expect(w.router.connects).toBe(2);
    expect(w.router.routes[4]).toBe(8);
    w.watch.manual("green", MAIN, "main");
    await w.run(200);
    expect(w.router.routes[4]).toBe(0);
  });
});

/** The watch against the loopback Videohub simulator through the production driver (checked on the simulator's own state). */
function onVideohub(sim: VideohubSim) {
  const timers = new ManualTimers();
  const heardAt: Record<string, number> = { green: 0, spare: 0 };
  const switches: unknown[] = [];
  const studioA = backupGroupSchema.parse({
    id: "studio-a",
    name: "Studio A",
    mains: [{ machineId: "green", outputs: [{ source: 0, destination: 10 }] }],
    backup: { machineId: "spare", sources: [5] },
    failoverMode: "auto",
    switchBack: "auto",
    holdTimeMs: 2_000,
  });
  const watch = new EngineWatch({
    clock: timers.clock,
    wallNow: () => timers.now,
    timers,
    timings: { silenceMs: 1_000, framesFrozenMs: 500, routeRetryMs: 1_000 },
    backups: () => ({ router: { address: `127.0.0.1:${sim.port}`, enabled: true }, groups: [studioA] }),
    heard: () => Object.entries(heardAt).map(([id, at]) => ({ id, lastHeardMsAgo: timers.now - at })),
    openRouter: () => new VideohubDriver({ host: "127.0.0.1", port: sim.port, clock: timers.clock, timers }),
    publish: (topic, data) => topic === ROUTER_SWITCH_TOPIC && switches.push(data),
    setRetained: () => {},
    readRetained: async () => null,
    log: createLogger(() => "json", () => {}),
  });
  cleanups.push(() => watch.deactivate(), () => sim.stop());
  /** 100 ms steps, the engines in `alive` heard at each. */
  const step = async (count: number, alive: string[]) => {
    for (let i = 0; i < count; i++) {
      for (const id of alive) heardAt[id] = timers.now;
      timers.advance(100);
      await Bun.sleep(1);
    }
  };
  return { watch, switches, step };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe("engine watch on a Videohub", () => {
  test("engine silent → the router's destination goes to the backup, and back after the hold", async () => {
    const sim = new VideohubSim().start();
    const v = onVideohub(sim);
    v.watch.activate();
    await waitFor("the main on air", async () => (await v.step(1, ["green", "spare"]), sim.routes[10] === 0));
    await v.step(15, ["spare"]);
    await waitFor("the backup on air", async () => (await v.step(1, ["spare"]), sim.routes[10] === 5));
    expect(v.switches.at(-1)).toMatchObject({ destination: 10, source: 5, from: "green", to: "spare", reason: "silent" });
    expect(routerSwitchEventSchema.safeParse(v.switches.at(-1)).success).toBe(true);
    await v.step(25, ["green", "spare"]);
    await waitFor("the main back on air", async () => (await v.step(1, ["green", "spare"]), sim.routes[10] === 0));
    expect(v.switches.at(-1)).toMatchObject({ destination: 10, source: 0, to: "green", reason: "switch-back" });
  });

  test("a destination another client locked is not switched; the watch never forces it", async () => {
    const sim = new VideohubSim().start();
    sim.routes[10] = 0;
    sim.lockOwners[10] = "other";
    const v = onVideohub(sim);
    v.watch.activate();
    await waitFor("the router's state read", async () => (await v.step(1, ["spare"]), v.watch.view().router.connected));
    await v.step(20, ["spare"]);
    expect(sim.requests).toEqual([]);
    expect(sim.routes[10]).toBe(0);
    expect(v.watch.view().warnings.length).toBeGreaterThan(0);
  });
});
