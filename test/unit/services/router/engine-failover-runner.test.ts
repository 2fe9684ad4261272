import { afterEach, expect, test } from "bun:test";
import { backupGroupSchema } from "../../../../src/core/backup-groups.ts";
import { routerSwitchEventSchema, type RouterSwitchEvent } from "../../../../src/core/router.ts";
import { EngineFailoverRunner } from "../../../../src/services/router/engine-failover-runner.ts";
import { VideohubDriver } from "../../../../src/services/router/videohub-driver.ts";
import { ManualTimers } from "../../../support/clock.ts";
import { VideohubSim } from "../../../support/videohub-sim.ts";
import { waitFor } from "../../../support/wait-for.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const group = backupGroupSchema.parse({
  id: "studio-a",
  name: "Studio A",
  mains: [{ machineId: "green", outputs: [{ source: 0, destination: 10 }] }],
  backup: { machineId: "spare", sources: [5] },
  failoverMode: "auto",
  switchBack: "auto",
  holdTimeMs: 2_000,
});

test("engine silent → the simulated router's destination goes to the backup, and back after the hold", async () => {
  const sim = new VideohubSim().start();
  const timers = new ManualTimers();
  const driver = new VideohubDriver({ host: "127.0.0.1", port: sim.port, clock: timers.clock, timers });
  const switches: RouterSwitchEvent[] = [];
  const runner = new EngineFailoverRunner({
    driver,
    groups: [group],
    clock: timers.clock,
    wallClock: timers.clock,
    timers,
    timings: { silenceMs: 1_000, framesFrozenMs: 500, routeRetryMs: 1_000 },
    onSwitch: (e) => switches.push(e),
  });
  cleanups.push(() => runner.stop(), () => driver.close(), () => sim.stop());
  await driver.connect();
  runner.start();
  const step = async (ms: number, alive: string[]) => {
    for (const id of alive) runner.feed({ kind: "heard", machineId: id });
    timers.advance(ms);
    await Bun.sleep(1);
  };
  await step(100, ["green", "spare"]);
  await waitFor("the main on air", () => sim.routes[10] === 0);
  for (let i = 0; i < 15; i++) await step(100, ["spare"]);
  await waitFor("the backup on air", () => sim.routes[10] === 5);
  expect(switches.at(-1)).toMatchObject({ destination: 10, source: 5, from: "green", to: "spare", reason: "silent" });
  expect(routerSwitchEventSchema.safeParse(switches.at(-1)).success).toBe(true);
  for (let i = 0; i < 25; i++) await step(100, ["green", "spare"]);
  await waitFor("the main back on air", () => sim.routes[10] === 0);
  expect(switches.at(-1)).toMatchObject({ destination: 10, source: 0, to: "green", reason: "switch-back" });
});

test("a destination another client locked is not switched; the runner never forces it", async () => {
  const sim = new VideohubSim().start();
  sim.routes[10] = 0;
  sim.lockOwners[10] = "other";
  const timers = new ManualTimers();
  const driver = new VideohubDriver({ host: "127.0.0.1", port: sim.port, clock: timers.clock, timers });
  const runner = new EngineFailoverRunner({ driver, groups: [group], clock: timers.clock, wallClock: timers.clock, timers, timings: { silenceMs: 1_000, framesFrozenMs: 500, routeRetryMs: 1_000 } });
  cleanups.push(() => runner.stop(), () => driver.close(), () => sim.stop());
  await driver.connect();
  runner.start();
  for (let i = 0; i < 20; i++) {
    runner.feed({ kind: "heard", machineId: "spare" });
    timers.advance(100);
    await Bun.sleep(1);
  }
  expect(sim.requests).toEqual([]);
  expect(sim.routes[10]).toBe(0);
});
