/**
 * Every input a page can send to the Backup groups panel, its Test
 * connection and the Health panel's switch: a clear error beside the field
 * (or above the button for hidden fields) and nothing changed; a foreign
 * name, a foreign page or a missing password gets nothing at all.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import { MAX_BACKUP_GROUPS } from "../../../src/core/backup-groups.ts";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { BackupGroupsFile } from "../../../src/store/backup-groups-file.ts";
import { formPost, setUpDataDir, startNode } from "../../support/machine-node.ts";
import { VideohubSim } from "../../support/videohub-sim.ts";

const running: MachineNode[] = [];
const sims: VideohubSim[] = [];
afterEach(async () => {
  for (const node of running.splice(0)) await node.stop();
  for (const sim of sims.splice(0)) sim.stop();
});

async function main(env: Record<string, string> = {}) {
  const started = await startNode({ dataDir: setUpDataDir(nacl.randomBytes(32)), flags: { role: "main", heartbeatMs: "50", failoverTimeoutMs: "250" }, env });
  running.push(started.node);
  return started;
}

const RENDER_1 = "00000000000000a1";
const SPARE = "00000000000000b1";
const green = { name: "Green", main0: RENDER_1, main0Sources: "1", main0Destinations: "5", backup: SPARE, backupSources: "9", mode: "auto", switchBack: "auto", holdSeconds: "10" };
const fileText = (dataDir: string) => readFileSync(join(dataDir, "backup-groups.json"), "utf8");

/** The refusal beside `field` (data-testid="group-error-<field>"), unescaped. */
function besideField(html: string, field: string): string | null {
  const at = html.indexOf(`data-testid="group-error-${field}"`);
  return at < 0 ? null : html.slice(at).split("</p>")[0]!.replace(/^[^>]*>/, "").replaceAll("&quot;", '"').replaceAll("&#39;", "'");
}

