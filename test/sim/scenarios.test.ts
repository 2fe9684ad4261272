/**
 * Named failover stories on the simulated network, each a few lines: the
 * seeded runs (failover-sim.test.ts) find the odd cases, these show the
 * common ones and pin their timing. All invariants are checked throughout.
 */
import { describe, expect, test } from "bun:test";
import { FAST_TIMINGS } from "../../src/core/failure-detector.ts";
import { statusChip, type Failback } from "../../src/core/failover/index.ts";
import { newWorld } from "./run.ts";
import type { World } from "./world.ts";

const { heartbeatMs: h, failoverTimeoutMs: T } = FAST_TIMINGS;
const CLIENTS = ["c1", "c2", "c3"];

async function setup(failback: Failback = "auto", seed = 1) {
  const { world, checker } = newWorld({
    seed, timings: FAST_TIMINGS, failback, plan: { faultsStopAt: Infinity, noFailoverFrom: null },
  });
  await world.runUntil(3 * T);
  return { world, checker };
}

function phase(world: World, name: "main" | "backup"): string {
  const s = world.node(name).state;
  if (!s || s.role === "client") return "dead";
  return s.phase.kind === "active" ? `active@${s.phase.epoch}` : s.phase.kind;
}

function follows(world: World, name: string): string {
  const f = world.node(name).following;
  return f.server === null ? "none" : `${f.server}@${f.epoch}`;
}

function chip(world: World, name: string): string {
  const s = world.node(name).state;
  if (!s) throw new Error(`${name} is not running`);
  return statusChip(s, world.now() + world.node(name).offset).text;
}

/** Advances until `probe` holds; returns how long that took (or fails after `limit`). */
async function timeUntil(world: World, limit: number, probe: () => boolean): Promise<number> {
  const from = world.now();
  for (let t = from; t <= from + limit; t++) {
    await world.runUntil(t);
    if (probe()) return t - from;
  }
  throw new Error(`not within ${limit} ms`);
}

