/**
 * The console's panels and actions over app.request(): every route, with bad
 * input, on machines of each kind; Add Backup server and its removal through
 * the real pairing exchange between two in-process machines on loopback.
 */
import { parseHostPort } from "../../../src/core/config.ts";
import { secureDialer } from "../../../src/net/peer-net.ts";
import { KeptCalls, oneShotCaller } from "../../../src/net/kept-calls.ts";
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { firstEvent, formPost, setUpDataDir, startNode } from "../../support/machine-node.ts";
import type { LicenseType } from "../../../src/core/license.ts";
import { tempDir } from "../../support/machine-process.ts";
import { waitFor } from "../../support/wait-for.ts";
import { consoleChip } from "../../../src/core/console-chip.ts";
import { fileCommand } from "../../../src/cli/file-commands.ts";
import { askAllLevels, askLevel } from "../../../src/services/console-service.ts";

const running: MachineNode[] = [];
afterEach(async () => {
  for (const node of running.splice(0)) await node.stop();
});

async function node(flags: Record<string, string> = {}, key = nacl.randomBytes(32), type?: LicenseType) {
  const started = await startNode({ dataDir: Object.keys(flags).length ? setUpDataDir(key, type) : undefined, flags: { heartbeatMs: "50", failoverTimeoutMs: "250", ...flags } });
  running.push(started.node);
  return started;
}

const get = (n: MachineNode, path: string) => n.app.request(`http://localhost${path}`);

describe("panels", () => {
  const panels = [
    { path: "/status", contains: ['data-testid="status-facts"', "Active server", "Epoch", "Last failover"] },
    { path: "/machines", contains: ['data-testid="machines-table"', "this machine"] },
    { path: "/delays", contains: ['id="delay-table"'] },
    { path: "/routing", contains: ['data-testid="routing-table"', "Data Hub it is on"] },
    { path: "/storage", contains: ['id="storage-status"', 'id="storage-history"'] },
  ];
  for (const p of panels) {
    test(`GET ${p.path} on a stand-alone machine and on a server: the chip, the live stream, the panel`, async () => {
      for (const { node: n } of [await node(), await node({ role: "server" })]) {
        const response = await get(n, p.path);
        expect(response.status).toBe(200);
        const html = await response.text();
        for (const s of ['data-testid="status-chip"', `hx-sse:connect="/events?panel=${p.path.slice(1)}"`, 'src="/static/hx-sse.js"', ...p.contains]) expect(html).toContain(s);
      }
    });
  }

  test("the Machines panel of a server lists itself first with its license and key, and offers Add Backup server", async () => {
    const { node: n } = await node({ role: "server" });
    const html = await (await get(n, "/machines")).text();
    expect(html).toContain("Server with failover");
    expect(html).toContain(n.status().networkKeyFingerprint!);
    expect(html).toContain('data-testid="add-backup"');
    expect(html).not.toContain('data-testid="remove-backup"');
  });

  test("a client is offered no Add Backup server", async () => {
    const { node: n } = await node({ role: "client", main: "127.0.0.1:9" });
    expect(await (await get(n, "/machines")).text()).not.toContain('data-testid="add-backup"');
  });
});

describe("live stream", () => {
  test("GET /events sends the status bar and the panel's live parts, each to swap out of band", async () => {
    const { node: n } = await node({ role: "server" });
    const first = await firstEvent(n, "/events?panel=machines");
    expect(first.status).toBe(200);
    expect(first.type).toContain("text/event-stream");
    for (const s of ['id="status-bar"', 'id="machines-table"', 'id="switch-back"', 'id="discovered"']) expect(first.text).toContain(s);
    expect(first.text.match(/hx-swap-oob="true"/g)!.length).toBeGreaterThanOrEqual(4);
  });

  for (const query of ["", "?panel=", "?panel=admin", "?panel=../setup"]) {
    test(`GET /events${query} is refused`, async () => {
      const { node: n } = await node();
      const response = await get(n, `/events${query}`);
      expect(response.status).toBe(400);
      expect(await response.text()).toContain("Unknown panel");
    });
  }
});

