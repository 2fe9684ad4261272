import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatNetworkKey } from "../../../src/core/keys.ts";
import { devLicenseText } from "../../support/licenses.ts";
import { formPost, nodesPerTest, startNode } from "../../support/machine-node.ts";
import { tempDir } from "../../support/machine-process.ts";

const fresh = nodesPerTest();
const failoverLicense = () => devLicenseText({ type: "server-with-failover", holder: "*", days: 30 });

describe("pages and API of a fresh machine", () => {
  const cases: { name: string; path: string; status: number; contains: string[]; lacks?: string[] }[] = [
    { name: "setup page", path: "/setup", status: 200, lacks: ["hx-confirm=\"Replace the network key"], contains: ["<!DOCTYPE html>", "Set up this machine", 'src="/static/htmx.min.js"', "Stand-alone", 'data-testid="status-chip"'] },
    { name: "roles without a license are disabled with a reason", path: "/setup", status: 200, contains: ['id="role-client" name="role" value="client" disabled=""', "Client needs a"] },
    { name: "status bar partial", path: "/partials/status-bar", status: 200, contains: ['id="status-bar"', 'data-testid="status-chip"'], lacks: ["<html"] },
    { name: "htmx from /static", path: "/static/htmx.min.js", status: 200, contains: ["htmx"] },
    { name: "css", path: "/static/style.css", status: 200, contains: [".status-bar"] },
    { name: "unknown static file", path: "/static/../../etc/passwd", status: 404, contains: [] },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const { node } = await fresh();
      const response = await node.app.request(`http://localhost${c.path}`);
      expect(response.status).toBe(c.status);
      const text = await response.text();
      for (const s of c.contains) expect(text).toContain(s);
      for (const s of c.lacks ?? []) expect(text).not.toContain(s);
    });
  }

  test("GET /api/status says who and what the machine is", async () => {
    const { node } = await fresh();
    const status = await (await node.app.request("http://localhost/api/status")).json();
    expect(status).toMatchObject({ role: "standalone", chip: "Stand-alone", license: null, networkKeyFingerprint: null, peerListen: null });
    expect(status.id).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe("setup forms: bad input is shown next to its field and changes nothing", () => {
  const cases: { name: string; path: string; fields: Record<string, string>; field: string; message: string }[] = [
    { name: "garbage license", path: "/setup/license", fields: { license: "not a license" }, field: "license", message: "not a license document" },
    { name: "empty license", path: "/setup/license", fields: { license: "  " }, field: "license", message: "Paste the license or choose its file." },
    { name: "bad pasted key", path: "/setup/key", fields: { action: "paste", key: "abc" }, field: "key", message: "is not a network key" },
    { name: "unknown key action", path: "/setup/key", fields: { action: "steal" }, field: "action", message: "" },
    { name: "unknown role", path: "/setup/role", fields: { role: "primary" }, field: "role", message: "Choose one of the roles above." },
    { name: "bad main address", path: "/setup/role", fields: { role: "client", main: "10.0.0.1:99999" }, field: "main", message: "Type an IP address such as 10.0.0.1" },
    { name: "client without a main", path: "/setup/role", fields: { role: "client", main: " " }, field: "main", message: "Type the main server&#39;s IP address." },
    { name: "role the license does not allow", path: "/setup/role", fields: { role: "client", main: "10.0.0.1:7401" }, field: "role", message: "Client needs a" },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const { node, dataDir } = await fresh();
      const response = await formPost(node, c.path, c.fields);
      expect(response.status).toBe(400);
      const html = await response.text();
      expect(html).toContain(`data-testid="${c.field}-error"`);
      expect(html).toContain(c.message);
      expect(existsSync(join(dataDir, "config.json"))).toBe(false);
      expect(existsSync(join(dataDir, "license.json"))).toBe(false);
      expect(existsSync(join(dataDir, "network.key"))).toBe(false);
      expect(node.status().role).toBe("standalone");
    });
  }

  test("a form posted from another site is refused (CSRF)", async () => {
    const { node } = await fresh();
    const response = await formPost(node, "/setup/key", { action: "generate" }, { origin: "http://evil.example" });
    expect(response.status).toBe(403);
    expect(node.status().networkKeyFingerprint).toBeNull();
  });
});

