/**
 * Network faults against the real executable, one network namespace per
 * machine (main, backup, one client), nftables for loss (root; skipped with a
 * reason elsewhere). Each case checks that nothing below the documented
 * failover bound causes a failover: 5 % random loss on every link (defaults and
 * the fast preset) and the main paused (SIGSTOP) below the failover timeout ten
 * times; and that restarts of the main only ever raise epochs. FAULT_SECONDS
 * stretches the loss cases (default 20 s each; the full run is 120).
 *
 * Not here yet: an isolated main and one-way cuts (they wait for the isolation
 * work of issue 8), a main cable flapping every 300 ms (today it fails over
 * within about a second although every up-window carries heartbeats), and
 * acknowledged-message accounting under these faults.
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

const ROOT = "us-nf";
const UI = "http://127.0.0.1:7400";
const PEER_PORT = 7401;
const FAULT_SECONDS = Number(process.env.FAULT_SECONDS ?? 20);
const NODES = ["main", "backup", "c1"] as const;
type Node = (typeof NODES)[number];
type Preset = { name: string; heartbeatMs: number; failoverTimeoutMs: number };
const DEFAULTS: Preset = { name: "defaults", heartbeatMs: 100, failoverTimeoutMs: 1000 };
const FAST: Preset = { name: "fast", heartbeatMs: 50, failoverTimeoutMs: 250 };

const skipReason = netnsUnavailable() ?? (Bun.which("nft") ? null : "nftables is missing (apt-get install -y nftables)");
if (skipReason) console.warn(`[network faults] skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)("network faults (the real executable in namespaces)", () => {
  let lab: NetnsLab | undefined;
  let dir = "";
  let exe = "";
  const running = new Map<Node, LabProcess>();
  const labOf = () => lab ?? (() => { throw new Error("lab not created"); })();

  async function status(node: Node): Promise<MachineStatus> {
    const response = await labOf().http(`${UI}/api/status`, { from: node, timeoutMs: 1_500 });
    if (response.status !== 200) throw new Error(`${node}: status ${response.status}`);
    return JSON.parse(response.body) as MachineStatus;
  }

  function start(node: Node, preset: Preset): LabProcess {
    const l = labOf();
    const data = join(dir, `data-${node}`);
    mkdirSync(data, { recursive: true });
    const at = (n: Node) => `${l.node(n).address}:${PEER_PORT}`;
    const role = node === "c1" ? "client" : node;
    const servers = node === "main" ? ["--backup", at("backup")] : node === "backup" ? ["--main", at("main")] : ["--main", at("main"), "--backup", at("backup")];
    const argv = [exe, "run", "--role", role, "--name", node, "--data", data, "--key", join(dir, "net.key"), "--license", join(dir, "license.json")];
    argv.push("--ui-listen", "127.0.0.1:7400", "--peer-listen", `${l.node(node).address}:${PEER_PORT}`, "--discovery", "off", "--log", "json");
    argv.push("--heartbeat-ms", String(preset.heartbeatMs), "--failover-timeout-ms", String(preset.failoverTimeoutMs), ...servers);
    const p = l.spawn(node, argv, { env: { HOME: data } });
    running.set(node, p);
    return p;
  }

  async function stopAll(): Promise<void> {
    await Promise.all([...running.values()].map((p) => p.stop("SIGKILL", 2_000)));
    running.clear();
    rmSync(join(dir, "data-main"), { recursive: true, force: true });
    rmSync(join(dir, "data-backup"), { recursive: true, force: true });
    rmSync(join(dir, "data-c1"), { recursive: true, force: true });
  }

  /** Fresh machines with `preset`, waiting until the backup is idle and the client's hub link is up. */
  async function cluster(preset: Preset): Promise<void> {
    await stopAll();
    for (const node of NODES) start(node, preset);
    await explained(() => waitFor("a settled cluster", async () => {
      const [backup, client] = await Promise.all([status("backup"), status("c1")]);
      return backup.chip === "Backup is idle" && client.failover?.hubConnected === true && client.failover.activeServer === "main";
    }, 20_000, 100));
  }

  async function epochs(): Promise<number[]> {
    const all = await Promise.all([status("main"), status("backup")]);
    return all.map((s) => s.failover?.epoch ?? -1);
  }

  async function explained<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      for (const [name, p] of running) console.error(`--- ${name} (exit ${p.proc.exitCode}) ---\n${p.output().slice(-4000)}`);
      throw error;
    }
  }

  /** Drops `percent` % of packets entering every machine: each link loses that much, each way. */
  function loss(percent: number | null): void {
    for (const node of NODES) {
      labOf().exec(node, ["nft", "delete", "table", "inet", "faults"]);
      if (percent === null) continue;
      must(["ip", "netns", "exec", labOf().node(node).ns, "nft", "add", "table", "inet", "faults"]);
      must(["ip", "netns", "exec", labOf().node(node).ns, "nft", "add chain inet faults input { type filter hook input priority 0 ; }"]);
      must(["ip", "netns", "exec", labOf().node(node).ns, "nft", `add rule inet faults input numgen random mod 100 < ${percent} drop`]);
    }
  }

  beforeAll(async () => {
    exe = await executable();
    sweepStaleLabs(ROOT);
    lab = NetnsLab.create({ prefix: `${ROOT}-${process.pid}`, nodes: [...NODES], subnet: "10.232.0", multicastRoute: false });
    dir = mkdtempSync(join(tmpdir(), `${ROOT}-${process.pid}-`));
    must([exe, "keys", "generate", "--out", join(dir, "net.key")]);
    writeFileSync(join(dir, "license.json"), devLicenseText({ type: "server-with-failover", holder: "*" }));
  }, 120_000);

  afterAll(async () => {
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const preset of [DEFAULTS, FAST]) {
    test(`5 % loss on every link for ${FAULT_SECONDS} s (${preset.name}): no failover`, async () => {
      await cluster(preset);
      const before = await epochs();
      loss(5);
      await Bun.sleep(FAULT_SECONDS * 1000);
      loss(null);
      await explained(async () => expect(await epochs()).toEqual(before));
      expect((await status("backup")).chip).toBe("Backup is idle");
    }, (FAULT_SECONDS + 60) * 1000);
  }

  test("the main paused ten times for 40 % of the failover timeout (defaults): no failover", async () => {
    await cluster(DEFAULTS);
    const before = await epochs();
    const main = running.get("main")!;
    for (let i = 0; i < 10; i++) {
      main.proc.kill("SIGSTOP");
      await Bun.sleep(DEFAULTS.failoverTimeoutMs * 0.4);
      main.proc.kill("SIGCONT");
      await Bun.sleep(DEFAULTS.failoverTimeoutMs * 0.6);
    }
    await explained(async () => expect(await epochs()).toEqual(before));
  }, 90_000);

  test("three restarts of the main at random 2–4 s intervals: epochs only grow, and the main takes the network back", async () => {
    await cluster(FAST);
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const start0 = (await epochs())[0]!;
    const seen: number[] = [start0];
    for (let i = 0; i < 3; i++) {
      await running.get("main")!.stop("SIGKILL", 2_000);
      await Bun.sleep(2000 + random() * 2000);
      seen.push((await status("backup")).failover!.epoch);
      start("main", FAST);
      await explained(() => waitFor("the main active again", async () => (await status("main")).failover?.state === "active" && (await status("backup")).chip === "Backup is idle", 20_000, 100));
      seen.push(...(await epochs()));
    }
    // In the order observed, no machine ever reported a lower epoch than one reported before it.
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    const [mainEpoch, backupEpoch] = await epochs();
    expect(mainEpoch).toBe(backupEpoch!);
    expect(mainEpoch!).toBeGreaterThan(start0);
    expect((await status("c1")).failover?.activeServer).toBe("main");
  }, 120_000);
});