describe("Add Backup server and remove it", () => {
  test("by IP address: the pairing exchange runs at once, the backup row gets its delete icon, and removing it unpairs both", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    // The backup checks who answers at the main's address, port included: its setup names the main's real one.
    const backup = await node({ role: "backup", main: main.node.status().peerListen! }, key);
    const backupAt = backup.node.status().peerListen!;

    const response = await formPost(main.node, "/machines/backup", { address: backupAt });
    expect(response.status).toBe(200);
    // The result shows above the table, sent there by the response whatever the live table did to the form meanwhile.
    expect(await response.text()).toBe('<div id="backup-result"><p class="saved" role="status">' + `${backup.node.status().name} is now the backup server: it is copying what this main holds.</p></div>`);
    expect(response.headers.get("HX-Retarget")).toBe("#backup-result");
    expect(response.headers.get("HX-Reswap")).toBe("outerHTML");
    expect(main.node.status().failover?.pairing?.address).toBe(backupAt);
    expect(JSON.parse(readFileSync(join(main.dataDir, "config.json"), "utf8")).backup).toBe(backupAt);
    await waitFor("the backup row with its delete icon", async () => (await (await get(main.node, "/machines")).text()).includes('data-testid="remove-backup"'), 10_000);
    // Discovery is off: the license both sides sent in the exchange is what the Machines panel and the status know.
    expect(main.node.status().failover?.pairing?.peerLicense).toBe("server-with-failover");
    expect(backup.node.status().failover?.pairing?.peerLicense).toBe("server-with-failover");
    expect(JSON.parse(readFileSync(join(main.dataDir, "pairing.json"), "utf8")).peerLicense).toBe("server-with-failover");
    // Each lane's lag, from the lanes both servers announce, on the status and in /metrics.
    await waitFor("both lanes caught up", () => main.node.status().replication?.hubState === 0 && main.node.status().replication?.log === 0, 10_000);
    const metrics = await (await get(main.node, "/metrics")).text();
    expect(metrics).toContain('understudy_lane_lag{lane="hub_state"} 0');
    expect(metrics).toContain('understudy_lane_lag{lane="show_file_and_assets"} 0');

    const again = await formPost(main.node, "/machines/backup", { address: backupAt });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain("remove it first");

    const removed = await formPost(main.node, "/machines/backup/remove", {});
    expect(removed.status).toBe(200);
    expect(main.node.status().failover?.pairing).toBeNull();
    await waitFor("the backup lets go", () => backup.node.status().failover?.pairing == null, 10_000);
    expect(JSON.parse(readFileSync(join(main.dataDir, "config.json"), "utf8")).backup ?? null).toBeNull();
  }, 30_000);

  test("removal in the documented order: the backup and a client that names it go grey 'No backup'; added again, 'Backup is idle' like the first time", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    // Step 1 of the documentation: the backup's license and role only; the main adds it by address.
    const backup = await node({ role: "backup" }, key);
    const client = await node({ role: "client", main: main.node.status().peerListen!, backup: backup.node.status().peerListen! }, key);
    const chipOf = (n: MachineNode) => consoleChip(n.status()).text;
    expect(chipOf(backup.node)).toBe("Waiting to be added by a main server");
    const backupAt = backup.node.status().peerListen!;
    for (let round = 0; round < 2; round++) {
      expect((await formPost(main.node, "/machines/backup", { address: backupAt })).status).toBe(200);
      for (const n of [main, backup, client]) await waitFor(`round ${round}: idle everywhere`, () => chipOf(n.node) === "Backup is idle", 15_000);
      expect((await formPost(main.node, "/machines/backup/remove", {})).status).toBe(200);
      for (const n of [main, client]) await waitFor(`round ${round}: grey No backup`, () => chipOf(n.node) === "No backup", 10_000);
      await waitFor(`round ${round}: the backup waits again`, () => chipOf(backup.node) === "Waiting to be added by a main server", 10_000);
    }
  }, 60_000);

  test("a backup that names no main takes the first that proves itself; its page says whose backup it is and its operator may forget it", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main", name: "studio-main" }, key);
    const backup = await node({ role: "backup" }, key);
    const mainAt = main.node.status().peerListen!;
    expect((await formPost(main.node, "/machines/backup", { address: backup.node.status().peerListen! })).status).toBe(200);
    await waitFor("the backup paired", () => backup.node.status().failover?.pairing?.peerName === "studio-main", 10_000);
    const page = await (await get(backup.node, "/machines")).text();
    expect(page).toContain(`Backup of studio-main at ${mainAt}`);
    expect(page).toContain('data-testid="forget-main"');
    // Another site's page in the operator's browser cannot make it forget.
    expect((await formPost(backup.node, "/machines/main/forget", {}, { origin: "http://evil.example" })).status).toBe(403);
    expect(backup.node.status().failover?.pairing?.peerName).toBe("studio-main");
    for (let i = 0; i < 2; i++) {
      const forgot = await formPost(backup.node, "/machines/main/forget", {});
      expect(forgot.status).toBe(200);
      expect(await forgot.text()).toContain("This backup has forgotten its main");
    }
    expect(backup.node.status().failover?.pairing ?? null).toBeNull();
    // Not on a main.
    expect((await formPost(main.node, "/machines/main/forget", {})).status).toBe(409);
  }, 30_000);

  const refusals: { name: string; setup: () => ReturnType<typeof node>; fields: Record<string, string>; status: number; message: string; headers?: Record<string, string> }[] = [
    { name: "no address", setup: () => node({ role: "main" }), fields: {}, status: 400, message: "Type the backup server&#39;s IP address" },
    { name: "not an address", setup: () => node({ role: "main" }), fields: { address: "backup please" }, status: 400, message: "Type an IP address such as 10.0.0.2" },
    { name: "nothing answers there", setup: () => node({ role: "main" }), fields: { address: "127.0.0.1:9" }, status: 502, message: "nothing answers there" },
    { name: "nothing answers there, on IPv6", setup: () => node({ role: "main" }), fields: { address: "[::1]:9" }, status: 502, message: "nothing answers there" },
    { name: "a stand-alone machine", setup: () => node(), fields: { address: "127.0.0.1:9" }, status: 400, message: "not on the network" },
    { name: "a client of level 2", setup: () => node({ role: "client", main: "127.0.0.1:9" }), fields: { address: "127.0.0.1:9" }, status: 403, message: "permission level 2, which may not add a backup server" },
    { name: "a backup server", setup: () => node({ role: "backup", main: "127.0.0.1:9" }), fields: { address: "127.0.0.1:9" }, status: 409, message: "Only the main server adds a backup server." },
    { name: "a backup fixed by --backup", setup: () => node({ role: "main", backup: "127.0.0.1:9" }), fields: { address: "127.0.0.1:9" }, status: 400, message: "fixed on its command line (--backup)" },
  ];
  for (const r of refusals) {
    test(`refused: ${r.name}, with what was typed kept`, async () => {
      const { node: n } = await r.setup();
      const response = await formPost(n, "/machines/backup", r.fields);
      expect(response.status).toBe(r.status);
      const html = await response.text();
      expect(html).toContain(r.message);
      if (r.fields.address) expect(html).toContain(`value="${r.fields.address}"`);
      // The in-row form comes back in place, not preserved (so the reason shows), with nothing else on the page touched.
      if (r.status !== 403) expect(html.startsWith('<div id="add-backup" class="row-form">')).toBe(true);
    }, 15_000);
  }

  test("a main whose license has no failover is told so in plain words", async () => {
    const key = nacl.randomBytes(32);
    const { node: n } = await node({ role: "server" }, key, "server");
    const response = await formPost(n, "/machines/backup", { address: "127.0.0.1:9" });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain("both servers need a server-with-failover license");
  });

  test("a form posted from another site is refused (CSRF)", async () => {
    const { node: n } = await node({ role: "main" });
    expect((await formPost(n, "/machines/backup", { address: "127.0.0.1:9" }, { origin: "http://evil.example" })).status).toBe(403);
    expect((await formPost(n, "/machines/backup/remove", {}, { origin: "http://evil.example" })).status).toBe(403);
  });

  test("removing on a level-2 client or on a backup is refused", async () => {
    const client = await node({ role: "client", main: "127.0.0.1:9" });
    let response = await formPost(client.node, "/machines/backup/remove", {});
    expect(response.status).toBe(403);
    expect(await response.text()).toContain("permission level 2, which may not remove the backup server");
    const backup = await node({ role: "backup", main: "127.0.0.1:9" });
    response = await formPost(backup.node, "/machines/backup/remove", {});
    expect(response.status).toBe(409);
    expect(await response.text()).toContain("Only the main server removes its backup server.");
  });
});

