import { describe, expect, test } from "bun:test";
import { backupGroupSchema, groupProblems, type BackupGroup } from "../../../src/core/backup-groups.ts";
import {
  initialEngineFailover,
  transition,
  type EngineFailoverEvent,
  type EngineFailoverState,
  type RouteCommand,
} from "../../../src/core/engine-failover.ts";
import { engineStatuses, routeWarnings, standIns } from "../../../src/core/engine-failover-views.ts";

const group: BackupGroup = backupGroupSchema.parse({
  id: "studio-a",
  name: "Studio A",
  mains: [
    { machineId: "green", outputs: [{ source: 0, destination: 10 }] },
    { machineId: "blue", outputs: [{ source: 1, destination: 11 }] },
  ],
  backup: { machineId: "spare", sources: [5] },
  failoverMode: "auto",
  switchBack: "auto",
  holdTimeMs: 5_000,
});
const timings = { silenceMs: 3_000, framesFrozenMs: 1_000, routeRetryMs: 2_000 };
const ENGINES = ["green", "blue", "spare"];

/** A run of events at times; returns the state and every command sent. */
function run(steps: [number, EngineFailoverEvent][], g: BackupGroup = group) {
  let state: EngineFailoverState = initialEngineFailover([g], 0, timings);
  const commands: (RouteCommand & { at: number })[] = [];
  let refusal: string | undefined;
  for (const [at, event] of steps) {
    const result = transition(state, event, at);
    state = result.state;
    refusal = result.refusal ?? refusal;
    commands.push(...result.commands.map((c) => ({ ...c, at })));
  }
  return { state, commands, refusal };
}
const heardAll = (at: number, except: string[] = []): [number, EngineFailoverEvent][] =>
  ENGINES.filter((id) => !except.includes(id)).map((machineId) => [at, { kind: "heard", machineId }]);
const router = (routes: (number | null)[], locks: ("O" | "L" | "U")[] = []): EngineFailoverEvent => {
  const full: (number | null)[] = Array(12).fill(null);
  routes.forEach((r, i) => (full[i] = r));
  const l: ("O" | "L" | "U")[] = Array(12).fill("U");
  locks.forEach((x, i) => (l[i] = x));
  return { kind: "router", connected: true, routes: full, locks: l };
};
const onAir = (green: number, blue: number) => router([...Array(10).fill(null), green, blue]);
const startOk: [number, EngineFailoverEvent][] = [...heardAll(0), [0, onAir(0, 1)]];

