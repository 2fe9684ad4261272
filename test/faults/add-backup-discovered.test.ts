/**
 * "Add Backup server" from the machines found on the network (issue 12): a
 * main and a backup, each the compiled executable in its own network
 * namespace on one bridge, DNS-SD on. The main's Machines panel offers the
 * discovered backup, once, at the one address its peer port listens on (its
 * interface holds a second one); posting that choice, as a browser posts the form, pairs
 * them and both read "Backup is idle". The setup pages listen on each
 * namespace's own loopback, so the test reads them from inside (lab.http).
 *
 * Needs root and iproute2; skips (saying why) otherwise.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MachineStatus } from "../../src/core/status.ts";
import { executable } from "../support/executable.ts";
import { devLicenseText } from "../support/licenses.ts";
import { must, NetnsLab, netnsUnavailable, sweepStaleLabs, type LabProcess } from "../support/netns.ts";
import { waitFor } from "../support/wait-for.ts";

const ROOT = "us-addb";
const UI = "http://127.0.0.1:7400";
const PEER_PORT = 7401;

const skipReason = netnsUnavailable();
if (skipReason) console.warn(`[add backup from discovery] skipped: ${skipReason}`);

/** The Add Backup card's choices: `<option value="ADDRESS">NAME</option>` inside its datalist. */
function discoveredChoices(page: string): { address: string; name: string }[] {
  const list = /<datalist id="backup-candidates">([\s\S]*?)<\/datalist>/.exec(page)?.[1] ?? "";
  return [...list.matchAll(/<option value="([^"]+)">([^<]+)<\/option>/g)].map((m) => ({ address: m[1]!, name: m[2]! }));
}

describe.skipIf(skipReason !== null)("Add Backup server from the discovered list (namespace lab, real executable)", () => {
  let lab: NetnsLab | undefined;
  let dir: string | undefined;
  const running = new Map<string, LabProcess>();

  /** A second address on the backup's subnet. */
  const extraAddress = () => labOf().node("b").address.replace(/\.\d+$/, ".102");
  const labOf = () => {
    if (!lab) throw new Error("lab not created");
    return lab;
  };
  async function status(node: string): Promise<MachineStatus> {
    const response = await labOf().http(`${UI}/api/status`, { from: node, timeoutMs: 1_500 });
    if (response.status !== 200) throw new Error(`${node}: /api/status → ${response.status}`);
    return JSON.parse(response.body) as MachineStatus;
  }
  /** On failure, show what the machines logged: the test output is all CI keeps. */
  async function explained<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      for (const [name, p] of running) console.error(`--- machine ${name} (exit ${p.proc.exitCode}) ---\n${p.output()}`);
      throw error;
    }
  }

  beforeAll(async () => {
    const exe = await executable();
    sweepStaleLabs(ROOT);
    lab = NetnsLab.create({ prefix: `${ROOT}-${process.pid}`, nodes: ["m", "b"] });
    dir = mkdtempSync(join(tmpdir(), `${ROOT}-${process.pid}-`));
    const key = join(dir, "network.key");
    must([exe, "keys", "generate", "--out", key]);
    writeFileSync(join(dir, "license.json"), devLicenseText({ type: "server-with-failover", holder: "*" }));
    // The backup's interface has a second address its peer port does not listen on: dnssd announces both.
    must(["ip", "-n", lab.node("b").ns, "addr", "add", `${extraAddress()}/24`, "dev", lab.node("b").iface]);
    // As an operator sets them up: the backup names its main on its setup page; the main names no backup yet.
    const settings = { m: { role: "main" }, b: { role: "backup", main: `${lab.node("m").address}:${PEER_PORT}` } };
    for (const node of ["m", "b"] as const) {
      const data = join(dir, `data-${node}`);
      mkdirSync(data, { recursive: true });
      writeFileSync(join(data, "config.json"), `${JSON.stringify(settings[node])}\n`);
      const argv = [exe, "run", "--name", `node-${node}`, "--data", data, "--key", key, "--license", join(dir, "license.json")];
      // The backup's peer port listens on one address only (--peer-listen names it); the main's on every interface.
      const listen = node === "b" ? lab.node("b").address : "0.0.0.0";
      argv.push("--ui-listen", "127.0.0.1:7400", "--peer-listen", `${listen}:${PEER_PORT}`, "--discovery", "on", "--discovery-interface", lab.node(node).iface, "--log", "json");
      running.set(node, lab.spawn(node, argv, { env: { HOME: data } }));
    }
    await explained(() =>
      waitFor("both machines' setup pages", async () => {
        for (const [node, p] of running) if (p.proc.exitCode !== null) throw new Error(`machine ${node} exited with ${p.proc.exitCode}`);
        await Promise.all([status("m"), status("b")]);
        return true;
      }, 15_000, 50),
    );
  }, 120_000);

  afterAll(async () => {
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 20_000);

  test("the main's Machines panel offers the discovered backup; adding it pairs them and the backup reaches idle", async () => {
    const l = labOf();
    const backupAt = `${l.node("b").address}:${PEER_PORT}`;
    let page = "";
    await explained(() =>
      waitFor("the backup among the main's discovered machines", async () => {
        page = (await l.http(`${UI}/machines`, { from: "m" })).body;
        return discoveredChoices(page).some((c) => c.name === "node-b");
      }, 10_000, 100),
    );
    const choice = discoveredChoices(page).find((c) => c.name === "node-b")!;
    // Offered once, at the address its peer port listens on, never at the other address dnssd announced.
    expect(discoveredChoices(page).filter((c) => c.name === "node-b")).toHaveLength(1);
    expect(choice.address).toBe(backupAt);
    expect(page).not.toContain(extraAddress());
    expect((await status("m")).chip).toBe("No backup");

    const added = await l.http(`${UI}/machines/backup`, { from: "m", form: { address: choice.address }, headers: { origin: UI } });
    expect(added.status).toBe(200);
    expect(added.body).toContain("node-b is now the backup server");

    await explained(() =>
      waitFor("Backup is idle on both servers", async () => {
        const [m, b] = await Promise.all([status("m"), status("b")]);
        return m.chip === "Backup is idle" && b.chip === "Backup is idle";
      }, 15_000, 100),
    );
    const [m, b] = await Promise.all([status("m"), status("b")]);
    expect(m.failover?.pairing).toMatchObject({ peerId: b.id, peerName: "node-b", address: backupAt, confirmed: true });
    expect(b.failover?.pairing).toMatchObject({ peerId: m.id, peerName: "node-m", confirmed: true });
    expect(m.backup).toBe(backupAt);

    // The card no longer offers a choice, and the Machines panel lists the backup server as paired and heard.
    const after = (await l.http(`${UI}/machines`, { from: "m" })).body;
    expect(discoveredChoices(after)).toEqual([]);
    expect(after).toContain("node-b");
  }, 45_000);
});