describe("switch back and metrics", () => {
  test("switch back where there is nothing to switch back is refused in plain words", async () => {
    const standalone = await node();
    let response = await formPost(standalone.node, "/failover/switch-back", {});
    expect(response.status).toBe(409);
    expect(await response.text()).toContain("A stand-alone machine has no network to switch back.");
    const backup = await node({ role: "backup", main: "127.0.0.1:9" });
    response = await formPost(backup.node, "/failover/switch-back", {});
    expect(response.status).toBe(409);
    expect(await response.text()).toContain("on a client with permission level 3");
  });

  test("a second click after the main took the network back is answered calmly", async () => {
    const { node: n } = await node({ role: "main" });
    await waitFor("the main serves", () => n.status().failover?.state === "active", 5_000);
    const response = await formPost(n, "/failover/switch-back", {});
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Back on the main server.");
  });

  test("GET /metrics is Prometheus text", async () => {
    const { node: n } = await node({ role: "server" });
    const response = await get(n, "/metrics");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await response.text();
    expect(text).toContain("# TYPE understudy_peer_rtt_ms histogram");
    expect(text).toContain("understudy_failovers_total 0");
    // A server's own Data Hub (its node's uplink is attached in process) and its Asset Hub cache.
    expect(text).toMatch(/^understudy_hub_clients \d+$/m);
    expect(text).toMatch(/^understudy_asset_cache_bytes\{server="main"\} \d+$/m);
  });

  test("panels, the stream and metrics are behind the UI password", async () => {
    const started = await startNode({ env: { UNDERSTUDY_UI_PASSWORD: "studio-secret" } });
    running.push(started.node);
    for (const path of ["/status", "/machines", "/delays", "/routing", "/metrics", "/events?panel=status"]) {
      expect((await get(started.node, path)).status).toBe(401);
    }
    expect((await formPost(started.node, "/machines/backup", { address: "127.0.0.1:9" })).status).toBe(401);
  });
});