describe("engine failover decision", () => {
  const cases: { name: string; steps: [number, EngineFailoverEvent][]; commands: Partial<RouteCommand>[]; status?: Record<string, string> }[] = [
    { name: "all fit: nothing switches", steps: [...startOk, ...heardAll(2_000), [2_500, { kind: "tick" }]], commands: [], status: { green: "on-air", spare: "standby" } },
    {
      name: "main silent past the timeout: its destination goes to the backup",
      steps: [...startOk, ...heardAll(2_000, ["green"]), [4_000, { kind: "tick" }]],
      commands: [{ destination: 10, source: 5, from: "green", to: "spare", reason: "silent" }],
      status: { green: "replaced", spare: "standing-in" },
    },
    {
      name: "main says unhealthy",
      steps: [...startOk, [100, { kind: "health", machineId: "green", healthy: false }]],
      commands: [{ destination: 10, source: 5, reason: "unhealthy" }],
    },
    {
      name: "frame counter stops advancing",
      steps: [...startOk, [0, { kind: "frames", machineId: "blue", frames: 7 }], [500, { kind: "frames", machineId: "blue", frames: 8 }], [900, { kind: "frames", machineId: "blue", frames: 8 }], [1_600, { kind: "tick" }]],
      commands: [{ destination: 11, source: 5, reason: "frozen" }],
    },
    {
      name: "an unhealthy backup is never routed to air",
      steps: [...startOk, [50, { kind: "health", machineId: "spare", healthy: false }], [100, { kind: "health", machineId: "green", healthy: false }]],
      commands: [],
      status: { green: "failed-no-backup", spare: "standby" },
    },
    {
      name: "two mains fail: the first keeps the backup, the second has none",
      steps: [...startOk, [100, { kind: "health", machineId: "blue", healthy: false }], [200, { kind: "health", machineId: "green", healthy: false }]],
      commands: [{ destination: 11, source: 5, reason: "unhealthy" }],
      status: { blue: "replaced", green: "failed-no-backup" },
    },
    {
      name: "a locked destination is not switched (never forced)",
      steps: [...heardAll(0), [0, router([...Array(10).fill(null), 0, 1], [...Array(10).fill("U"), "L"])], [100, { kind: "health", machineId: "green", healthy: false }]],
      commands: [],
    },
    {
      name: "manual failover mode: the decision waits for the operator",
      steps: [...startOk, [100, { kind: "health", machineId: "green", healthy: false }]],
      commands: [],
      status: { green: "failed-no-backup" },
    },
    {
      name: "manual switch of a fit main to the backup",
      steps: [...startOk, [100, { kind: "manual", groupId: "studio-a", mainId: "blue", to: "backup" }]],
      commands: [{ destination: 11, source: 5, reason: "manual" }],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const g = c.name.startsWith("manual failover mode") ? { ...group, failoverMode: "manual" as const } : group;
      const { state, commands } = run(c.steps, g);
      expect(commands.length).toBe(c.commands.length);
      c.commands.forEach((want, i) => expect(commands[i]).toMatchObject(want));
      const at = c.steps.at(-1)![0];
      const statuses = engineStatuses(state, at);
      for (const [id, kind] of Object.entries(c.status ?? {})) expect(statuses[id]?.kind).toBe(kind as never);
    });
  }

  test("switch back only after the main is fit for the hold time; flapping resets the wait", () => {
    const steps: [number, EngineFailoverEvent][] = [...startOk, [100, { kind: "health", machineId: "green", healthy: false }], [100, router([...Array(10).fill(null), 5, 1])]];
    for (let t = 1_000; t <= 20_000; t += 1_000) steps.push(...heardAll(t));
    steps.push([2_000, { kind: "health", machineId: "green", healthy: true }]);
    steps.push([4_000, { kind: "health", machineId: "green", healthy: false }]);
    steps.push([4_500, { kind: "health", machineId: "green", healthy: true }]);
    steps.sort((a, b) => a[0] - b[0]);
    const { commands } = run(steps);
    const back = commands.filter((c) => c.source === 0);
    expect(back[0]).toMatchObject({ destination: 10, reason: "switch-back", to: "green" });
    expect(back[0]!.at).toBeGreaterThanOrEqual(4_500 + 5_000);
  });

  test("a main waiting out its hold gives the backup up to a main that fails meanwhile (sim seed 10)", () => {
    const steps: [number, EngineFailoverEvent][] = [
      ...startOk,
      [100, { kind: "health", machineId: "blue", healthy: false }],
      [100, onAir(0, 5)],
      [1_000, { kind: "health", machineId: "blue", healthy: true }],
      ...heardAll(2_000),
      [2_000, { kind: "health", machineId: "green", healthy: false }],
    ];
    const { commands, state } = run(steps);
    expect(commands.map((c) => [c.destination, c.source, c.at])).toEqual([[11, 5, 100], [10, 5, 2_000], [11, 1, 2_000]]);
    expect(standIns(state)).toEqual({ spare: "green" });
  });

  test("switch back manual: stays on the backup until the operator says", () => {
    const g = { ...group, switchBack: "manual" as const };
    const steps: [number, EngineFailoverEvent][] = [...startOk, [100, { kind: "health", machineId: "green", healthy: false }], [100, router([...Array(10).fill(null), 5, 1])], [200, { kind: "health", machineId: "green", healthy: true }]];
    for (let t = 1_000; t <= 20_000; t += 1_000) steps.push(...heardAll(t));
    const tail: [number, EngineFailoverEvent][] = [[20_000, { kind: "manual", groupId: "studio-a", mainId: "green", to: "main" }]];
    const { commands } = run([...steps, ...tail], g);
    expect(commands.map((c) => [c.source, c.at])).toEqual([[5, 100], [0, 20_000]]);
  });

  test("a command not confirmed is sent again after the retry time, not before", () => {
    const steps: [number, EngineFailoverEvent][] = [...startOk, [100, { kind: "health", machineId: "green", healthy: false }], [1_000, { kind: "tick" }], [2_200, { kind: "tick" }]];
    expect(run(steps).commands.map((c) => c.at)).toEqual([100, 2_200]);
  });

  test("a new active server adopts a switch it finds on the router and does not switch back a failed main", () => {
    const steps: [number, EngineFailoverEvent][] = [...heardAll(0), [0, { kind: "health", machineId: "green", healthy: false }], [0, onAir(5, 1)], [1_000, { kind: "tick" }]];
    const { state, commands } = run(steps);
    expect(commands).toEqual([]);
    expect(standIns(state)).toEqual({ spare: "green" });
  });

  test("a new active server that finds a fit main on the backup returns it after the hold time", () => {
    const steps: [number, EngineFailoverEvent][] = [[0, onAir(5, 1)]];
    for (let t = 0; t <= 6_000; t += 1_000) steps.push(...heardAll(t));
    const { commands } = run(steps);
    expect(commands.map((c) => [c.destination, c.source, c.at])).toEqual([[10, 0, 5_000]]);
  });

  test("manual switch to an unfit backup is refused with a reason", () => {
    const steps: [number, EngineFailoverEvent][] = [...startOk, [0, { kind: "health", machineId: "spare", healthy: false }], [10, { kind: "manual", groupId: "studio-a", mainId: "green", to: "backup" }]];
    const { commands, refusal } = run(steps);
    expect(commands).toEqual([]);
    expect(refusal).toContain("unhealthy");
  });

  test("a locked destination is reported before any engine fails", () => {
    const { state } = run([...heardAll(0), [0, router([...Array(10).fill(null), 0, 1], [...Array(11).fill("U"), "L"])]]);
    expect(routeWarnings(state).map((w) => [w.problem, w.destination])).toEqual([["locked", 11]]);
  });
});

describe("backup group checks", () => {
  const base = { id: "g", name: "G", backup: { machineId: "b", sources: [3] }, failoverMode: "auto", switchBack: "auto", holdTimeMs: 5_000 };
  test("a main and its backup need the same number of outputs", () => {
    const r = backupGroupSchema.safeParse({ ...base, mains: [{ machineId: "m", outputs: [{ source: 0, destination: 0 }, { source: 1, destination: 1 }] }] });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain("same number of outputs");
  });
  test("a destination in two groups is refused; different licenses are a warning", () => {
    const a = backupGroupSchema.parse({ ...base, mains: [{ machineId: "m", outputs: [{ source: 0, destination: 4 }] }] });
    const b = backupGroupSchema.parse({ ...base, id: "h", name: "H", backup: { machineId: "c", sources: [9] }, mains: [{ machineId: "n", outputs: [{ source: 1, destination: 4 }] }] });
    expect(groupProblems(b, [a], () => undefined).refusals.join()).toContain("destination 4 is already fed");
    const licenses: Record<string, string> = { m: "server", b: "client" };
    expect(groupProblems(a, [], (id) => licenses[id]).warnings.join()).toContain("different licenses");
    expect(groupProblems(a, [a], () => "server")).toEqual({ refusals: [], warnings: [] });
  });
});