describe("setting a machine up", () => {
  test("license, key, then Client: saved, applied without restart, peer port opened", async () => {
    const { node, dataDir } = await fresh();
    let response = await formPost(node, "/setup/license", { license: failoverLicense() });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Server with failover");

    // Any order works: the role is saved without the key, and the chip says what is missing.
    response = await formPost(node, "/setup/role", { role: "main" });
    expect(response.status).toBe(200);
    expect(node.status()).toMatchObject({ role: "main", networkKeyFingerprint: null, peerListen: null });
    expect(await (await node.app.request("http://localhost/partials/status-bar")).text()).toContain("Waiting for the network key");

    response = await formPost(node, "/setup/key", { action: "generate" });
    expect(response.status).toBe(200);
    const fp = node.status().networkKeyFingerprint!;
    expect(await response.text()).toContain(fp);
    expect(statSync(join(dataDir, "network.key")).mode & 0o777).toBe(0o600);
    // The key applies at once: the main that waited for it opens its peer port.
    expect(node.status().peerListen).not.toBeNull();
    // A machine that has a key asks before generating another (a fresh one did not).
    const keyCard = await (await node.app.request("http://localhost/setup")).text();
    expect(keyCard).toContain(`hx-confirm="Replace the network key ${fp}?`);
    // And the server asks too: a post that does not name the key it replaces (no JavaScript, or a page drawn before) changes nothing.
    for (const replaces of [undefined, "", "0000000000000000"]) {
      response = await formPost(node, "/setup/key", replaces === undefined ? { action: "generate" } : { action: "generate", replaces });
      expect(response.status).toBe(400);
      expect(await response.text()).toContain(`holds the network key ${fp}, which this page did not show`);
      expect(node.status().networkKeyFingerprint).toBe(fp);
    }
    expect(keyCard).toContain(`name="replaces" value="${fp}"`);
    response = await formPost(node, "/setup/key", { action: "generate", replaces: fp });
    expect(response.status).toBe(200);
    const replaced = node.status().networkKeyFingerprint!;
    expect(replaced).not.toBe(fp);
    // The same confirmed post twice: the second names a key no longer held, and is refused.
    expect((await formPost(node, "/setup/key", { action: "generate", replaces: fp })).status).toBe(400);
    expect(node.status().networkKeyFingerprint).toBe(replaced);

    response = await formPost(node, "/setup/role", { role: "client", main: "127.0.0.1:9", backup: "" });
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Saved and applied.");
    const status = node.status();
    expect(status).toMatchObject({ role: "client", main: "127.0.0.1:9", backup: null });
    expect(status.peerListen).not.toBeNull();
    expect(JSON.parse(readFileSync(join(dataDir, "config.json"), "utf8"))).toEqual({ role: "client", main: "127.0.0.1:9" });

    const bar = await (await node.app.request("http://localhost/partials/status-bar")).text();
    expect(bar).toContain("Client");

    response = await formPost(node, "/setup/role", { role: "standalone" });
    expect(response.status).toBe(200);
    expect(node.status().peerListen).toBeNull();
  });

  test("a license uploaded as a file works like a pasted one", async () => {
    const { node } = await fresh();
    const file = new File([failoverLicense()], "studio.lic", { type: "application/json" });
    const response = await formPost(node, "/setup/license", { licenseFile: file });
    expect(response.status).toBe(200);
    expect(node.status().license?.type).toBe("server-with-failover");
  });

  test("what was saved is there after a restart", async () => {
    const first = await fresh();
    await formPost(first.node, "/setup/license", { license: failoverLicense() });
    await formPost(first.node, "/setup/key", { action: "generate" });
    await formPost(first.node, "/setup/role", { role: "backup", main: "127.0.0.1:9" });
    const before = first.node.status();
    await first.node.stop();
    const second = await fresh({ dataDir: first.dataDir });
    expect(second.node.status()).toMatchObject({ id: before.id, role: "backup", networkKeyFingerprint: before.networkKeyFingerprint });
  });

  test("settings fixed by a flag are read-only on the page and refused if posted", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "license.json"), failoverLicense());
    writeFileSync(join(dir, "network.key"), formatNetworkKey(new Uint8Array(32).fill(7)));
    const { node } = await fresh({ dataDir: dir, flags: { role: "server" } });
    const page = await (await node.app.request("http://localhost/setup")).text();
    expect(page).toContain('<input type="hidden" name="role" value="server"/>');
    expect(page).not.toContain('type="radio" id="role-');
    expect(page).toContain("Set by --role on the command line.");
    const response = await formPost(node, "/setup/role", { role: "standalone" });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain("fixed by the command line");
    expect(node.status().role).toBe("server");
    expect(existsSync(join(dir, "config.json"))).toBe(false);
  });
});

