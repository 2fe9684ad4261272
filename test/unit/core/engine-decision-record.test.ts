/**
 * The decision a server keeps on the Data Hub for the next one, and how the
 * next one takes it back (docs/design.md §Render-engine backups): times cross
 * between the servers' clocks by wall time; anything that is not a record is
 * ignored; a kept stand-in for a main no longer in the group is dropped; a
 * heartbeat heard earlier than the one known changes nothing.
 */
import { describe, expect, test } from "bun:test";
import { backupGroupSchema } from "../../../src/core/backup-groups.ts";
import { decisionRecord, parseDecisionRecord, restoredDecision } from "../../../src/core/engine-decision-record.ts";
import { engineCondition, initialEngineFailover, transition, type EngineFailoverEvent, type EngineFailoverState } from "../../../src/core/engine-failover.ts";

const group = backupGroupSchema.parse({
  id: "green",
  name: "Green",
  mains: [{ machineId: "render-1", outputs: [{ source: 0, destination: 4 }] }],
  backup: { machineId: "spare", sources: [8] },
  failoverMode: "auto",
  switchBack: "auto",
  holdTimeMs: 2_000,
});
const timings = { silenceMs: 1_000, framesFrozenMs: 500, routeRetryMs: 1_000 };

function apply(state: EngineFailoverState, steps: [number, EngineFailoverEvent][]): EngineFailoverState {
  for (const [at, event] of steps) state = transition(state, event, at).state;
  return state;
}

describe("the kept engine decision", () => {
  test("a manual stand-in and the hold time's start cross to a server whose clock differs", () => {
    const a = apply(initialEngineFailover([group], 0, timings), [
      [100, { kind: "heard", machineId: "render-1" }],
      [100, { kind: "heard", machineId: "spare" }],
      [200, { kind: "manual", groupId: "green", mainId: "render-1", to: "backup" }],
    ]);
    // Server A's clock reads 200 when the wall reads 1,000,200; server B's reads 50,000 then.
    const record = decisionRecord(a, "green", 1_000_000)!;
    expect(record).toEqual({ standIn: { mainId: "render-1", manual: true, reason: "manual", since: 1_000_200 }, declined: [], holdSince: 1_000_100 });
    const onB = restoredDecision(parseDecisionRecord(JSON.parse(JSON.stringify(record)))!, 1_000_200 - 50_000);
    expect(onB).toEqual({ standIn: { mainId: "render-1", manual: true, reason: "manual", since: 50_000 }, declined: [], holdSince: 49_900 });
    const b = apply(initialEngineFailover([group], 50_000, timings), [
      [50_000, { kind: "heard", machineId: "render-1" }],
      [50_000, { kind: "heard", machineId: "spare" }],
      [50_000, { kind: "restore", groupId: "green", decision: onB }],
      [50_000, { kind: "router", connected: true, routes: [0, 1, 2, 3, 8], locks: [] }],
    ]);
    expect(b.decisions.green).toMatchObject({ standIn: { mainId: "render-1", manual: true }, fitSince: { "render-1": 49_900 } });
  });

  test("anything but a record is no record", () => {
    for (const value of [null, "render-1", 7, { standIn: null }, { standIn: null, declined: [], holdSince: -1 }, { standIn: { mainId: "x", manual: "yes", reason: "manual", since: 1 }, declined: [], holdSince: null }]) {
      expect(parseDecisionRecord(value)).toBeNull();
    }
    expect(parseDecisionRecord({ standIn: null, declined: [], holdSince: null })).toEqual({ standIn: null, declined: [], holdSince: null });
  });

  test("a kept stand-in for an engine no longer a main of the group is dropped, and so are its declines", () => {
    const state = apply(initialEngineFailover([group], 0, timings), [
      [0, { kind: "restore", groupId: "green", decision: { standIn: { mainId: "render-9", manual: true, reason: "manual", since: 0 }, declined: ["render-9"], holdSince: null } }],
      [0, { kind: "restore", groupId: "nope", decision: { standIn: null, declined: [], holdSince: null } }],
    ]);
    expect(state.decisions.green).toMatchObject({ standIn: null, declined: [] });
    expect(state.decisions.nope).toBeUndefined();
  });

  test("a heartbeat heard before the one known changes nothing; one heard long ago makes the engine silent at once", () => {
    let state = apply(initialEngineFailover([group], 10_000, timings), [[10_000, { kind: "heard", machineId: "render-1", at: 7_000 }]]);
    expect(engineCondition(state, "render-1", 10_000)).toBe("silent");
    state = apply(state, [
      [10_100, { kind: "heard", machineId: "render-1" }],
      [10_200, { kind: "heard", machineId: "render-1", at: 9_000 }],
    ]);
    expect(state.engines["render-1"]?.lastHeardAt).toBe(10_100);
  });
});
