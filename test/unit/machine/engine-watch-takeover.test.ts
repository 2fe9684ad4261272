/**
 * The engine runner across a server failover
 * (docs/design.md §Render-engine backups): two runners, one per server, share one router and one Data Hub
 * (a map standing in for the retained state the backup copies). What the
 * first one decided (a manual switch, the hold time's start, whom the backup
 * replaces) is kept in force by the second, which also reads the engines'
 * retained health and frames at activation rather than waiting for a change.
 */
import { describe, expect, test } from "bun:test";
import type { BackupGroup } from "../../../src/core/backup-groups.ts";
import { engineDecisionKey } from "../../../src/core/engine-decision-record.ts";
import { engineHealthKey, engineReplacesKey } from "../../../src/core/engine-failover.ts";
import type { LockState, RouterDriver, RouterEvent, RouterSnapshot } from "../../../src/core/router.ts";
import { createLogger } from "../../../src/log.ts";
import { EngineWatch } from "../../../src/machine/engine-watch.ts";
import { ManualTimers } from "../../support/clock.ts";

const MAIN = "00000000000000a1";
const SPARE = "00000000000000b1";
const HOLD_MS = 2_000;
const group: BackupGroup = { id: "green", name: "Green", mains: [{ machineId: MAIN, outputs: [{ source: 0, destination: 4 }] }], backup: { machineId: SPARE, sources: [8] }, failoverMode: "auto", switchBack: "auto", holdTimeMs: HOLD_MS };

/** One router both servers reach; routes confirm through an event, as a Videohub's status update does. */
class SharedRouter {
  routes: (number | null)[] = Array.from({ length: 12 }, (_, i) => (i === 4 ? 0 : i));
  locks: LockState[] = Array.from({ length: 12 }, () => "U" as const);
  commands: { destination: number; source: number }[] = [];
  snapshot(): RouterSnapshot {
    return { model: "fake", inputCount: 12, outputCount: 12, inputLabels: [], outputLabels: [], routes: [...this.routes], locks: [...this.locks] };
  }
  /** A connection of one server: events reach it only while it is open. */
  open(): RouterDriver {
    const listeners = new Set<(e: RouterEvent) => void>();
    let closed = false;
    return {
      connect: async () => this.snapshot(),
      close: () => void (closed = true),
      state: () => (closed ? null : this.snapshot()),
      route: async (destination: number, source: number) => {
        if (closed) throw new Error("closed");
        this.commands.push({ destination, source });
        this.routes[destination] = source;
        for (const l of listeners) l({ kind: "routes", changes: [{ destination, source }], snapshot: this.snapshot() });
      },
      setLock: async () => {},
      onEvent: (listener: (e: RouterEvent) => void) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    } as RouterDriver;
  }
}