describe("Backup groups panel inputs", () => {
  test("each bad field is refused beside it (or above the button), twice alike, and the file is unchanged", async () => {
    const m = await main();
    expect((await formPost(m.node, "/backup-groups", green)).status).toBe(200);
    expect((await formPost(m.node, "/backup-groups/router", { router: "127.0.0.1" })).status).toBe(200);
    const before = fileText(m.dataDir);
    const cases: [string, Record<string, string>, number, string, string][] = [
      ["/backup-groups", { ...green, switchBack: "sometimes" }, 400, "switchBack", "Choose automatic or manual switch back"],
      ["/backup-groups", { ...green, mode: "" }, 400, "mode", "Choose automatic or manual failover"],
      ["/backup-groups", { ...green, id: "../etc" }, 400, "form", "not a group of this main"],
      ["/backup-groups", { ...green, main0: "" }, 400, "main0", "Choose at least one main engine"],
      ["/backup-groups", { ...green, backupSources: "" }, 400, "backupSources", "backup engine's router source"],
      ["/backup-groups", { ...green, main0Sources: "1025" }, 400, "main0Sources", "router port numbers 1 to 1024"],
      ["/backup-groups", { ...green, main0Sources: "10000" }, 400, "main0Sources", "router port numbers 1 to 1024"],
      ["/backup-groups", { ...green, main0Sources: Array.from({ length: 17 }, (_, i) => i + 1).join(","), main0Destinations: "1" }, 400, "main0Sources", "router port numbers"],
      ["/backup-groups", { ...green, holdSeconds: "ten" }, 400, "holdSeconds", "hold time in seconds"],
      ["/backup-groups", { ...green, holdSeconds: "2.5" }, 400, "holdSeconds", "whole seconds"],
      ["/backup-groups", { ...green, holdSeconds: "601" }, 400, "holdSeconds", "at most 600 s"],
      ["/backup-groups", { ...green, name: "x".repeat(65) }, 400, "name", "under 64 characters"],
      ["/backup-groups", { ...green, name: "Blue", main0: "00000000000000a3", main0Destinations: "7", main1: "00000000000000a3", main1Sources: "2", main1Destinations: "8", backup: "00000000000000b3" }, 400, "backup", "appears twice in the group"],
      ["/backup-groups", { ...green, name: "Blue", main0: "00000000000000a2", backup: "00000000000000b2" }, 400, "destinations", "already fed by group"],
      ["/backup-groups", { ...green, name: "Blue", main0Destinations: "7", backup: "00000000000000b2" }, 400, "backup", "already in group"],
      ["/backup-groups/delete", { id: "blue" }, 400, "form", "no longer on the main"],
      ["/backup-groups/delete", { id: "NOT VALID" }, 400, "form", "not a group of this main"],
      ["/backup-groups/delete", {}, 400, "form", "Choose a group"],
      ["/backup-groups/router", { router: "127.0.0.1", routerEnabled: "yes" }, 400, "routerEnabled", "Tick Enable Videohub connection"],
      ["/backup-groups/router", { router: "[::1" }, 400, "router", "Type the router's IP address"],
      ["/backup-groups/router", { router: "10.0.0.50:0" }, 400, "router", "Type the router's IP address"],
    ];
    for (const [path, fields, status, field, words] of cases) {
      for (let i = 0; i < 2; i++) {
        const response = await formPost(m.node, path, fields);
        const html = await response.text();
        expect([path, JSON.stringify(fields).slice(0, 80), response.status]).toEqual([path, JSON.stringify(fields).slice(0, 80), status]);
        expect([path, field, besideField(html, field)]).toEqual([path, field, expect.stringContaining(words)]);
        expect(fileText(m.dataDir)).toBe(before);
      }
    }
  }, 30_000);

  test(`a ${MAX_BACKUP_GROUPS + 1}th group is refused with the limit, not as a damaged file`, async () => {
    const m = await main();
    const groups = Array.from({ length: MAX_BACKUP_GROUPS }, (_, i) => ({
      id: `g${i}`,
      name: `G${i}`,
      mains: [{ machineId: `m${i}`, outputs: [{ source: i, destination: i }] }],
      backup: { machineId: `b${i}`, sources: [i] },
      failoverMode: "auto" as const,
      switchBack: "auto" as const,
      holdTimeMs: 10_000,
    }));
    new BackupGroupsFile(m.dataDir).replace({ router: null, groups });
    const before = fileText(m.dataDir);
    const response = await formPost(m.node, "/backup-groups", { ...green, main0Destinations: "1000" });
    const html = await response.text();
    expect(response.status).toBe(400);
    expect(besideField(html, "form")).toContain(`at most ${MAX_BACKUP_GROUPS} backup groups`);
    expect(fileText(m.dataDir)).toBe(before);
  }, 30_000);

  test("a foreign name (DNS rebinding), a foreign page and a missing password change nothing, on IPv6 too", async () => {
    const m = await main({ UNDERSTUDY_UI_PASSWORD: "correct horse battery" });
    const basic = { authorization: `Basic ${Buffer.from("admin:correct horse battery").toString("base64")}` };
    expect((await formPost(m.node, "/backup-groups", green, basic)).status).toBe(200);
    const before = fileText(m.dataDir);
    const router = new VideohubSim().start();
    sims.push(router);
    const posts: [string, Record<string, string>][] = [
      ["/backup-groups", { ...green, name: "Blue", main0Destinations: "7", main0: "00000000000000a2", backup: "00000000000000b2" }],
      ["/backup-groups/delete", { id: "green" }],
      ["/backup-groups/router", { router: `127.0.0.1:${router.port}`, routerEnabled: "on" }],
      ["/backup-groups/router/test", { router: `127.0.0.1:${router.port}` }],
      ["/health/switch", { group: "green", main: RENDER_1, to: "backup" }],
    ];
    for (const [path, fields] of posts) {
      expect([path, (await formPost(m.node, path, fields, { ...basic, host: "evil.example:7400", origin: "http://evil.example:7400" })).status]).toEqual([path, 421]);
      expect([path, (await formPost(m.node, path, fields, { ...basic, origin: "http://evil.example" })).status]).toEqual([path, 403]);
      expect([path, (await formPost(m.node, path, fields, { host: "[::1]:7400", origin: "http://[::1]:7400" })).status]).toEqual([path, 401]);
      expect([path, (await formPost(m.node, path, fields, { ...basic, host: "[::1]:7400", origin: "http://evil.example" })).status]).toEqual([path, 403]);
    }
    expect(fileText(m.dataDir)).toBe(before);
    expect(router.connections).toBe(0);
  }, 30_000);
});

describe("Health panel switch inputs", () => {
  test("garbage is refused with a clear message and switches nothing", async () => {
    const m = await main();
    expect((await formPost(m.node, "/backup-groups", green)).status).toBe(200);
    const cases: [Record<string, string>, number, string][] = [
      [{}, 400, "Choose a group."],
      [{ group: "Green!", main: RENDER_1, to: "backup" }, 400, "not a backup group"],
      [{ group: "green", main: "", to: "backup" }, 400, "Choose an engine."],
      [{ group: "green", main: "x".repeat(500), to: "backup" }, 400, "not an engine of this group"],
      [{ group: "green", main: RENDER_1, to: "sideways" }, 400, "Switch to the backup or back to the main"],
      [{ group: "nope", main: RENDER_1, to: "backup" }, 409, "no main engine"],
      [{ group: "green", main: SPARE, to: "backup" }, 409, "no main engine"],
    ];
    for (const [fields, status, words] of cases) {
      for (let i = 0; i < 2; i++) {
        const response = await formPost(m.node, "/health/switch", fields);
        const html = await response.text();
        expect([JSON.stringify(fields).slice(0, 60), response.status]).toEqual([JSON.stringify(fields).slice(0, 60), status]);
        const message = html.slice(html.indexOf('data-testid="health-message"')).split("</p>")[0]!;
        expect(message).toContain(words);
      }
    }
    expect(JSON.stringify(await m.node.engineHealth())).not.toContain('"replaced"');
  }, 30_000);
});
