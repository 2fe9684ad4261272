/**
 * A failover cluster of real executables on loopback, one process per
 * machine: a main, its backup and any number of clients, all sharing one
 * network key and a server-with-failover license. The servers' peer ports are
 * chosen up front (each server's command line names the other's); clients
 * listen on port 0. Faults are signals: `kill` (SIGKILL), `pause` (SIGSTOP),
 * `resume` (SIGCONT), and `restart` brings a machine back on the same data
 * dir and port. Local apps are the `sub`/`pub`/`set`/`get` subcommands, each
 * talking to its own machine's node. `shutdown()` kills everything it started.
 *
 *   const c = await Cluster.start({ heartbeatMs: 50, failoverTimeoutMs: 250, clients: ["a", "b"] });
 *   c.kill("main");
 *   await c.waitStatus("backup", "the backup active", (s) => s.failover?.state === "active");
 *   await c.shutdown();
 */
import { copyFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { formatHostPort } from "../../src/core/config.ts";
import { machineStatusSchema, type MachineStatus } from "../../src/core/status.ts";
import { executable } from "./executable.ts";
import { devLicenseText } from "./licenses.ts";
import { startMachine, tempDir, type MachineProcess } from "./machine-process.ts";
import { waitFor } from "./wait-for.ts";
import { eachLine } from "./stream-lines.ts";

/** The fast preset: a failover within about 300 ms. */
export const FAST = { heartbeatMs: 50, failoverTimeoutMs: 250 } as const;
/** The product defaults (DEFAULT_HEARTBEAT_MS, DEFAULT_FAILOVER_TIMEOUT_MS). */
export const DEFAULTS = { heartbeatMs: 100, failoverTimeoutMs: 1000 } as const;

/** How long a helper command (pub, set, get, keys) may run before the test fails. */
const COMMAND_TIMEOUT_MS = 15_000;

export type ClusterOptions = {
  heartbeatMs?: number;
  failoverTimeoutMs?: number;
  /** Client machine names, started with the servers (more with startClient). */
  clients?: string[];
  mainArgs?: string[];
  backupArgs?: string[];
  /**
   * Where the servers' role, main and backup come from:
   * - "flags" (default): `--role`, `--main`, `--backup`; a flag pins a setting, so the setup pages cannot change it.
   * - "config": config.json in the data dir, as the setup pages save it, so `setupRole` may change them.
   * - "pages": nowhere; the servers start stand-alone and the test sets them up with `setupRole`.
   * The peer ports are fixed by flag in every case, so each server's address is known before it starts.
   */
  serverSetup?: "flags" | "config" | "pages";
  /** Define the backup but do not start it: the main starts alone; `startHeld("backup")` starts it later. */
  holdBackup?: boolean;
  /** The loopback address every machine's peer port listens on: "127.0.0.1" (default) or "::1". */
  host?: "127.0.0.1" | "::1";
};

/** The role form of the setup pages, as a browser posts it. */
export type RoleFields = { role: string; main?: string; backup?: string };

/** `keyInDataDir`: the network key is the data dir's own (copied there once), not pinned by --key, so the setup page may change it. */
type Spec = { args: string[]; dataDir: string; config?: RoleFields; keyInDataDir?: boolean };
/** One message a `sub` printed; `at` is when the test read it (performance.now()). */
export type SubscriberLine = { topic: string; data: unknown; from: string; seq: number; at: number };

/**
 * A TCP and a UDP port of the same number, free on 127.0.0.1 when asked
 * (heartbeats share the peer port). Closed again before the machine binds it:
 * another process could take it in between, which on a test box is rare.
 */
export async function freePeerPort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
    const port = tcp.port;
    try {
      const udp = await Bun.udpSocket({ hostname: host, port });
      udp.close();
      return port;
    } catch {
      // UDP taken on that number: try another.
    } finally {
      tcp.stop(true);
    }
  }
  throw new Error("found no port free for both TCP and UDP on 127.0.0.1");
}

/** A `sub` process: its lines, as they arrive. */
export class Subscriber {
  readonly lines: SubscriberLine[] = [];
  private errText = "";

  constructor(readonly proc: Subprocess<"ignore", "pipe", "pipe">) {
    void eachLine(proc.stdout, (line) => {
      if (!line.trim()) return;
      try {
        this.lines.push({ ...(JSON.parse(line) as Omit<SubscriberLine, "at">), at: performance.now() });
      } catch {
        this.errText += `not JSON on stdout: ${line}\n`;
      }
    });
    void (async () => {
      for await (const chunk of proc.stderr) this.errText += new TextDecoder().decode(chunk);
    })();
  }

  on(topic: string): SubscriberLine[] {
    return this.lines.filter((l) => l.topic === topic);
  }

  stderr(): string {
    return this.errText;
  }
}

