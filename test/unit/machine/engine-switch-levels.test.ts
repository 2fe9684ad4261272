/**
 * Switching render engines by hand from a client (docs/design.md §Security:
 * level 3 may do what the main's own pages do; §Render-engine backups): the
 * client's Health panel asks the server that serves, which checks the
 * client's level itself. The client's panel shows what that server's
 * runner shows from level 2 (none at level 1); level 2 gets 403 and the
 * reason, and nothing is switched; level 3 gets the buttons and switches,
 * twice in a row too, checked on the simulated router's own state.
 */
import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { formPost, setUpDataDir, startNode } from "../../support/machine-node.ts";
import { VideohubSim } from "../../support/videohub-sim.ts";
import { waitFor } from "../../support/wait-for.ts";

const running: MachineNode[] = [];
const sims: VideohubSim[] = [];
afterEach(async () => {
  for (const node of running.splice(0)) await node.stop();
  for (const sim of sims.splice(0)) sim.stop();
});

async function node(flags: Record<string, string>, key: Uint8Array, host: string) {
  const started = await startNode({ dataDir: setUpDataDir(key), flags: { heartbeatMs: "100", failoverTimeoutMs: "1000", peerListen: host === "::1" ? "[::1]:0" : `${host}:0`, ...flags } });
  running.push(started.node);
  return started.node;
}

test.each(["127.0.0.1", "::1"])("a level-2 client's switch is refused with the reason; at level 3 it switches through the main, both ways (%s)", async (host) => {
  const key = nacl.randomBytes(32);
  const sim = new VideohubSim({ hostname: host }).start();
  sims.push(sim);
  sim.routes[4] = 0;
  const main = await node({ role: "main" }, key, host);
  const mainAt = main.status().peerListen!;
  const render1 = await node({ role: "client", main: mainAt, name: "render-1" }, key, host);
  const spare = await node({ role: "client", main: mainAt, name: "render-spare" }, key, host);
  const desk = await node({ role: "client", main: mainAt, name: "desk" }, key, host);
  const [render1Id, spareId, deskId] = [render1.status().id, spare.status().id, desk.status().id];
  await waitFor("the main hears every client", () => [render1Id, spareId, deskId].every((id) => main.status().failover!.peers.some((p) => p.id === id)), 10_000);
  expect((await formPost(main, "/backup-groups/router", { router: host === "::1" ? `[::1]:${sim.port}` : `${host}:${sim.port}`, routerEnabled: "on" })).status).toBe(200);
  const group = { name: "Green", main0: render1Id, main0Sources: "1", main0Destinations: "5", backup: spareId, backupSources: "9", mode: "auto", switchBack: "manual", holdSeconds: "1" };
  expect((await formPost(main, "/backup-groups", group)).status).toBe(200);
  await waitFor("the main server on the router", () => sim.clientCount === 1, 10_000);
  await waitFor("the desk learns its level", () => desk.permission() === 2, 10_000);

  const page = async () => (await desk.app.request("http://localhost/health")).text();
  const level2 = await page();
  expect(level2).toContain(`data-machine-id="${render1Id}"`);
  expect(level2).toContain("Destination 5 ← source 1");
  expect(level2).not.toContain('data-testid="switch-to-backup"');

  const toBackup = { group: "green", main: render1Id, to: "backup" };
  const refused = await formPost(desk, "/health/switch", toBackup);
  expect(refused.status).toBe(403);
  expect(await refused.text()).toContain("permission level 2");
  expect(sim.requests).toEqual([]);

  expect((await formPost(main, "/machines/permission", { machine: deskId, level: "3" })).status).toBe(200);
  await waitFor("the desk learns level 3", () => desk.permission() === 3, 10_000);
  expect(await page()).toContain('data-testid="switch-to-backup"');
  for (let i = 0; i < 2; i++) {
    const done = await formPost(desk, "/health/switch", toBackup);
    expect(done.status).toBe(200);
    expect(await done.text()).toContain("Switching to the backup engine");
    await waitFor("the router's destination on the backup engine", () => sim.routes[4] === 8, 10_000);
  }
  const back = await formPost(desk, "/health/switch", { ...toBackup, to: "main" });
  expect(back.status).toBe(200);
  await waitFor("render-1 back on the router", () => sim.routes[4] === 0, 10_000);
  expect(sim.requests).toEqual(["4 8", "4 0"]);

  // The main's refusal reaches the client's page with its reason: no such engine in the group.
  const unknown = await formPost(desk, "/health/switch", { ...toBackup, main: "00000000000000ff" });
  expect(unknown.status).toBe(409);
  expect(await unknown.text()).toContain("no main engine");
  expect((await formPost(desk, "/health/switch", { ...toBackup, group: "Not a group!" })).status).toBe(400);
  expect(sim.requests).toEqual(["4 8", "4 0"]);

  expect((await formPost(main, "/machines/permission", { machine: deskId, level: "1" })).status).toBe(200);
  await waitFor("the desk learns level 1", () => desk.permission() === 1, 10_000);
  expect(await page()).not.toContain(render1Id);
}, 60_000);
