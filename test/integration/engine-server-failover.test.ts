/**
 * A server failover during an engine failover, with the real executables
 * (docs/design.md §Render-engine backups, §Failover): a main server, its
 * backup, two engine clients (render-1 and its backup engine) and the
 * simulated Videohub on loopback. Engines and servers die by kill -9. Every
 * route is checked on the simulated router's own state, and on the requests
 * it received: the server that takes over reads the router and the kept
 * decision, keeps the backup engine on air (no switch back to a dead engine,
 * no flapping), and switches back only once the main engine returns and has
 * been fit for the hold time; a manual switch stays in force.
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { engineReplacesKey } from "../../src/core/engine-failover.ts";
import { Cluster } from "../support/cluster.ts";
import { VideohubSim } from "../support/videohub-sim.ts";
import { waitFor } from "../support/wait-for.ts";

const TEST_MS = 120_000;
const HOLD_S = 2;
/** Destination 5 (zero-based 4): render-1's source 1 (0) on air, the backup engine's source 9 (8) in its place. */
const DEST = 4;
const MAIN_SOURCE = 0;
const BACKUP_SOURCE = 8;

let cluster: Cluster | null = null;
let sim: VideohubSim | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
  sim?.stop();
  sim = null;
});

type Rig = { c: Cluster; sim: VideohubSim; render1: string; spare: string; group: string };

/** The servers, both engines, the router and one group, set up on the main's pages and copied by the backup server. */
async function rig(clients: string[] = []): Promise<Rig> {
  sim = new VideohubSim().start();
  sim.routes[DEST] = MAIN_SOURCE;
  const c = (cluster = await Cluster.start({ clients: ["render-1", "spare", ...clients] }));
  const [render1, spare] = [(await c.status("render-1")).id, (await c.status("spare")).id];
  await c.waitStatus("main", "the main hears both engines", (s) => s.failover?.state === "active" && [render1, spare].every((id) => s.failover!.peers.some((p) => p.id === id)));
  await c.waitStatus("backup", "the backup idle and hearing both engines", (s) => s.failover?.state === "idle" && [render1, spare].every((id) => s.failover!.peers.some((p) => p.id === id)));
  expect((await c.postForm("main", "/backup-groups/router", { router: `127.0.0.1:${sim.port}`, routerEnabled: "on" })).status).toBe(200);
  const form = { name: "Green", main0: render1, main0Sources: "1", main0Destinations: "5", backup: spare, backupSources: "9", mode: "auto", switchBack: "auto", holdSeconds: String(HOLD_S) };
  expect((await c.postForm("main", "/backup-groups", form)).status).toBe(200);
  const group = groupsIn(c.machine("main").dataDir)[0]!;
  await waitFor("the backup server's copy of the group", () => groupsIn(c.machine("backup").dataDir).some((g) => g === group), 30_000);
  await waitFor("the main server on the router", () => sim!.clientCount === 1, 10_000);
  // On a loaded machine an engine may stall past the silence timeout and be replaced (rightly): start from render-1 on air.
  await waitFor("render-1 on air, the main server's Health panel all OK", async () => {
    const health = await (await fetch(`${c.machine("main").ui}/health`)).text();
    return sim!.routes[DEST] === MAIN_SOURCE && health.includes("render-1 – OK") && !health.includes("FAILED");
  }, 20_000);
  return { c, sim, render1, spare, group };
}

function groupsIn(dataDir: string): string[] {
  try {
    return (JSON.parse(readFileSync(join(dataDir, "backup-groups.json"), "utf8")) as { groups: { id: string }[] }).groups.map((g) => g.id);
  } catch {
    return [];
  }
}

function levelsIn(dataDir: string): Record<string, number> {
  try {
    return JSON.parse(readFileSync(join(dataDir, "permissions.json"), "utf8")) as Record<string, number>;
  } catch {
    return {};
  }
}

const replaces = async (r: Rig) => (await r.c.get("spare", engineReplacesKey(r.spare))).value;

/** Kills the main server and waits until the backup server serves and holds the router's connection. */
async function serverFailover(r: Rig): Promise<void> {
  const before = r.sim.connections;
  await r.c.kill("main");
  await r.c.waitStatus("backup", "the backup server active", (s) => s.failover?.state === "active", 15_000);
  await waitFor("the backup server on the router", () => r.sim.connections > before && r.sim.clientCount === 1, 15_000);
}

/** Fails with the servers' engine log lines when the router got other requests than `expected`. */
function expectRequests(r: Rig, got: string[], expected: string[]): void {
  if (JSON.stringify(got) === JSON.stringify(expected)) return;
  const lines = ["main", "backup"].flatMap((name) => {
    try {
      return r.c.logs(name).filter((l) => /router|engine/.test(String(l.event))).map((l) => `${name} ${JSON.stringify(l)}`);
    } catch {
      return [];
    }
  });
  throw new Error(`router requests ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}\n${lines.join("\n")}`);
}

/**
 * The Health panel's switch on `name`, until that server accepts it: one that does not serve at that
 * moment (a loaded machine may blink a server's role) refuses and changes nothing, so asking again is safe.
 */
async function switchOn(r: Rig, name: string, fields: Record<string, string>, says: string): Promise<void> {
  await waitFor(`${name} switches the engines`, async () => {
    const answer = await r.c.postForm(name, "/health/switch", fields);
    const text = answer.body.match(/data-testid="health-message">([^<]*)</)?.[1];
    if (answer.status !== 200) throw new Error(`${answer.status}: ${text}`);
    expect(text).toBe(says);
    return true;
  }, 20_000);
}