export class Cluster {
  readonly dir: string;
  readonly keyFile: string;
  readonly licenseFile: string;
  readonly ports: { main: number; backup: number };
  readonly host: string;
  private readonly bin: string;
  private readonly timing: string[];
  private readonly specs = new Map<string, Spec>();
  private readonly machines = new Map<string, MachineProcess>();
  private readonly helpers = new Set<Subprocess>();

  private constructor(bin: string, dir: string, ports: { main: number; backup: number }, timing: string[], host: string) {
    this.bin = bin;
    this.host = host;
    this.dir = dir;
    this.keyFile = join(dir, "network.key");
    this.licenseFile = join(dir, "license.json");
    this.ports = ports;
    this.timing = timing;
  }

  /** Key, license, a main and its backup (started together), then the clients. */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const bin = await executable();
    const dir = tempDir("understudy-cluster-");
    const host = options.host ?? "127.0.0.1";
    const main = await freePeerPort(host);
    let backup = await freePeerPort(host);
    while (backup === main) backup = await freePeerPort(host);
    const { heartbeatMs, failoverTimeoutMs } = { ...FAST, ...options };
    const cluster = new Cluster(bin, dir, { main, backup }, ["--heartbeat-ms", String(heartbeatMs), "--failover-timeout-ms", String(failoverTimeoutMs)], host);
    try {
      await cluster.command(["keys", "generate", "--out", cluster.keyFile]);
      writeFileSync(cluster.licenseFile, devLicenseText({ type: "server-with-failover", holder: "*" }));
      const roles: Record<"main" | "backup", RoleFields> = {
        main: { role: "main", backup: cluster.address("backup") },
        backup: { role: "backup", main: cluster.address("main") },
      };
      const setup = options.serverSetup ?? "flags";
      for (const server of ["main", "backup"] as const) {
        const listen = ["--peer-listen", cluster.address(server)];
        const extra = (server === "main" ? options.mainArgs : options.backupArgs) ?? [];
        if (setup === "flags") cluster.define(server, [...roleFlags(roles[server]), ...listen, ...extra]);
        else cluster.define(server, [...listen, ...extra], setup === "config" ? roles[server] : undefined);
      }
      await Promise.all([cluster.launch("main"), ...(options.holdBackup ? [] : [cluster.launch("backup")])]);
      await Promise.all((options.clients ?? []).map((name) => cluster.startClient(name)));
    } catch (error) {
      await cluster.shutdown();
      throw error;
    }
    return cluster;
  }

  /** A server's peer address, known before it starts. */
  address(server: "main" | "backup"): string {
    return formatHostPort({ host: this.host, port: this.ports[server] });
  }

  /**
   * A client knowing both servers, or only the main (`onlyMain`), plus what `args` say (e.g. another --key);
   * `keyOnPage`: its key is its data dir's own, which its setup page may change.
   */
  async startClient(name: string, opts: { args?: string[]; onlyMain?: boolean; keyOnPage?: boolean } = {}): Promise<MachineProcess> {
    const listen = ["--peer-listen", formatHostPort({ host: this.host, port: 0 })];
    const backup = opts.onlyMain ? [] : ["--backup", this.address("backup")];
    this.define(name, ["--role", "client", "--main", this.address("main"), ...backup, ...listen, ...(opts.args ?? [])]);
    this.specs.get(name)!.keyInDataDir = opts.keyOnPage === true;
    return this.launch(name);
  }

  machine(name: string): MachineProcess {
    const m = this.machines.get(name);
    if (!m) throw new Error(`no machine "${name}" running in this cluster`);
    return m;
  }

  /** The peer address of a running machine: where its local apps connect. */
  peer(name: string): string {
    const peer = this.machine(name).peer;
    if (!peer) throw new Error(`machine "${name}" has no peer port`);
    return peer;
  }

  /** SIGKILL (kill -9), and waits until the process is gone. */
  async kill(name: string): Promise<void> {
    const m = this.machine(name);
    m.proc.kill("SIGKILL");
    await m.proc.exited;
    this.machines.delete(name);
  }

  /** SIGSTOP: the process freezes; its sockets stay open but nothing answers. */
  pause(name: string): void {
    this.machine(name).proc.kill("SIGSTOP");
  }

  resume(name: string): void {
    this.machine(name).proc.kill("SIGCONT");
  }

  /** Starts a machine held back at start (ClusterOptions.holdBackup). */
  async startHeld(name: string): Promise<MachineProcess> {
    if (this.machines.has(name)) throw new Error(`machine "${name}" is already running`);
    return this.launch(name);
  }

  /**
   * Posts the setup pages' role form to `name`, from its own page (Origin = its
   * UI, so the CSRF check passes); resolves with the status and the HTML answer.
   */
  async setupRole(name: string, fields: RoleFields): Promise<{ status: number; body: string }> {
    const ui = this.machine(name).ui;
    const body = new URLSearchParams({ role: fields.role, main: fields.main ?? "", backup: fields.backup ?? "", ...(fields.backup ? { connectBackup: "on" } : {}) });
    const response = await fetch(`${ui}/setup/role`, { method: "POST", body, headers: { origin: ui }, signal: AbortSignal.timeout(10_000) });
    return { status: response.status, body: await response.text() };
  }

  /** Posts a form of `name`'s own console (Origin = its UI, so the CSRF check passes); resolves with the status and the HTML answer. */
  async postForm(name: string, path: string, fields: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    const ui = this.machine(name).ui;
    const response = await fetch(`${ui}${path}`, { method: "POST", body: new URLSearchParams(fields), headers: { origin: ui }, signal: AbortSignal.timeout(10_000) });
    return { status: response.status, body: await response.text() };
  }

  /** Starts a killed machine again: same data dir, same flags, same port. */
  async restart(name: string, extraArgs: string[] = []): Promise<MachineProcess> {
    if (this.machines.has(name)) throw new Error(`machine "${name}" is still running; kill it first`);
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`no machine "${name}" was ever started`);
    spec.args = [...spec.args, ...extraArgs];
    return this.launch(name);
  }

  async status(name: string): Promise<MachineStatus> {
    const response = await fetch(`${this.machine(name).ui}/api/status`, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) throw new Error(`${name}: GET /api/status answered ${response.status}`);
    return machineStatusSchema.parse(await response.json());
  }

  /** Every running machine's status, by name; `skip` leaves out some (a stopped process does not answer). */
  async statuses(skip: readonly string[] = []): Promise<Record<string, MachineStatus>> {
    const names = [...this.machines.keys()].filter((n) => !skip.includes(n));
    const all = await Promise.all(names.map((n) => this.status(n)));
    return Object.fromEntries(names.map((n, i) => [n, all[i]!]));
  }

  /** Waits until `name`'s status satisfies `ok`; the error shows the last status seen. */
  async waitStatus(name: string, what: string, ok: (s: MachineStatus) => boolean, timeoutMs = 10_000): Promise<MachineStatus> {
    let last: MachineStatus | null = null;
    try {
      return await waitFor(
        `${name}: ${what}`,
        async () => {
          last = await this.status(name);
          return ok(last) ? last : null;
        },
        timeoutMs,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\nlast status: ${JSON.stringify(last && brief(last))}\n${this.describe()}`);
    }
  }

  /** Waits until every running machine's status (but those in `skip`) satisfies `ok` at the same poll. */
  async waitAll(
    what: string,
    ok: (name: string, s: MachineStatus, all: Record<string, MachineStatus>) => boolean,
    opts: { timeoutMs?: number; skip?: readonly string[] } = {},
  ): Promise<Record<string, MachineStatus>> {
    let last: Record<string, MachineStatus> = {};
    try {
      return await waitFor(
        what,
        async () => {
          last = await this.statuses(opts.skip);
          return Object.entries(last).every(([n, s]) => ok(n, s, last)) ? last : null;
        },
        opts.timeoutMs ?? 10_000,
      );
    } catch (error) {
      const seen = Object.fromEntries(Object.entries(last).map(([n, s]) => [n, brief(s)]));
      throw new Error(`${(error as Error).message}\nlast statuses: ${JSON.stringify(seen)}\n${this.describe()}`);
    }
  }

  /** A local app on `name` subscribed to `filter`; lines arrive in `lines`. */
  subscribe(name: string, filter: string): Subscriber {
    const proc = Bun.spawn([this.bin, "sub", filter, "--node", this.peer(name), "--key", this.keyFile, "--timeout-ms", "120000"], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: this.env(),
    });
    this.helpers.add(proc);
    return new Subscriber(proc);
  }

  /**
   * Waits until `sub` really receives what a local app on `pubOn` publishes
   * (there is no subscription acknowledgement): publishes once on
   * `topic` and waits a little, again until one arrives.
   */
  async warmUp(sub: Subscriber, pubOn: string, topic: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(
      `a message on ${topic} from ${pubOn} to reach the subscriber`,
      async () => {
        if (sub.on(topic).length > 0) return true;
        if (sub.proc.exitCode !== null) throw new Error(`the subscriber exited with ${sub.proc.exitCode}: ${sub.stderr()}`);
        await this.publish(pubOn, topic, "warm-up", { count: 1 });
        const deadline = performance.now() + 500;
        while (performance.now() < deadline && sub.on(topic).length === 0) await Bun.sleep(10);
        return sub.on(topic).length > 0;
      },
      timeoutMs,
      0,
    );
  }

  /** Starts `pub` on `name`'s node; resolves with its exit code and output once it ends. */
  publish(name: string, topic: string, data: unknown, opts: { count: number; intervalMs?: number }): Promise<{ code: number; out: string; err: string }> {
    return this.command(
      ["pub", topic, JSON.stringify(data), "--node", this.peer(name), "--key", this.keyFile, "--count", String(opts.count), "--interval-ms", String(opts.intervalMs ?? 0)],
      { check: false },
    );
  }

  /** A retained value set by a local app on `name`; throws unless acknowledged. */
  async set(name: string, key: string, value: unknown): Promise<void> {
    await this.command(["set", key, JSON.stringify(value), "--node", this.peer(name), "--key", this.keyFile]);
  }

  async get(name: string, key: string): Promise<{ key: string; value: unknown; version: { epoch: number; seq: number } }> {
    const { out } = await this.command(["get", key, "--node", this.peer(name), "--key", this.keyFile]);
    return JSON.parse(out.trim());
  }

  /** JSON log lines of a running machine. */
  logs(name: string): Record<string, unknown>[] {
    return this.machine(name).lines;
  }

  /** Runs the executable with `args`; by default throws unless it exits 0 in time. */
  async command(args: string[], opts: { check?: boolean; timeoutMs?: number } = {}): Promise<{ code: number; out: string; err: string }> {
    const proc = Bun.spawn([this.bin, ...args], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: this.env(),
      timeout: opts.timeoutMs ?? COMMAND_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    this.helpers.add(proc);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    this.helpers.delete(proc);
    if (opts.check !== false && code !== 0) throw new Error(`understudy ${args.join(" ")} exited with ${code}: ${err.trim() || out.trim()}`);
    return { code, out, err };
  }

  /** Starts the executable with `args` and returns at once (a test may kill it midway); shutdown() kills it if still running. */
  spawnCommand(args: string[]): Subprocess<"ignore", "pipe", "pipe"> {
    const proc = Bun.spawn([this.bin, ...args], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: this.env() });
    this.helpers.add(proc);
    return proc;
  }

  /** Last log lines of every machine, for failure messages. */
  describe(lastLines = 15): string {
    return [...this.machines.entries()]
      .map(([name, m]) => `--- ${name} (${m.ui}, peer ${m.peer})\n${m.lines
        .slice(-lastLines)
        .map((l) => JSON.stringify(l))
        .join("\n")}${m.stderr() ? `\nstderr: ${m.stderr().slice(-2000)}` : ""}`)
      .join("\n");
  }

  /** Kills every process the cluster started (stopped ones too: SIGKILL needs no SIGCONT). Safe to call twice. */
  async shutdown(): Promise<void> {
    const procs = [...[...this.machines.values()].map((m) => m.proc), ...this.helpers];
    this.machines.clear();
    this.helpers.clear();
    for (const proc of procs) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
  }

  private define(name: string, args: string[], config?: RoleFields): void {
    this.specs.set(name, { args, config, dataDir: this.specs.get(name)?.dataDir ?? tempDir(`understudy-${name}-`) });
  }

  private async launch(name: string): Promise<MachineProcess> {
    const spec = this.specs.get(name)!;
    // Written once, before the first start: afterwards config.json is the machine's own (the setup pages save there).
    if (spec.config) {
      writeFileSync(join(spec.dataDir, "config.json"), `${JSON.stringify({ ...spec.config }, null, 2)}\n`);
      spec.config = undefined;
    }
    // A repeated --peer-listen: the command line's last value wins (node:util parseArgs).
    const ownKey = join(spec.dataDir, "network.key");
    if (spec.keyInDataDir && !existsSync(ownKey)) copyFileSync(this.keyFile, ownKey);
    const key = spec.keyInDataDir ? [] : ["--key", this.keyFile];
    const m = await startMachine(["--name", name, ...key, "--license", this.licenseFile, ...this.timing, ...spec.args], {
      dataDir: spec.dataDir,
      bin: this.bin,
      // NODE_BUN_ARGS="--cpu-prof ...": runtime flags for the servers only (a compiled executable reads BUN_OPTIONS), for profiling benches.
      env: process.env.NODE_BUN_ARGS ? { BUN_OPTIONS: process.env.NODE_BUN_ARGS } : undefined,
    });
    this.machines.set(name, m);
    return m;
  }

  private env(): Record<string, string> {
    return { PATH: "/usr/bin:/bin", HOME: this.dir };
  }
}

function roleFlags(fields: RoleFields): string[] {
  return ["--role", fields.role, ...(fields.main ? ["--main", fields.main] : []), ...(fields.backup ? ["--backup", fields.backup] : [])];
}

/** The fields a failure message needs. */
export function brief(s: MachineStatus) {
  const f = s.failover;
  return { role: s.role, chip: s.chip, ...(f && { state: f.state, epoch: f.epoch, activeEpoch: f.activeEpoch, activeServer: f.activeServer, hubConnected: f.hubConnected, queued: f.queued }) };
}