describe("failback on the main's setup page", () => {
  test("saved and applied at once, twice is fine; a client has no such card; bad input changes nothing", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "license.json"), failoverLicense());
    writeFileSync(join(dir, "network.key"), formatNetworkKey(new Uint8Array(32).fill(7)));
    writeFileSync(join(dir, "config.json"), '{"role": "main"}');
    const { node } = await fresh({ dataDir: dir });
    expect(await (await node.app.request("http://localhost/setup")).text()).toContain('id="failback-auto" name="failback" value="auto" checked=""');
    for (let i = 0; i < 2; i++) {
      const response = await formPost(node, "/setup/failback", { failback: "manual" });
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('id="failback-manual" name="failback" value="manual" checked=""');
    }
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).failback).toBe("manual");
    const bad = await formPost(node, "/setup/failback", { failback: "sometimes" });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("Choose Automatic or Manual.");
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).failback).toBe("manual");
    const role = await formPost(node, "/setup/role", { role: "client", main: "127.0.0.1:9" });
    expect(await role.text()).toContain('<div id="failback-section" hx-swap-oob="true"></div>');
  });

  test("fixed by --failback: shown read-only and refused if posted", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "license.json"), failoverLicense());
    writeFileSync(join(dir, "network.key"), formatNetworkKey(new Uint8Array(32).fill(7)));
    const { node } = await fresh({ dataDir: dir, flags: { role: "main", failback: "manual" } });
    expect(await (await node.app.request("http://localhost/setup")).text()).toContain("Set by --failback on the command line.");
    const response = await formPost(node, "/setup/failback", { failback: "auto" });
    expect(response.status).toBe(400);
    expect(existsSync(join(dir, "config.json"))).toBe(false);
  });
});

describe("start-up refusals name what to fix", () => {
  test("a broken config.json stops the start and is left as it was", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "config.json"), '{"heartbeatMs": "often"}');
    await expect(startNode({ dataDir: dir })).rejects.toThrow(`${join(dir, "config.json")}, field "heartbeatMs"`);
    expect(readFileSync(join(dir, "config.json"), "utf8")).toBe('{"heartbeatMs": "often"}');
  });

  test("a role the license does not allow", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "license.json"), devLicenseText({ type: "client", holder: "*" }));
    await expect(startNode({ dataDir: dir, flags: { role: "backup" } })).rejects.toThrow("must both run server-with-failover");
  });

  test("the UI password is asked for when set", async () => {
    const { node } = await fresh({ env: { UNDERSTUDY_UI_PASSWORD: "studio-secret" } });
    expect((await node.app.request("http://localhost/api/status")).status).toBe(401);
    const auth = `Basic ${Buffer.from("understudy:studio-secret").toString("base64")}`;
    expect((await node.app.request("http://localhost/api/status", { headers: { authorization: auth } })).status).toBe(200);
  });
});

describe("server addresses", () => {
  test("a host name for --main is resolved at start (heartbeats need an IP address)", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "license.json"), failoverLicense());
    writeFileSync(join(dir, "network.key"), formatNetworkKey(new Uint8Array(32).fill(3)));
    const { node } = await fresh({ dataDir: dir, flags: { role: "client", main: "localhost:9", heartbeatMs: "50", failoverTimeoutMs: "250" } });
    expect(node.status().failover?.state).toBeDefined();
    expect(node.status().main).toBe("localhost:9");
  });
});