/** The router's requests from now on, for "this never happens" checks over a window. */
const requestsSince = (r: Rig) => {
  const from = r.sim.requests.length;
  return () => r.sim.requests.slice(from);
};

test(
  "engine first, then the server: the backup server keeps the backup engine on air and switches back after the hold once render-1 returns",
  async () => {
    const r = await rig();
    await r.c.kill("render-1");
    await waitFor("the router's destination on the backup engine", () => r.sim.routes[DEST] === BACKUP_SOURCE, 20_000);
    await waitFor("the backup engine told it replaces render-1", async () => (await replaces(r)) === r.render1, 10_000);

    const later = requestsSince(r);
    await serverFailover(r);
    // Longer than the hold time and the engines' silence timeout: a server switching back to the dead engine would have.
    await Bun.sleep(2 * HOLD_S * 1000 + 3_500);
    expect(r.sim.routes[DEST]).toBe(BACKUP_SOURCE);
    expectRequests(r, later(), []);
    expect(await replaces(r)).toBe(r.render1);
    const health = await (await fetch(`${r.c.machine("backup").ui}/health`)).text();
    expect(health).toContain("FAILED (silent)");

    await r.c.restart("render-1");
    await waitFor("switched back to render-1 on the router", () => r.sim.routes[DEST] === MAIN_SOURCE, 20_000);
    expectRequests(r, later(), [`${DEST} ${MAIN_SOURCE}`]);
    await waitFor("the backup engine told it replaces no one", async () => (await replaces(r)) === null, 10_000);
  },
  TEST_MS,
);

test(
  "server first, then the engine: the backup server switches the router to the backup engine, and back after the hold",
  async () => {
    const r = await rig();
    const later = requestsSince(r);
    await serverFailover(r);
    await r.c.kill("render-1");
    await waitFor("the router's destination on the backup engine", () => r.sim.routes[DEST] === BACKUP_SOURCE, 20_000);
    await waitFor("the backup engine told it replaces render-1", async () => (await replaces(r)) === r.render1, 10_000);
    await r.c.restart("render-1");
    await waitFor("switched back to render-1 on the router", () => r.sim.routes[DEST] === MAIN_SOURCE, 20_000);
    expectRequests(r, later(), [`${DEST} ${BACKUP_SOURCE}`, `${DEST} ${MAIN_SOURCE}`]);
  },
  TEST_MS,
);

test(
  "a manual switch to the backup engine stays in force through a server failover and the failback; a level-3 client switches through whichever server serves",
  async () => {
    const r = await rig(["desk"]);
    const desk = (await r.c.status("desk")).id;
    await r.c.waitStatus("main", "the main hears the desk", (s) => s.failover!.peers.some((p) => p.id === desk));
    expect((await r.c.postForm("main", "/machines/permission", { machine: desk, level: "3" })).status).toBe(200);
    await waitFor("the backup server's copy of the desk's level", () => levelsIn(r.c.machine("backup").dataDir)[desk] === 3, 15_000);
    const sw = { group: r.group, main: r.render1, to: "backup" };
    await switchOn(r, "main", sw, "Switching to the backup engine…");
    await waitFor("the router's destination on the backup engine", () => r.sim.routes[DEST] === BACKUP_SOURCE, 10_000);
    await waitFor("the backup engine told it replaces render-1", async () => (await replaces(r)) === r.render1, 10_000);

    let later = requestsSince(r);
    await serverFailover(r);
    // render-1 is fit all along: an automatic stand-in would return after the hold time.
    await Bun.sleep(2 * HOLD_S * 1000 + 1_000);
    expect(r.sim.routes[DEST]).toBe(BACKUP_SOURCE);
    expectRequests(r, later(), []);
    expect(await replaces(r)).toBe(r.render1);

    // The desk (level 3) asks the main, which is dead, then the backup, which serves.
    await switchOn(r, "desk", { ...sw, to: "main" }, "Switching back to the main engine…");
    await waitFor("render-1 back on the router", () => r.sim.routes[DEST] === MAIN_SOURCE, 10_000);
    await waitFor("the backup engine told it replaces no one", async () => (await replaces(r)) === null, 10_000);
    await switchOn(r, "desk", sw, "Switching to the backup engine…");
    await waitFor("the backup engine on the router again", () => r.sim.routes[DEST] === BACKUP_SOURCE, 10_000);
    expectRequests(r, later(), [`${DEST} ${MAIN_SOURCE}`, `${DEST} ${BACKUP_SOURCE}`]);

    // The main server returns and takes over (failback auto): the manual switch is still in force.
    later = requestsSince(r);
    const before = r.sim.connections;
    await r.c.restart("main");
    await r.c.waitStatus("main", "the main server serving again", (s) => s.failover?.state === "active", 30_000);
    await waitFor("the main server on the router again", () => r.sim.connections > before && r.sim.clientCount === 1, 15_000);
    await Bun.sleep(2 * HOLD_S * 1000 + 1_000);
    expect(r.sim.routes[DEST]).toBe(BACKUP_SOURCE);
    expectRequests(r, later(), []);
    expect(await replaces(r)).toBe(r.render1);

    await switchOn(r, "main", { ...sw, to: "main" }, "Switching back to the main engine…");
    await waitFor("render-1 back on the router", () => r.sim.routes[DEST] === MAIN_SOURCE, 10_000);
    expectRequests(r, later(), [`${DEST} ${MAIN_SOURCE}`]);
  },
  TEST_MS,
);