function world() {
  const timers = new ManualTimers();
  const router = new SharedRouter();
  /** The Data Hub's retained state, as every server reads it after a switch. */
  const hub = new Map<string, unknown>();
  const writes: { key: string; value: unknown }[] = [];
  const heardAt: Record<string, number> = { [MAIN]: 0, [SPARE]: 0 };
  const silent = new Set<string>();
  const server = (opts: { hearsMain?: boolean; readRetained?: (key: string) => Promise<unknown> } = {}) =>
    new EngineWatch({
      clock: timers.clock,
      wallNow: () => 1_700_000_000_000 + timers.now,
      timers,
      backups: () => ({ router: { address: "127.0.0.1:9990", enabled: true }, groups: [group] }),
      heard: () => Object.entries(heardAt).filter(([id]) => opts.hearsMain !== false || id !== MAIN).map(([id, at]) => ({ id, lastHeardMsAgo: timers.now - at })),
      openRouter: () => router.open(),
      publish: () => {},
      setRetained: (key, value) => {
        writes.push({ key, value });
        hub.set(key, value);
      },
      readRetained: opts.readRetained ?? (async (key) => hub.get(key) ?? null),
      log: createLogger(() => "json", () => {}),
    });
  /** 100 ms steps, each engine not silenced heard at each. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      for (const id of Object.keys(heardAt)) if (!silent.has(id)) heardAt[id] = timers.now;
      timers.advance(100);
      for (let i = 0; i < 6; i++) await Promise.resolve();
    }
  };
  return { timers, router, hub, writes, silent, server, run };
}

describe("engine runner across a server failover", () => {
  test("a manual switch to the backup stays in force after the other server takes over", async () => {
    const w = world();
    const main = w.server();
    main.activate();
    await w.run(1_000);
    main.manual("green", MAIN, "backup");
    await w.run(300);
    expect(w.router.routes[4]).toBe(8);
    expect(w.hub.get(engineDecisionKey("green"))).toMatchObject({ standIn: { mainId: MAIN, manual: true, reason: "manual" } });

    main.deactivate();
    const backup = w.server();
    backup.activate();
    // The main engine is fit all along: only the operator brings it back.
    await w.run(4 * HOLD_MS);
    expect(w.router.routes[4]).toBe(8);
    expect(backup.view().engines[MAIN]).toMatchObject({ kind: "replaced", reason: "manual" });
    expect(backup.alerts()).toEqual([{ engine: MAIN, backup: SPARE, condition: "ok", manual: false }]);
    backup.manual("green", MAIN, "main");
    await w.run(300);
    expect(w.router.routes[4]).toBe(0);
    expect(w.hub.get(engineReplacesKey(SPARE))).toBeNull();
  });

  test("the backup's 'replaces' is kept through the takeover, never blinking to null, and cleared on switch back", async () => {
    const w = world();
    const main = w.server();
    main.activate();
    await w.run(1_000);
    w.silent.add(MAIN);
    await w.run(5_000);
    expect(w.router.routes[4]).toBe(8);
    expect(w.hub.get(engineReplacesKey(SPARE))).toBe(MAIN);

    main.deactivate();
    const since = w.writes.length;
    const backup = w.server();
    backup.activate();
    await w.run(2_000);
    expect(w.router.routes[4]).toBe(8);
    expect(w.writes.slice(since).filter((x) => x.key === engineReplacesKey(SPARE))).toEqual([]);
    expect(w.router.commands.filter((c) => c.source === 0)).toEqual([]);

    w.silent.delete(MAIN);
    await w.run(HOLD_MS + 1_000);
    expect(w.router.routes[4]).toBe(0);
    expect(w.writes.slice(since).filter((x) => x.key === engineReplacesKey(SPARE)).map((x) => x.value)).toEqual([null]);
  });

  test("the hold time started on the previous server is not restarted by the takeover", async () => {
    const w = world();
    const main = w.server();
    main.activate();
    await w.run(1_000);
    w.silent.add(MAIN);
    await w.run(5_000);
    expect(w.router.routes[4]).toBe(8);
    w.silent.delete(MAIN);
    await w.run(HOLD_MS - 500);
    expect(w.router.routes[4]).toBe(8);

    main.deactivate();
    const backup = w.server();
    backup.activate();
    await w.run(1_000);
    // 500 ms of the hold were left: switched back well before a fresh hold would end.
    expect(w.router.routes[4]).toBe(0);
  });

  test("a new active server never switches back to a main engine it has not heard itself", async () => {
    const w = world();
    w.router.routes[4] = 8;
    const backup = w.server({ hearsMain: false });
    backup.activate();
    await w.run(4 * HOLD_MS);
    expect(w.router.routes[4]).toBe(8);
    expect(w.router.commands).toEqual([]);
  });

  test("retained health already on the hub is read at activation: an unhealthy main is replaced without waiting for a change", async () => {
    const w = world();
    w.hub.set(engineHealthKey(MAIN), "unhealthy");
    const backup = w.server();
    backup.activate();
    await w.run(500);
    expect(w.router.routes[4]).toBe(8);
    expect(backup.view().engines[MAIN]).toMatchObject({ kind: "replaced", condition: "unhealthy" });
  });

  test("a switch asked before the kept decision is read is refused, not overwritten by it", async () => {
    const w = world();
    const slow = w.server({ readRetained: () => new Promise<unknown>(() => {}) });
    slow.activate();
    expect(slow.reading).toBe(true);
    expect(() => slow.manual("green", MAIN, "backup")).toThrow("reading the engines' state");
    // The hub never answers: after its wait the runner decides without it.
    await w.run(2_500);
    expect(slow.reading).toBe(false);
    slow.manual("green", MAIN, "backup");
    await w.run(300);
    expect(w.router.routes[4]).toBe(8);
    slow.deactivate();
  });

  test("values heard while standing by are replayed at activation, and a deleted one is not", async () => {
    const w = world();
    const backup = w.server();
    backup.signal({ kind: "frames", machineId: SPARE, frames: 41 });
    backup.signal({ kind: "health", machineId: MAIN, healthy: false });
    backup.forget("health", MAIN);
    backup.signal({ kind: "health", machineId: SPARE, healthy: true });
    backup.activate();
    expect(backup.view().signals[SPARE]).toMatchObject({ frames: 41, healthy: true });
    expect(backup.view().signals[MAIN]?.healthy ?? null).toBeNull();
  });

  test("a garbage decision on the hub is ignored: the router's routes decide", async () => {
    const w = world();
    w.hub.set(engineDecisionKey("green"), { standIn: "everything", declined: 7 });
    w.router.routes[4] = 8;
    const backup = w.server();
    backup.activate();
    await w.run(1_000);
    expect(backup.view().engines[MAIN]).toMatchObject({ kind: "replaced", by: SPARE });
    expect(w.hub.get(engineDecisionKey("green"))).toMatchObject({ standIn: { mainId: MAIN, manual: false } });
  });
});