describe("failover stories (fast preset: heartbeat 50 ms, timeout 250 ms)", () => {
  test("the network starts on the main at epoch 1 and the backup is idle", async () => {
    const { world, checker } = await setup();
    expect(phase(world, "main")).toBe("active@1");
    expect(phase(world, "backup")).toBe("idle");
    for (const c of CLIENTS) expect(follows(world, c)).toBe("main@1");
    expect(chip(world, "main")).toBe("Backup is idle");
    expect(chip(world, "c1")).toBe("Backup is idle");
    expect(checker.violations).toEqual([]);
  });

  test("a crashed main's broken sockets fail over well before the timeout", async () => {
    const { world, checker } = await setup();
    world.crash("main");
    const took = await timeUntil(world, T, () => phase(world, "backup") === "active@2");
    expect(took).toBeLessThan(h);
    await timeUntil(world, h, () => CLIENTS.every((c) => follows(world, c) === "backup@2"));
    expect(chip(world, "c2")).toBe("Backup is active");
    expect(checker.violations).toEqual([]);
  });

  test("a frozen main is failed over after the timeout, then fenced and takes back (failback auto)", async () => {
    const { world, checker } = await setup();
    world.freeze("main");
    const took = await timeUntil(world, 2 * T, () => phase(world, "backup") === "active@2");
    expect(took).toBeGreaterThanOrEqual(T - 2 * h);
    await timeUntil(world, h, () => CLIENTS.every((c) => follows(world, c) === "backup@2"));
    await world.runUntil(world.now() + T);
    world.resume("main");
    // The main reads the backup's announcement, steps down, copies the backup's state and takes back at 3.
    await timeUntil(world, 2 * h, () => phase(world, "main") === "active@3" && phase(world, "backup") === "idle");
    await timeUntil(world, 2 * h, () => CLIENTS.every((c) => follows(world, c) === "main@3"));
    expect(checker.violations).toEqual([]);
  });

  test("with failback manual the main waits in standby until someone switches back", async () => {
    const { world, checker } = await setup("manual");
    world.crash("main");
    await timeUntil(world, T, () => phase(world, "backup") === "active@2");
    await world.runUntil(world.now() + T);
    world.restart("main");
    await timeUntil(world, T, () => phase(world, "main") === "standby");
    await world.runUntil(world.now() + 4 * T);
    expect(phase(world, "backup")).toBe("active@2");
    expect(chip(world, "main")).toBe("Backup is active");
    world.switchBack();
    await timeUntil(world, 2 * h, () => phase(world, "main") === "active@3" && phase(world, "backup") === "idle");
    await timeUntil(world, 2 * h, () => CLIENTS.every((c) => follows(world, c) === "main@3"));
    expect(checker.violations).toEqual([]);
  });

  test("main and backup cut from each other while clients hear both: no takeover, the chip says why", async () => {
    const { world, checker } = await setup();
    world.link("main", "backup").cut = true;
    world.link("backup", "main").cut = true;
    await world.runUntil(world.now() + 6 * T);
    expect(phase(world, "backup")).toBe("idle");
    expect(phase(world, "main")).toBe("active@1");
    expect(chip(world, "backup")).toBe("Main unreachable from backup");
    expect(chip(world, "c1")).toBe("Main unreachable from backup");
    // Now the main loses the clients too: no witness is left, so the backup takes over.
    for (const c of CLIENTS) world.link("main", c).cut = true;
    const took = await timeUntil(world, 2 * T, () => phase(world, "backup") === "active@2");
    expect(took).toBeLessThanOrEqual(T + h);
    await timeUntil(world, 2 * h, () => CLIENTS.every((c) => follows(world, c) === "backup@2"));
    // The main cannot count the clients' heartbeats any more (they echo none of its recent ones), so it
    // hears nobody: it fences itself as isolated, though it cannot hear the backup.
    await world.runUntil(world.now() + T + 2 * h);
    expect(phase(world, "main")).toStartWith("isolated");
    expect(phase(world, "main")).not.toStartWith("active");
    expect(checker.violations).toEqual([]);
  });

  test("a client set up while the main is down joins the backup, and moves to the main when it returns", async () => {
    const { world, checker } = await setup();
    world.crash("main");
    await timeUntil(world, T, () => phase(world, "backup") === "active@2");
    world.spawn("c4", "client", { main: true, backup: true });
    const joined = await timeUntil(world, 2 * h, () => follows(world, "c4") === "backup@2");
    expect(joined).toBeLessThanOrEqual(10); // one round trip: the backup answers a first heartbeat at once
    world.restart("main");
    await timeUntil(world, T + 2 * h, () => follows(world, "c4") === "main@3");
    expect(checker.violations).toEqual([]);
  });

  test("a client that only knows the main's address waits, and follows the backup once told its address", async () => {
    const { world, checker } = await setup();
    world.crash("main");
    await timeUntil(world, T, () => phase(world, "backup") === "active@2");
    const c5 = world.spawn("c5", "client", { main: true, backup: false });
    await world.runUntil(world.now() + 2 * T);
    expect(follows(world, "c5")).toBe("none");
    expect(chip(world, "c5")).toBe("No server reachable");
    world.setServers("c5", { main: true, backup: true });
    await timeUntil(world, 2 * h, () => follows(world, "c5") === "backup@2");
    expect(c5.state?.role).toBe("client");
    expect(checker.violations).toEqual([]);
  });

  test("a backup cut off from everyone takes over alone, then hands back after the heal", async () => {
    const { world, checker } = await setup();
    const all = ["main", ...CLIENTS];
    for (const n of all) world.link(n, "backup").cut = world.link("backup", n).cut = true;
    await timeUntil(world, 2 * T, () => phase(world, "backup") === "active@2");
    await world.runUntil(world.now() + T);
    expect(CLIENTS.every((c) => follows(world, c) === "main@1")).toBe(true); // no client saw the lone backup
    for (const n of all) world.link(n, "backup").cut = world.link("backup", n).cut = false;
    // Both are active for a moment at epochs 1 and 2; the main is fenced, copies, and takes back at 3.
    await timeUntil(world, 3 * h, () => phase(world, "main") === "active@3" && phase(world, "backup") === "idle");
    await timeUntil(world, 2 * h, () => CLIENTS.every((c) => follows(world, c) === "main@3"));
    expect(checker.violations).toEqual([]);
  });
});
