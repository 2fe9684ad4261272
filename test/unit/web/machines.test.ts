/**
 * The Machines page and its API over real HTTP (the node's own server on a
 * loopback port), for machines that do not run DNS-SD: a stand-alone machine
 * and a server started with --discovery off. Discovery itself, across
 * machines, is test/faults/discovery.test.ts.
 */
import { describe, expect, test } from "bun:test";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { formPost, nodesPerTest, setUpDataDir } from "../../support/machine-node.ts";

const fresh = nodesPerTest();

const get = (node: MachineNode, path: string) => fetch(`${node.uiUrl}${path}`);
const discoveryEvents = (lines: string[]) => lines.filter((l) => l.includes('"event":"discovery.'));

const cases = [
  {
    name: "a stand-alone machine",
    start: () => fresh(),
    discovery: "standalone",
    message: "A stand-alone machine does not look for others.",
  },
  {
    name: "a server started with --discovery off",
    start: () => fresh({ dataDir: setUpDataDir(), flags: { role: "server", discovery: "off" } }),
    discovery: "off",
    message: "Discovery is off on this machine: type addresses instead.",
  },
] as const;

for (const c of cases) {
  describe(`Machines for ${c.name}`, () => {
    test(`GET /api/machines/discovered says "${c.discovery}" with no machines`, async () => {
      const { node, lines } = await c.start();
      const response = await get(node, "/api/machines/discovered");
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("application/json");
      expect(await response.json()).toEqual({ discovery: c.discovery, machines: [] });
      expect(discoveryEvents(lines)).toEqual([]);
    });

    test("GET /machines is a full page that says why nothing is listed", async () => {
      const { node } = await c.start();
      const response = await get(node, "/machines");
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/html");
      const html = await response.text();
      for (const s of ["<!DOCTYPE html>", "<h1>Machines</h1>", 'id="discovered"', 'hx-sse:connect="/events?panel=machines"', 'data-testid="status-chip"', c.message]) {
        expect(html).toContain(s);
      }
      expect(html).not.toContain('data-testid="discovered-table"');
    });
  });
}

describe("Machines follows the role", () => {
  test("a stand-alone machine made a server on the setup page, with --discovery off, says off", async () => {
    const { node, lines } = await fresh({ dataDir: setUpDataDir(), flags: { discovery: "off" } });
    expect(await (await get(node, "/api/machines/discovered")).json()).toEqual({ discovery: "standalone", machines: [] });

    const response = await formPost(node, "/setup/role", { role: "server" });
    expect(response.status).toBe(200);
    expect(await (await get(node, "/api/machines/discovered")).json()).toEqual({ discovery: "off", machines: [] });
    // A server shows its Asset Hub cache and free disk (the backup's once one is paired).
    expect(await (await get(node, "/machines")).text()).toMatch(/data-testid="storage-status">Asset Hub cache: main [\d.]+ GB \([\d.]+ GB free\)/);

    expect((await formPost(node, "/setup/role", { role: "standalone" })).status).toBe(200);
    expect(await (await get(node, "/api/machines/discovered")).json()).toEqual({ discovery: "standalone", machines: [] });
    expect(discoveryEvents(lines)).toEqual([]);
  });

  test("the API is behind the UI password like every other page", async () => {
    const { node } = await fresh({ env: { UNDERSTUDY_UI_PASSWORD: "correct horse" } });
    expect((await get(node, "/api/machines/discovered")).status).toBe(401);
    expect((await get(node, "/machines")).status).toBe(401);
    const auth = { authorization: `Basic ${Buffer.from("admin:correct horse").toString("base64")}` };
    const response = await fetch(`${node.uiUrl}/api/machines/discovered`, { headers: auth });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ discovery: "standalone", machines: [] });
  });
});
