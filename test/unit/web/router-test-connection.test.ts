/**
 * "Test connection" beside the router's address on the Backup groups panel:
 * it connects, reads the dump and says what it found (model, port counts,
 * locks) or why not, beside the field, and saves nothing; a page that may not
 * change the groups may not test either, and a foreign page posts nothing.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Hono } from "hono";
import nacl from "tweetnacl";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { probeVideohub } from "../../../src/services/router/videohub-probe.ts";
import { parseHostPort } from "../../../src/core/config.ts";
import { registerBackupGroups, type BackupGroupsControl } from "../../../src/web/backup-group-routes.tsx";
import { NO_ENGINE_BACKUPS } from "../../../src/store/backup-groups-file.ts";
import { ManualTimers } from "../../support/clock.ts";
import { formPost, setUpDataDir, startNode } from "../../support/machine-node.ts";
import { VideohubSim } from "../../support/videohub-sim.ts";
import { waitFor } from "../../support/wait-for.ts";

const running: MachineNode[] = [];
const sims: VideohubSim[] = [];
afterEach(async () => {
  for (const node of running.splice(0)) await node.stop();
  for (const sim of sims.splice(0)) sim.stop();
});

async function node(flags: Record<string, string>, key: Uint8Array) {
  const started = await startNode({ dataDir: setUpDataDir(key), flags: { heartbeatMs: "50", failoverTimeoutMs: "250", ...flags } });
  running.push(started.node);
  return started;
}

function sim(options: ConstructorParameters<typeof VideohubSim>[0] = {}): VideohubSim {
  const s = new VideohubSim(options).start();
  sims.push(s);
  return s;
}

/** The Test connection outcome on the page, and the refusal beside the address. */
async function answer(response: Response) {
  const html = await response.text();
  const part = (id: string) => (html.includes(`data-testid="${id}"`) ? html.slice(html.indexOf(`data-testid="${id}"`)).split("</p>")[0]!.replace(/^[^>]*>/, "").replaceAll("&quot;", '"').replaceAll("&#39;", "'") : null);
  return { status: response.status, html, tested: part("router-test"), error: part("group-error-router") };
}

const groupsFile = (dataDir: string) => join(dataDir, "backup-groups.json");