describe("permission levels", () => {
  test("set on the main for a client it hears; the client learns it, and below level 3 it may not switch back (403)", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const client = await node({ role: "client", main: main.node.status().peerListen! }, key);
    const clientId = client.node.status().id;
    await waitFor("the main hears the client", () => main.node.status().failover!.peers.some((p) => p.id === clientId), 10_000);

    expect(client.node.permission()).toBe(2);
    let response = await formPost(client.node, "/failover/switch-back", {});
    expect(response.status).toBe(403);
    expect(await response.text()).toContain("permission level 2, which may not switch the network back");
    expect(await (await get(client.node, "/machines")).text()).toContain("This machine has permission level 2 · sees others read-only");

    const machines = await (await get(main.node, "/machines")).text();
    expect(machines).toContain(`name="machine" value="${clientId}"`);
    response = await formPost(main.node, "/machines/permission", { machine: clientId, level: "3" });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Permission level 3 set.");
    expect(JSON.parse(readFileSync(join(main.dataDir, "permissions.json"), "utf8"))).toEqual({ [clientId]: 3 });
    await waitFor("the client learns level 3", () => client.node.permission() === 3, 10_000);

    // Level 3 asks the main, which serves, so there is nothing to switch back: said calmly.
    response = await formPost(client.node, "/failover/switch-back", {});
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Back on the main server.");

    // Level 3 may also add the backup and remove it: the main does both, as on its own panel.
    const backup = await node({ role: "backup", main: main.node.status().peerListen! }, key);
    const backupAt = backup.node.status().peerListen!;
    expect(await (await get(client.node, "/machines")).text()).toContain('data-testid="add-backup"');
    response = await formPost(client.node, "/machines/backup", { address: backupAt });
    expect(response.status).toBe(200);
    expect(main.node.status().failover?.pairing?.address).toBe(backupAt);
    response = await formPost(client.node, "/machines/backup/remove", {});
    expect(response.status).toBe(200);
    expect(main.node.status().failover?.pairing).toBeNull();
  }, 40_000);

  test("a level-2 client lists the other clients the main hears, with their levels; at level 1 it lists none", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const at = main.node.status().peerListen!;
    const viewer = await node({ role: "client", main: at, name: "control-1" }, key);
    const other = await node({ role: "client", main: at, name: "render-7" }, key);
    const [viewerId, otherId] = [viewer.node.status().id, other.node.status().id];
    await waitFor("the main hears both clients", () => [viewerId, otherId].every((id) => main.node.status().failover!.peers.some((p) => p.id === id)), 10_000);
    expect((await formPost(main.node, "/machines/permission", { machine: otherId, level: "3" })).status).toBe(200);
    await waitFor("the client learns the others from the main", () => viewer.node.otherClients().some((c) => c.id === otherId && c.level === 3), 10_000);
    expect(viewer.node.otherClients().map((c) => c.id)).not.toContain(viewerId);
    const row = (html: string) => html.slice(html.indexOf(`data-machine-id="${otherId}"`)).split("</tr>")[0]!;
    const machines = await (await get(viewer.node, "/machines")).text();
    expect(row(machines)).toContain("render-7");
    expect(row(machines)).toContain("on the main (as the server sees it)");
    expect(row(machines)).toContain("3 · may change everything");
    expect(row(await (await get(viewer.node, "/routing")).text())).toContain("the main server&#39;s");

    expect((await formPost(main.node, "/machines/permission", { machine: viewerId, level: "1" })).status).toBe(200);
    await waitFor("the level-1 client is told of no other client", () => viewer.node.permission() === 1 && viewer.node.otherClients().length === 0, 10_000);
    expect(await (await get(viewer.node, "/machines")).text()).not.toContain("render-7");
  }, 40_000);

  test("the paired backup copies the levels, so a client started while the main is down keeps its rights", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const mainAt = main.node.status().peerListen!;
    const backup = await node({ role: "backup", main: mainAt }, key);
    const backupAt = backup.node.status().peerListen!;
    expect((await formPost(main.node, "/machines/backup", { address: backupAt })).status).toBe(200);
    const clientDir = setUpDataDir(key, "client");
    const clientFlags = { heartbeatMs: "50", failoverTimeoutMs: "250", role: "client", main: mainAt, backup: backupAt };
    let client = await startNode({ dataDir: clientDir, flags: clientFlags });
    running.push(client.node);
    const clientId = client.node.status().id;
    await waitFor("the main hears the client", () => main.node.status().failover!.peers.some((p) => p.id === clientId), 10_000);
    expect((await formPost(main.node, "/machines/permission", { machine: clientId, level: "3" })).status).toBe(200);
    await waitFor("the backup's copy", () => backup.node.levels()[clientId] === 3, 10_000);
    expect(JSON.parse(readFileSync(join(backup.dataDir, "permissions.json"), "utf8"))).toEqual({ [clientId]: 3 });
    // Levels are set on the main only.
    expect((await formPost(backup.node, "/machines/permission", { machine: clientId, level: "1" })).status).toBe(409);

    // The main goes down; the client restarts meanwhile (a fresh process knows only the default) and learns level 3 from the backup.
    await client.node.stop();
    running.splice(running.indexOf(client.node), 1);
    await main.node.stop();
    running.splice(running.indexOf(main.node), 1);
    client = await startNode({ dataDir: clientDir, flags: clientFlags });
    running.push(client.node);
    await waitFor("the backup serves", () => backup.node.status().chip === "Backup is active", 10_000);
    await waitFor("the client learns level 3 from the backup", () => client.node.permission() === 3, 15_000);
    expect(await (await get(client.node, "/machines")).text()).toContain("permission level 3");
  }, 60_000);

  test("only the main's paired backup may copy every level", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const stranger = { networkKey: key, machine: nacl.sign.keyPair() };
    const refused = await askAllLevels(oneShotCaller(secureDialer(stranger)), parseHostPort(main.node.status().peerListen!)!).then(
      () => null,
      (error: { code?: string }) => error.code,
    );
    expect(refused).toBe("NOT_THE_BACKUP");
  });

  test("a key holder the main has never listed gets level 1 and no roster; a client it hears gets the default", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const at = main.node.status().peerListen!;
    const client = await node({ role: "client", main: at, name: "render-7" }, key);
    const clientId = client.node.status().id;
    await waitFor("the main hears the client", () => main.node.status().failover!.peers.some((p) => p.id === clientId), 10_000);
    await waitFor("the client has the default level", () => client.node.permission() === 2, 10_000);
    const stranger = { networkKey: key, machine: nacl.sign.keyPair() };
    // Twice on one kept connection, as a client's console asks every 2 s (net/kept-calls.ts).
    const calls = new KeptCalls(secureDialer(stranger));
    for (let i = 0; i < 2; i++) expect(await askLevel(calls, parseHostPort(at)!)).toEqual({ level: 1, machines: [], backup: null });
    calls.stop();
  }, 30_000);

  const refusals: { name: string; setup: () => ReturnType<typeof node>; fields: Record<string, string>; status: number; message: string }[] = [
    { name: "unknown machine", setup: () => node({ role: "main" }), fields: { machine: "0123456789abcdef", level: "3" }, status: 404, message: "No client with that id is known" },
    { name: "not a machine id", setup: () => node({ role: "main" }), fields: { machine: "../etc", level: "3" }, status: 400, message: "That is not a machine id." },
    { name: "no such level", setup: () => node({ role: "main" }), fields: { machine: "0123456789abcdef", level: "7" }, status: 400, message: "Choose permission level 1, 2 or 3." },
    { name: "level missing", setup: () => node({ role: "main" }), fields: { machine: "0123456789abcdef" }, status: 400, message: "Choose permission level 1, 2 or 3." },
    { name: "on a client", setup: () => node({ role: "client", main: "127.0.0.1:9" }), fields: { machine: "0123456789abcdef", level: "3" }, status: 409, message: "set on the main server" },
    { name: "on a stand-alone machine", setup: () => node(), fields: { machine: "0123456789abcdef", level: "3" }, status: 409, message: "set on the main server" },
  ];
  for (const r of refusals) {
    test(`POST /machines/permission refused: ${r.name}`, async () => {
      const { node: n } = await r.setup();
      const response = await formPost(n, "/machines/permission", r.fields);
      expect(response.status).toBe(r.status);
      expect(await response.text()).toContain(r.message);
    });
  }

  test("a permission form posted from another site is refused (CSRF)", async () => {
    const { node: n } = await node({ role: "main" });
    expect((await formPost(n, "/machines/permission", { machine: "0123456789abcdef", level: "3" }, { origin: "http://evil.example" })).status).toBe(403);
  });
});