describe("setup forms per role", () => {
  async function licensed(flags: Record<string, string> = {}) {
    const dir = tempDir();
    writeFileSync(join(dir, "license.json"), failoverLicense());
    writeFileSync(join(dir, "network.key"), formatNetworkKey(new Uint8Array(32).fill(9)));
    return fresh({ dataDir: dir, flags });
  }

  test("a client keeps the backup's IP only with Connect to a Backup; a bare IP gets the default peer port", async () => {
    const { node } = await licensed();
    let response = await formPost(node, "/setup/role", { role: "client", main: "127.0.0.1", backup: "127.0.0.2" });
    expect(response.status).toBe(200);
    expect(node.status()).toMatchObject({ role: "client", main: "127.0.0.1:7401", backup: null });
    response = await formPost(node, "/setup/role", { role: "client", main: "127.0.0.1", connectBackup: "on", backup: "127.0.0.2" });
    expect(response.status).toBe(200);
    expect(node.status()).toMatchObject({ role: "client", main: "127.0.0.1:7401", backup: "127.0.0.2:7401" });
  });

  test("a server that becomes a main (or back) keeps serving: same epoch, same peer port, no rebuild", async () => {
    const { node } = await licensed();
    expect((await formPost(node, "/setup/role", { role: "server" })).status).toBe(200);
    const before = node.status();
    expect(before.failover?.state).toBe("active");
    expect((await formPost(node, "/setup/role", { role: "main" })).status).toBe(200);
    const after = node.status();
    expect(after.role).toBe("main");
    expect(after.failover?.epoch).toBe(before.failover?.epoch);
    expect(after.failover?.state).toBe("active");
    expect(after.peerListen).toBe(before.peerListen);
  });

  test("fields a role does not use are not saved", async () => {
    const { node } = await licensed();
    expect((await formPost(node, "/setup/role", { role: "server", main: "127.0.0.1:9", backup: "127.0.0.1:8" })).status).toBe(200);
    expect(node.status()).toMatchObject({ role: "server", main: null, backup: null });
  });

  test("the main shows its network key masked, with a copy button; a client does not", async () => {
    const { node } = await licensed({ role: "main" });
    const html = await (await node.app.request("http://localhost/setup")).text();
    expect(html).toContain('id="network-key" type="password" readonly=""');
    expect(html).toContain('data-copy="network-key"');
    const client = await licensed({ role: "client", main: "127.0.0.1:9" });
    expect(await (await client.node.app.request("http://localhost/setup")).text()).not.toContain('id="network-key"');
  });

  test("with role and addresses fixed by flags there is no button that could fail", async () => {
    const { node } = await licensed({ role: "client", main: "127.0.0.1:9", backup: "127.0.0.1:8" });
    const html = await (await node.app.request("http://localhost/setup")).text();
    for (const s of ["Set by --role on the command line.", "Set by --main on the command line.", "Set by --backup on the command line."]) expect(html).toContain(s);
    expect(html).not.toContain('type="submit" class="primary for-client"');
    // What the page would post, were it posted, is accepted unchanged.
    const response = await formPost(node, "/setup/role", { role: "client", main: "127.0.0.1:9", connectBackup: "on", backup: "127.0.0.1:8" });
    expect(response.status).toBe(200);
  });

  test("a refused license stays in the box", async () => {
    const { node } = await fresh();
    const response = await formPost(node, "/setup/license", { license: "{ almost a license" });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain("{ almost a license</textarea>");
  });

  test("errors speak of the page, not of flags", async () => {
    const { node } = await fresh();
    const roles = await (await node.app.request("http://localhost/setup")).text();
    expect(roles).toContain("Add a license above.");
    expect(roles).not.toContain("--license");
    await formPost(node, "/setup/license", { license: failoverLicense() });
    const response = await formPost(node, "/setup/role", { role: "client", main: "127.0.0.1:9" });
    expect(response.status).toBe(200);
    const html = await (await node.app.request("http://localhost/setup")).text();
    expect(html).toContain("Waiting for the network key");
    expect(html).not.toContain("understudy keys generate");
    expect(html).not.toContain("--key");
  });
});