describe("Test connection on the Backup groups panel", () => {
  test("says what the router is, twice alike, on IPv6 too, and saves nothing", async () => {
    const main = await node({ role: "main" }, nacl.randomBytes(32));
    const page = await (await main.node.app.request("http://localhost/backup-groups")).text();
    expect(page).toContain('formaction="/backup-groups/router/test"');
    expect(page).toContain("Test connection");
    const router = sim({ inputs: 40, outputs: 20 });
    for (let i = 0; i < 2; i++) {
      const r = await answer(await formPost(main.node, "/backup-groups/router/test", { router: `127.0.0.1:${router.port}`, routerEnabled: "on" }));
      expect(r.status).toBe(200);
      expect(r.tested).toContain(`Connected to 127.0.0.1:${router.port}: Understudy Sim Videohub, 40 inputs, 20 outputs; no destination is locked`);
      expect(r.html).toContain(`value="127.0.0.1:${router.port}"`);
    }
    const v6 = sim({ hostname: "::1" });
    const r = await answer(await formPost(main.node, "/backup-groups/router/test", { router: `[::1]:${v6.port}` }));
    expect(r.tested).toContain("12 inputs, 12 outputs");
    expect(existsSync(groupsFile(main.dataDir))).toBe(false);
    expect(router.requests).toEqual([]);
  }, 30_000);

  test("a destination another client locked is named before any failure", async () => {
    const main = await node({ role: "main" }, nacl.randomBytes(32));
    const router = sim();
    router.lockByOther(4);
    router.lockByOther(5);
    const r = await answer(await formPost(main.node, "/backup-groups/router/test", { router: `127.0.0.1:${router.port}` }));
    expect(r.tested).toContain("destinations 5, 6 are LOCKED by another client: a failover onto them would not happen");
  }, 30_000);

  test("why not, in words, beside the address; nothing saved, the saved router untouched", async () => {
    const main = await node({ role: "main" }, nacl.randomBytes(32));
    expect((await formPost(main.node, "/backup-groups/router", { router: "127.0.0.1:9990" })).status).toBe(200);
    const before = readFileSync(groupsFile(main.dataDir), "utf8");
    const closed = sim();
    const port = closed.port;
    closed.stop();
    const garbage = sim();
    garbage.greeting = "SSH-2.0-OpenSSH_9.2\r\n";
    const half = sim();
    half.greeting = "PROTOCOL PREAMBLE:\nVersion: 2.8\n\nVIDEOHUB DEVICE:\nVideo in";
    half.closeAfterGreeting = true;
    const huge = sim();
    huge.greeting = `PROTOCOL PREAMBLE:\nVersion: 2.8\n\nINPUT LABELS:\n${"0 x\n".repeat(3_000)}\n`;
    const cases: [string, number, string][] = [
      [`127.0.0.1:${port}`, 502, "refused the connection"],
      [`127.0.0.1:${garbage.port}`, 502, 'not as a Videohub does (it began with "SSH-2.0-OpenSSH_9.2")'],
      [`127.0.0.1:${half.port}`, 502, "closed the connection in the middle of its state dump"],
      [`127.0.0.1:${huge.port}`, 502, "more than a Videohub's state dump can hold"],
    ];
    for (const [address, status, words] of cases) {
      const r = await answer(await formPost(main.node, "/backup-groups/router/test", { router: address, routerEnabled: "on" }));
      expect([address, r.status]).toEqual([address, status]);
      expect(r.tested).toContain(words);
      expect(r.tested).toContain("Nothing was saved.");
      expect(readFileSync(groupsFile(main.dataDir), "utf8")).toBe(before);
    }
    const inputs: [Record<string, string>, string][] = [
      [{ router: "" }, "Type the router's IP address"],
      [{ router: "not an address!" }, "Type the router's IP address"],
      [{ router: "x".repeat(5_000) }, "far too long"],
      [{}, "Type the router's IP address"],
      [{ router: "127.0.0.1:99999" }, "Type the router's IP address"],
    ];
    for (const [fields, words] of inputs) {
      const r = await answer(await formPost(main.node, "/backup-groups/router/test", fields));
      expect(r.status).toBe(400);
      expect(r.error).toContain(words);
      expect(r.tested).toBeNull();
    }
    const forged = await formPost(main.node, "/backup-groups/router/test", { router: `127.0.0.1:${garbage.port}` }, { origin: "http://evil.example" });
    expect(forged.status).toBe(403);
    expect(garbage.connections).toBe(1);
    expect(readFileSync(groupsFile(main.dataDir), "utf8")).toBe(before);
  }, 30_000);

  test("a client below level 3 may not test from its page", async () => {
    const key = nacl.randomBytes(32);
    const main = await node({ role: "main" }, key);
    const client = await node({ role: "client", main: main.node.status().peerListen! }, key);
    const router = sim();
    await waitFor("the client is linked", () => client.node.status().failover !== null, 10_000);
    const r = await answer(await formPost(client.node, "/backup-groups/router/test", { router: `127.0.0.1:${router.port}` }));
    expect(r.status).toBe(403);
    expect(r.error).toContain("permission level");
    expect(router.connections).toBe(0);
  }, 30_000);

  test("a router that never answers: the page says so after the test's deadline, and nothing is left open", async () => {
    const router = sim();
    router.silent = true;
    const timers = new ManualTimers();
    const control: BackupGroupsControl = {
      status: () => ({ failover: { peers: [] }, role: "main" }) as unknown as ReturnType<BackupGroupsControl["status"]>,
      permission: () => null,
      backupGroups: async () => NO_ENGINE_BACKUPS,
      saveBackupGroups: async () => {
        throw new Error("Test connection must not save");
      },
      testRouter: (address) => {
        const at = parseHostPort(address)!;
        return probeVideohub({ host: at.host, port: at.port, clock: timers.clock, timers, timeoutMs: 3_000 });
      },
    };
    const app = new Hono();
    registerBackupGroups(app, control);
    const pending = app.request("http://localhost/backup-groups/router/test", { method: "POST", body: new URLSearchParams({ router: `127.0.0.1:${router.port}` }) });
    await waitFor("the test connected", () => router.clientCount === 1);
    await Bun.sleep(0);
    timers.advance(3_000);
    const r = await answer(await pending);
    expect(r.status).toBe(502);
    expect(r.tested).toContain("sent nothing within 3 s");
    await waitFor("the test's connection closed", () => router.clientCount === 0);
    expect(timers.count).toBe(0);
  });
});