describe("Synced storage", () => {
  test("a client lists the show file's history from the main, with what a push said", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const client = await node({ role: "client", main: main.node.status().peerListen! }, key);
    await waitFor("the client follows the main", () => client.node.status().failover?.activeServer === "main", 10_000);
    const folder = tempDir();
    writeFileSync(join(folder, "rundown.txt"), "news at ten");
    const out: string[] = [];
    const code = await fileCommand("push", [folder, "-m", "new lower third", "--node", client.node.status().peerListen!, "--key", join(client.dataDir, "network.key")], (line) => out.push(line));
    expect(code).toBe(0);
    const html = await (await get(client.node, "/storage")).text();
    expect(html).toContain('data-testid="storage-history"');
    expect(html).toContain("new lower third");
    expect(html).toContain('data-testid="storage-open"');
    const onMain = await (await get(main.node, "/storage")).text();
    expect(onMain).toContain('data-testid="show-file-head">1<');
  }, 30_000);

  test("a stand-alone machine and a client that reaches no server say so in words", async () => {
    const standalone = await node();
    expect(await (await get(standalone.node, "/storage")).text()).toContain("A stand-alone machine has no synced storage.");
    const lonely = await node({ role: "client", main: "127.0.0.1:9" });
    const html = await (await get(lonely.node, "/storage")).text();
    expect(html).toMatch(/nothing answers there|No server answers yet/);
  });
});
