/**
 * "A warning when the licenses of a group differ": each engine reports its
 * license type on its peer port's /identity; the Backup groups panel warns
 * beside a group whose engines differ (saved all the same), and says nothing
 * for a group whose engines agree or that it cannot ask.
 */
import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import type { LicenseType } from "../../../src/core/license.ts";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { engineLicenses } from "../../../src/services/engine-licenses.ts";
import { formPost, setUpDataDir, startNode } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

const running: MachineNode[] = [];
afterEach(async () => {
  for (const node of running.splice(0)) await node.stop();
});

async function node(flags: Record<string, string>, key: Uint8Array, license: LicenseType = "server-with-failover") {
  const started = await startNode({ dataDir: setUpDataDir(key, license), flags: { heartbeatMs: "50", failoverTimeoutMs: "250", ...flags } });
  running.push(started.node);
  return started.node;
}

const warnings = (html: string) => [...html.matchAll(/data-testid="group-warning">([^<]*)</g)].map((m) => m[1]!.replaceAll("&quot;", '"'));

test("engines with different licenses: a warning beside the group, saved all the same; engines that agree: none", async () => {
  const key = nacl.randomBytes(32);
  const main = await node({ role: "main" }, key);
  const mainAt = main.status().peerListen!;
  const renderA = await node({ role: "client", main: mainAt, name: "render-a" }, key, "client");
  const spareA = await node({ role: "client", main: mainAt, name: "spare-a" }, key, "server");
  const renderB = await node({ role: "client", main: mainAt, name: "render-b" }, key, "client");
  const spareB = await node({ role: "client", main: mainAt, name: "spare-b" }, key, "client");
  const ids = [renderA, spareA, renderB, spareB].map((n) => n.status().id);
  await waitFor("the main hears every engine", () => ids.every((id) => main.status().failover!.peers.some((p) => p.id === id)), 10_000);

  const a = { name: "A", main0: ids[0]!, main0Sources: "1", main0Destinations: "1", backup: ids[1]!, backupSources: "9", mode: "auto", switchBack: "auto", holdSeconds: "10" };
  const saved = await formPost(main, "/backup-groups", a);
  expect(saved.status).toBe(200);
  expect(warnings(await saved.text())).toEqual(["Warning: the engines of this group have different licenses (render-a: client; spare-a: server): a backup may not run what its main runs."]);
  const b = { ...a, name: "B", main0: ids[2]!, main0Destinations: "2", backup: ids[3]! };
  expect((await formPost(main, "/backup-groups", b)).status).toBe(200);
  const page = await (await main.app.request("http://localhost/backup-groups")).text();
  expect(warnings(page)).toHaveLength(1);
  expect(page.indexOf('data-testid="group-warning"')).toBeLessThan(page.indexOf('data-group-id="b"'));
}, 40_000);

test("an engine that does not answer, or answers as another machine, is left out", async () => {
  const answers: Record<string, unknown> = {
    "10.0.0.1:7401": { id: "00000000000000a1", license: "client" },
    "10.0.0.2:7401": { id: "someone-else", license: "server" },
    "10.0.0.3:7401": { id: "00000000000000a3", license: "not a license" },
  };
  const fake = (async (url: string | URL | Request) => {
    const address = new URL(String(url)).host;
    if (!(address in answers)) throw new Error("refused");
    return Response.json(answers[address]);
  }) as typeof fetch;
  const peers = [
    { id: "00000000000000a1", address: "10.0.0.1:7401" },
    { id: "00000000000000a2", address: "10.0.0.2:7401" },
    { id: "00000000000000a3", address: "10.0.0.3:7401" },
    { id: "00000000000000a4", address: "10.0.0.4:7401" },
  ];
  expect(await engineLicenses(peers, fake)).toEqual({ "00000000000000a1": "client" });
});
