/**
 * A main, a backup and one client, each the real executable in its own
 * network namespace (NetnsLab), with the faults the fault suite and
 * `bun run bench faults` apply: random loss (nftables), pauses (SIGSTOP) and
 * restarts of the main. Root only; `faultLabUnavailable()` says why not.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MachineStatus } from "../../src/core/status.ts";
import { devLicenseText } from "./licenses.ts";
import { must, NetnsLab, netnsUnavailable, sweepStaleLabs, type LabProcess } from "./netns.ts";
import { waitFor } from "./wait-for.ts";

const UI = "http://127.0.0.1:7400";
const POLLER = join(import.meta.dir, "status-poller.ts");
const PEER_PORT = 7401;
export const FAULT_NODES = ["main", "backup", "c1"] as const;
export type FaultNode = (typeof FAULT_NODES)[number];
export type Preset = { name: string; heartbeatMs: number; failoverTimeoutMs: number };
export const DEFAULTS: Preset = { name: "defaults", heartbeatMs: 100, failoverTimeoutMs: 1000 };
export const FAST: Preset = { name: "fast", heartbeatMs: 50, failoverTimeoutMs: 250 };

export function faultLabUnavailable(): string | null {
  return netnsUnavailable() ?? (Bun.which("nft") ? null : "nftables is missing (apt-get install -y nftables)");
}

export class FaultCluster {
  private readonly running = new Map<FaultNode, LabProcess>();
  private preset: Preset = DEFAULTS;

  private constructor(
    private readonly lab: NetnsLab,
    /** Scratch space of the run: data dirs, the network key, what watches write. */
    readonly dir: string,
    private readonly exe: string,
  ) {}

  static create(exe: string, root: string, subnet: string): FaultCluster {
    sweepStaleLabs(root);
    const lab = NetnsLab.create({ prefix: `${root}-${process.pid}`, nodes: [...FAULT_NODES], subnet, multicastRoute: false });
    // As the README asks of installers: re-ask for a peer's hardware address after 100 ms, not 1 s, so a
    // cable that comes back is heard again well inside the failover timeout.
    for (const node of FAULT_NODES) must(["ip", "netns", "exec", lab.node(node).ns, "sysctl", "-q", "-w", "net.ipv4.neigh.eth0.retrans_time_ms=100"]);
    const dir = mkdtempSync(join(tmpdir(), `${root}-${process.pid}-`));
    must([exe, "keys", "generate", "--out", join(dir, "net.key")]);
    writeFileSync(join(dir, "license.json"), devLicenseText({ type: "server-with-failover", holder: "*" }));
    return new FaultCluster(lab, dir, exe);
  }

  async status(node: FaultNode): Promise<MachineStatus> {
    const response = await this.lab.http(`${UI}/api/status`, { from: node, timeoutMs: 1_500 });
    if (response.status !== 200) throw new Error(`${node}: status ${response.status}`);
    return JSON.parse(response.body) as MachineStatus;
  }

  /** The epochs the main and the backup know. */
  async epochs(): Promise<[number, number]> {
    const [main, backup] = await Promise.all([this.status("main"), this.status("backup")]);
    return [main.failover?.epoch ?? -1, backup.failover?.epoch ?? -1];
  }

  start(node: FaultNode): LabProcess {
    const data = join(this.dir, `data-${node}`);
    mkdirSync(data, { recursive: true });
    const at = (n: FaultNode) => `${this.lab.node(n).address}:${PEER_PORT}`;
    const role = node === "c1" ? "client" : node;
    const servers = node === "main" ? ["--backup", at("backup")] : node === "backup" ? ["--main", at("main")] : ["--main", at("main"), "--backup", at("backup")];
    const argv = [this.exe, "run", "--role", role, "--name", node, "--data", data, "--key", join(this.dir, "net.key"), "--license", join(this.dir, "license.json")];
    argv.push("--ui-listen", "127.0.0.1:7400", "--peer-listen", `${this.lab.node(node).address}:${PEER_PORT}`, "--discovery", "off", "--log", "json");
    argv.push("--heartbeat-ms", String(this.preset.heartbeatMs), "--failover-timeout-ms", String(this.preset.failoverTimeoutMs), ...servers);
    // FAULT_KEEP: the incarnation this start replaces keeps its log (the test output holds only the last 4 KiB on failure).
    const was = this.running.get(node);
    if (was && process.env.FAULT_KEEP) appendFileSync(join(this.dir, `${node}.log`), was.output());
    const p = this.lab.spawn(node, argv, { env: { HOME: data } });
    this.running.set(node, p);
    return p;
  }

  /** Fresh machines (new data dirs) with `preset`, once the backup is idle and the client's hub link is up on the main. */
  async fresh(preset: Preset): Promise<void> {
    await Promise.all([...this.running.values()].map((p) => p.stop("SIGKILL", 2_000)));
    this.running.clear();
    for (const node of FAULT_NODES) rmSync(join(this.dir, `data-${node}`), { recursive: true, force: true });
    this.preset = preset;
    for (const node of FAULT_NODES) this.start(node);
    await this.explained(() => this.settled(20_000));
  }

  /** Waits until the main serves, the backup is idle and the client follows the main. */
  settled(timeoutMs: number): Promise<boolean> {
    return waitFor("a settled cluster", async () => {
      const [main, backup, client] = await Promise.all([this.status("main"), this.status("backup"), this.status("c1")]);
      return main.failover?.state === "active" && backup.chip === "Backup is idle" && client.failover?.hubConnected === true && client.failover.activeServer === "main";
    }, timeoutMs, 100);
  }

  /**
   * Runs `understudy ARGS` as a local app of `node`: in its namespace, talking to its own node, as an
   * engine plug-in would. Its stdout and stderr go to files (the subscriber's stream outgrows any capture).
   */
  app(node: FaultNode, args: string[], out: string, err: string): LabProcess {
    const argv = [this.exe, ...args, "--node", `${this.lab.node(node).address}:${PEER_PORT}`, "--key", join(this.dir, "net.key")];
    return this.lab.spawn(node, ["sh", "-c", 'out=$1 err=$2; shift 2; exec "$@" > "$out" 2> "$err"', "sh", out, err, ...argv]);
  }

  /** Polls `node`'s /api/status every `everyMs` from inside its namespace into `file` (status-poller.ts), for at most `forMs`. */
  poll(node: FaultNode, file: string, everyMs: number, forMs: number): LabProcess {
    return this.lab.spawn(node, [process.execPath, POLLER, UI, file, String(everyMs), String(forMs)]);
  }

  /** How long after the faults stopped the cluster settled again (see `settled`), in ms. */
  async recovery(timeoutMs = 20_000): Promise<number> {
    const from = performance.now();
    await this.explained(() => this.settled(timeoutMs));
    return performance.now() - from;
  }

  /** Drops `percent` % of the packets entering every machine (each link, each way); null lifts it. */
  loss(percent: number | null): void {
    for (const node of FAULT_NODES) {
      this.lab.exec(node, ["nft", "delete", "table", "inet", "faults"]);
      if (percent === null) continue;
      const nft = ["ip", "netns", "exec", this.lab.node(node).ns, "nft"];
      must([...nft, "add", "table", "inet", "faults"]);
      must([...nft, "add chain inet faults input { type filter hook input priority 0 ; }"]);
      must([...nft, `add rule inet faults input numgen random mod 100 < ${percent} drop`]);
    }
  }

  /** Drops every packet from `from` arriving at `to` (a one-way cut); `null` heals every cut. */
  cut(from: FaultNode, to: FaultNode): void {
    const nft = ["ip", "netns", "exec", this.lab.node(to).ns, "nft"];
    this.lab.exec(to, ["nft", "add", "table", "inet", "cuts"]);
    this.lab.exec(to, ["nft", "add chain inet cuts input { type filter hook input priority 0 ; }"]);
    must([...nft, `add rule inet cuts input ip saddr ${this.lab.node(from).address} drop`]);
  }

  healCuts(): void {
    for (const node of FAULT_NODES) this.lab.exec(node, ["nft", "delete", "table", "inet", "cuts"]);
  }

  /** Takes the main's cable out for `downMs`, then puts it back. */
  flapMain(downMs: number): Promise<void> {
    this.lab.disconnect("main");
    return Bun.sleep(downMs).then(() => this.lab.connect("main"));
  }

  /** Freezes the main for `ms`. */
  async pauseMain(ms: number): Promise<void> {
    const main = this.running.get("main")!;
    main.proc.kill("SIGSTOP");
    await Bun.sleep(ms);
    main.proc.kill("SIGCONT");
  }

  async killMain(): Promise<void> {
    await this.running.get("main")!.stop("SIGKILL", 2_000);
  }

  /** On failure, what the machines logged: the test output is all CI keeps. */
  async explained<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      for (const [name, p] of this.running) console.error(`--- ${name} (exit ${p.proc.exitCode}) ---\n${p.output().slice(-4000)}`);
      throw error;
    }
  }

  async cleanup(): Promise<void> {
    await this.lab.cleanup();
    if (process.env.FAULT_KEEP) {
      for (const [name, p] of this.running) appendFileSync(join(this.dir, `${name}.log`), p.output());
      return console.warn(`[fault] kept ${this.dir}`);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
