/**
 * Render-engine backups end to end in one process: a group set up on the
 * main's Backup groups page with a simulated Videohub; the main engine's
 * machine stops, and the main server switches the router's destination to
 * the backup engine's source (checked on the simulator's own state); the
 * engine back and healthy for the hold time, it switches back.
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

async function node(flags: Record<string, string>, key: Uint8Array, dataDir = setUpDataDir(key)) {
  const started = await startNode({ dataDir, flags: { heartbeatMs: "50", failoverTimeoutMs: "250", ...flags } });
  running.push(started.node);
  return started;
}

test("a main engine's machine stopping puts the backup's source on the router's destination; back and healthy, it switches back", async () => {
  const key = nacl.randomBytes(32);
  const sim = new VideohubSim().start();
  sims.push(sim);
  const main = await node({ role: "main" }, key);
  const mainAt = main.node.status().peerListen!;
  const render1Dir = setUpDataDir(key);
  let render1 = await node({ role: "client", main: mainAt, name: "render-1" }, key, render1Dir);
  const spare = await node({ role: "client", main: mainAt, name: "render-spare" }, key);
  const [render1Id, spareId] = [render1.node.status().id, spare.node.status().id];
  await waitFor("the main hears both engines", () => [render1Id, spareId].every((id) => main.node.status().failover!.peers.some((p) => p.id === id)), 10_000);

  // Destination 5 shows source 1 (zero-based 4 ← 0) before the group exists: the main engine on air.
  sim.routes[4] = 0;
  const page = await (await main.node.app.request("http://localhost/backup-groups")).text();
  expect(page).toContain("render-1");
  expect((await formPost(main.node, "/backup-groups/router", { router: `127.0.0.1:${sim.port}`, routerEnabled: "on" })).status).toBe(200);
  const group = { name: "Green", main0: render1Id, main0Sources: "1", main0Destinations: "5", backup: spareId, backupSources: "9", mode: "auto", switchBack: "auto", holdSeconds: "1" };
  expect((await formPost(main.node, "/backup-groups", group)).status).toBe(200);
  await waitFor("the main server connects to the router", () => sim.clientCount === 1, 10_000);

  const health = async () => (await main.node.app.request("http://localhost/health")).text();
  await waitFor("the Health panel shows render-1 on air, as the router reports it", async () => (await health()).includes("render-1 – OK") && (await health()).includes("Destination 5 ← source 1"), 10_000);

  await render1.node.stop();
  running.splice(running.indexOf(render1.node), 1);
  await waitFor("the router's destination 5 shows the backup's source 9", () => sim.routes[4] === 8, 15_000);
  await waitFor("the Health panel shows the switch, as the router reports it", async () => {
    const html = await health();
    return html.includes("render-1 – FAILED (silent) → switched to render-spare") && html.includes("Destination 5 ← source 9");
  }, 10_000);
  const chip = async () => (await health()).match(/data-testid="status-chip"[^>]*>([^<]*)</)?.[1];
  expect(await chip()).toBe("render-1 – FAILED → switched to render-spare");

  render1 = await node({ role: "client", main: mainAt, name: "render-1" }, key, render1Dir);
  await waitFor("switched back to render-1's source 1", () => sim.routes[4] === 0, 15_000);
  await waitFor("the chip loses the engine state", async () => (await chip()) !== undefined && !(await chip())!.includes("render-1"), 10_000);
}, 60_000);

test("a destination locked by another router client is shown on the Health panel before any engine fails", async () => {
  const key = nacl.randomBytes(32);
  const sim = new VideohubSim().start();
  sims.push(sim);
  const main = await node({ role: "main" }, key);
  const engine = "00000000000000a1";
  expect((await formPost(main.node, "/backup-groups/router", { router: `127.0.0.1:${sim.port}`, routerEnabled: "on" })).status).toBe(200);
  const group = { name: "Green", main0: engine, main0Sources: "1", main0Destinations: "5", backup: "00000000000000b1", backupSources: "9", mode: "auto", switchBack: "auto", holdSeconds: "1" };
  expect((await formPost(main.node, "/backup-groups", group)).status).toBe(200);
  await waitFor("the main server connects to the router", () => sim.clientCount === 1, 10_000);
  sim.lockByOther(4);
  const health = async () => (await main.node.app.request("http://localhost/health")).text();
  await waitFor("the lock is shown", async () => (await health()).includes("LOCKED by another client"), 10_000);
  expect(await health()).toContain('data-testid="health-warning"');
  // In the panel's words: destinations counted from 1, as on the router (the core counts from 0).
  expect(await health()).toContain("Destination 5 (fed by 00000000000000a1) is LOCKED by another router client");
}, 30_000);

test("the operator switches to the backup and back on the Health panel (twice alike); a page of another origin switches nothing", async () => {
  const key = nacl.randomBytes(32);
  const sim = new VideohubSim().start();
  sims.push(sim);
  sim.routes[4] = 0;
  const main = await node({ role: "main" }, key);
  const mainAt = main.node.status().peerListen!;
  const render1 = await node({ role: "client", main: mainAt, name: "render-1" }, key);
  const spare = await node({ role: "client", main: mainAt, name: "render-spare" }, key);
  const [render1Id, spareId] = [render1.node.status().id, spare.node.status().id];
  await waitFor("the main hears both engines", () => [render1Id, spareId].every((id) => main.node.status().failover!.peers.some((p) => p.id === id)), 10_000);
  expect((await formPost(main.node, "/backup-groups/router", { router: `127.0.0.1:${sim.port}`, routerEnabled: "on" })).status).toBe(200);
  const group = { name: "Green", main0: render1Id, main0Sources: "1", main0Destinations: "5", backup: spareId, backupSources: "9", mode: "manual", switchBack: "manual", holdSeconds: "1" };
  expect((await formPost(main.node, "/backup-groups", group)).status).toBe(200);
  const health = async () => (await main.node.app.request("http://localhost/health")).text();
  await waitFor("the router is read", async () => (await health()).includes("Destination 5 ← source 1"), 10_000);

  const forged = await formPost(main.node, "/health/switch", { group: "green", main: render1Id, to: "backup" }, { origin: "http://evil.example" });
  expect(forged.status).toBe(403);
  for (let i = 0; i < 2; i++) expect((await formPost(main.node, "/health/switch", { group: "green", main: render1Id, to: "backup" })).status).toBe(200);
  await waitFor("the backup on air", () => sim.routes[4] === 8, 10_000);
  expect((await formPost(main.node, "/health/switch", { group: "green", main: render1Id, to: "main" })).status).toBe(200);
  await waitFor("the main back on air", () => sim.routes[4] === 0, 10_000);
  expect((await formPost(main.node, "/health/switch", { group: "nope", main: render1Id, to: "main" })).status).toBe(409);
  // A client's own page does not switch: the active server does.
  expect((await formPost(render1.node, "/health/switch", { group: "green", main: render1Id, to: "backup" })).status).toBe(403);
  expect(sim.routes[4]).toBe(0);
}, 40_000);

test("an engine whose software sets its health to \"unhealthy\" (as the README says) is replaced; \"ok\" brings it back; garbage changes nothing", async () => {
  // Found: the wiring took only a boolean, so an engine publishing the documented words was never seen as unhealthy.
  const key = nacl.randomBytes(32);
  const sim = new VideohubSim().start();
  sims.push(sim);
  sim.routes[4] = 0;
  const main = await node({ role: "main" }, key);
  const mainAt = main.node.status().peerListen!;
  const render1 = await node({ role: "client", main: mainAt, name: "render-1" }, key);
  const spare = await node({ role: "client", main: mainAt, name: "render-spare" }, key);
  const [render1Id, spareId] = [render1.node.status().id, spare.node.status().id];
  await waitFor("the main hears both engines", () => [render1Id, spareId].every((id) => main.node.status().failover!.peers.some((p) => p.id === id)), 10_000);
  expect((await formPost(main.node, "/backup-groups/router", { router: `127.0.0.1:${sim.port}`, routerEnabled: "on" })).status).toBe(200);
  const group = { name: "Green", main0: render1Id, main0Sources: "1", main0Destinations: "5", backup: spareId, backupSources: "9", mode: "auto", switchBack: "auto", holdSeconds: "1" };
  expect((await formPost(main.node, "/backup-groups", group)).status).toBe(200);
  const health = async () => (await main.node.app.request("http://localhost/health")).text();
  await waitFor("the router is read", async () => (await health()).includes("Destination 5 ← source 1"), 10_000);

  const setHealth = async (value: unknown) => {
    const answer = await render1.node.app.request(`http://localhost/api/hub/state/$understudy/engine/${render1Id}/health`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(value),
    });
    expect(answer.status).toBe(200);
  };
  await setHealth({ temperature: "hot" });
  await setHealth("ok");
  expect(sim.routes[4]).toBe(0);
  await setHealth("unhealthy");
  await waitFor("the backup's source 9 on destination 5", () => sim.routes[4] === 8, 10_000);
  await setHealth(42);
  await setHealth("ok");
  await waitFor("back on render-1's source 1 after the hold", () => sim.routes[4] === 0, 10_000);
}, 40_000);
