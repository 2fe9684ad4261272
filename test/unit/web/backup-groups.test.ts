/**
 * The Backup groups panel: groups kept by the main in backup-groups.json,
 * copied by its paired backup over `/console` like the permission levels,
 * edited on the main or by a level-3 client, read-only elsewhere; every
 * refusal beside its field, changing nothing.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { formPost, setUpDataDir, startNode } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

const running: MachineNode[] = [];
afterEach(async () => {
  for (const node of running.splice(0)) await node.stop();
});

async function node(flags: Record<string, string>, key: Uint8Array) {
  const started = await startNode({ dataDir: setUpDataDir(key), flags: { heartbeatMs: "50", failoverTimeoutMs: "250", ...flags } });
  running.push(started.node);
  return started;
}

const get = (n: MachineNode, path: string) => n.app.request(`http://localhost${path}`);
const RENDER_1 = "00000000000000a1";
const RENDER_2 = "00000000000000a2";
const SPARE = "00000000000000b1";
const green = { name: "Green", main0: RENDER_1, main0Sources: "1, 2", main0Destinations: "5, 6", backup: SPARE, backupSources: "9, 10", mode: "auto", switchBack: "auto", holdSeconds: "10" };
const stored = (dataDir: string) => JSON.parse(readFileSync(join(dataDir, "backup-groups.json"), "utf8"));

describe("backup groups", () => {
  test("created on the main's page (ports from 1 on the page, from 0 in the file), shown, edited twice alike, deleted", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    let html = await (await get(main.node, "/backup-groups")).text();
    expect(html).toContain('data-testid="no-groups"');
    expect(html).toContain('href="/backup-groups"');
    expect(html).toContain('data-testid="group-form"');

    let response = await formPost(main.node, "/backup-groups", green);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Backup group Green created.");
    expect(stored(main.dataDir)).toEqual({
      router: null,
      groups: [{ id: "green", name: "Green", mains: [{ machineId: RENDER_1, outputs: [{ source: 0, destination: 4 }, { source: 1, destination: 5 }] }], backup: { machineId: SPARE, sources: [8, 9] }, failoverMode: "auto", switchBack: "auto", holdTimeMs: 10_000 }],
    });

    // Edit: the same form with the group's id; twice gives the same file.
    const edit = await (await get(main.node, "/backup-groups?edit=green")).text();
    expect(edit).toContain('value="5, 6"');
    for (let i = 0; i < 2; i++) expect((await formPost(main.node, "/backup-groups", { ...green, id: "green", mode: "manual" })).status).toBe(200);
    expect(stored(main.dataDir).groups).toHaveLength(1);
    expect(stored(main.dataDir).groups[0].failoverMode).toBe("manual");

    response = await formPost(main.node, "/backup-groups/router", { router: "127.0.0.1", routerEnabled: "on" });
    expect(response.status).toBe(200);
    expect(stored(main.dataDir).router).toEqual({ address: "127.0.0.1:9990", enabled: true });

    response = await formPost(main.node, "/backup-groups/delete", { id: "green" });
    expect(response.status).toBe(200);
    expect(stored(main.dataDir).groups).toEqual([]);
    html = await response.text();
    expect(html).toContain("Backup group deleted.");
  }, 30_000);

  test("refusals come back beside their field and change nothing", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    expect((await formPost(main.node, "/backup-groups", green)).status).toBe(200);
    const before = readFileSync(join(main.dataDir, "backup-groups.json"), "utf8");

    const cases: [Record<string, string>, string, string][] = [
      [{ ...green, id: "green", backupSources: "9" }, "backupSources", "same number of outputs"],
      [{ ...green, name: "Blue", main0: RENDER_2, backup: "00000000000000b2", main0Destinations: "6, 7" }, "destinations", "already fed by group"],
      [{ ...green, main0Destinations: "5" }, "main0Destinations", "one destination for each source"],
      [{ ...green, main0Sources: "0, x" }, "main0Sources", "router port numbers"],
      [{ ...green, name: "" }, "name", "Name the group"],
      [{ ...green, holdSeconds: "0" }, "holdSeconds", "at least 1 s"],
      [{ ...green, backup: "not-a-machine" }, "backup", "Choose a machine"],
      [{ ...green, id: "gone" }, "form", "no longer on the main"],
    ];
    for (const [form, field, words] of cases) {
      const response = await formPost(main.node, "/backup-groups", form);
      expect(response.status).toBe(400);
      const html = await response.text();
      const error = html.slice(html.indexOf(`data-testid="group-error-${field}"`));
      expect(error.split("</p>")[0]).toContain(words);
      expect(readFileSync(join(main.dataDir, "backup-groups.json"), "utf8")).toBe(before);
    }
    const router = await formPost(main.node, "/backup-groups/router", { router: "not an address!" });
    expect(router.status).toBe(400);
    expect(await router.text()).toContain('data-testid="group-error-router"');

    // A page of another origin posts nothing.
    const forged = await formPost(main.node, "/backup-groups/delete", { id: "green" }, { origin: "http://evil.example" });
    expect(forged.status).toBe(403);
    expect(readFileSync(join(main.dataDir, "backup-groups.json"), "utf8")).toBe(before);
  }, 30_000);

  test("the paired backup copies the groups and shows them read-only; a level-2 client reads them, a level-3 client saves them through the main", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const mainAt = main.node.status().peerListen!;
    const backup = await node({ role: "backup", main: mainAt }, key);
    expect((await formPost(main.node, "/machines/backup", { address: backup.node.status().peerListen! })).status).toBe(200);
    expect((await formPost(main.node, "/backup-groups", green)).status).toBe(200);
    await waitFor("the backup's copy", () => existsSync(join(backup.dataDir, "backup-groups.json")) && stored(backup.dataDir).groups.length === 1, 10_000);
    expect(stored(backup.dataDir)).toEqual(stored(main.dataDir));

    const backupPage = await (await get(backup.node, "/backup-groups")).text();
    expect(backupPage).toContain('data-testid="groups-read-only"');
    expect(backupPage).not.toContain('data-testid="group-form"');
    expect(backupPage).toContain("Green");
    const refused = await formPost(backup.node, "/backup-groups", { ...green, name: "Blue" });
    expect(refused.status).toBe(409);
    expect(stored(backup.dataDir).groups).toHaveLength(1);

    const client = await node({ role: "client", main: mainAt }, key);
    const clientId = client.node.status().id;
    await waitFor("the main hears the client", () => main.node.status().failover!.peers.some((p) => p.id === clientId), 10_000);
    const level2 = await (await get(client.node, "/backup-groups")).text();
    expect(level2).toContain("Green");
    expect(level2).toContain('data-testid="groups-read-only"');
    expect((await formPost(client.node, "/backup-groups/delete", { id: "green" })).status).toBe(403);
    expect(stored(main.dataDir).groups).toHaveLength(1);

    expect((await formPost(main.node, "/machines/permission", { machine: clientId, level: "3" })).status).toBe(200);
    await waitFor("the client learns level 3", () => client.node.permission() === 3, 10_000);
    const blue = { ...green, name: "Blue", main0: RENDER_2, backup: "00000000000000b2", main0Destinations: "7, 8" };
    const saved = await formPost(client.node, "/backup-groups", blue);
    expect(saved.status).toBe(200);
    expect(stored(main.dataDir).groups.map((g: { id: string }) => g.id)).toEqual(["green", "blue"]);
    // The main's checks apply to a client's save too.
    const clash = await formPost(client.node, "/backup-groups", { ...blue, id: "", name: "Red", main0: "00000000000000a3", backup: "00000000000000b3" });
    expect(clash.status).toBe(400);
    expect(await clash.text()).toContain("already fed by group");
    await waitFor("the backup copies the client's change", () => stored(backup.dataDir).groups.length === 2, 10_000);
  }, 60_000);
});
