/**
 * A throw-away network for fault tests: Linux network namespaces joined by a
 * bridge that lives in its own namespace, so nothing touches the host's
 * interfaces (mDNS, heartbeats and fault rules stay inside the lab).
 *
 *   <prefix>-br : br0 (bridge, address <subnet>.254), one port per node
 *   <prefix>-a  : eth0 <subnet>.1/24, lo up, route 224.0.0.0/4 dev eth0
 *   <prefix>-b  : eth0 <subnet>.2/24, …
 *
 * Needs root and iproute2 (`netnsUnavailable()` says why not, for a skip
 * message). Every command has a time limit; `cleanup()` stops what the lab
 * started and deletes its namespaces, and `sweepStaleLabs` removes labs left
 * behind by test runs that were killed.
 *
 *   const lab = NetnsLab.create({ prefix: `us-fo-${process.pid}`, nodes: ["main", "backup", "c1"] });
 *   const p = lab.spawn("main", [process.execPath, "src/main.ts", "run"]);
 *   lab.disconnect("main"); …; lab.connect("main");
 *   await lab.cleanup();
 */
import type { Subprocess } from "bun";

export interface LabOptions {
  /** Namespace names are `${prefix}-${node}` and `${prefix}-br`; include the pid so parallel runs never meet. */
  prefix: string;
  /** Short node names (lower-case letters and digits, at most 8), in address order. */
  nodes: string[];
  /** First three octets of the lab's /24; nodes get .1, .2, …, the bridge .254. */
  subnet?: string;
  /** Add the 224.0.0.0/4 route mDNS needs in each node (default true). */
  multicastRoute?: boolean;
  /** Leave IPv6 on in the nodes (default off: fewer packets, and dnssd and our heartbeats are IPv4). */
  ipv6?: boolean;
}

export interface LabNode {
  name: string;
  ns: string;
  iface: string;
  address: string;
}

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface LabProcess {
  readonly node: string;
  readonly pid: number;
  readonly proc: Subprocess;
  /** Exit code once it has exited. */
  readonly exited: Promise<number>;
  /** What it wrote so far to stdout and stderr (the last MAX_CAPTURE bytes), for failure messages. */
  output(): string;
  /** Sends `signal`, waits up to `timeoutMs`, then SIGKILL. Resolves to the exit code (null if it had to be killed). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export const DEFAULT_SUBNET = "10.231.0";
export const COMMAND_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 3_000;
const MAX_CAPTURE = 64 * 1024;
const NODE_NAME = /^[a-z][a-z0-9]{0,7}$/;
const NODE_IFACE = "eth0";
/** lab.http without curl: the request comes in through the environment. */
const HTTP_SCRIPT = `const e = process.env;
const r = await fetch(e.LAB_URL, { method: e.LAB_METHOD, body: e.LAB_BODY || undefined, headers: JSON.parse(e.LAB_HEADERS || "{}"), signal: AbortSignal.timeout(Number(e.LAB_TIMEOUT)) });
process.stdout.write((await r.text()) + "\\n" + r.status);`;

/** Why namespace tests cannot run here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "network namespaces need root (run the fault tests as root)";
  if (!Bun.which("ip")) return "the `ip` command (iproute2) is missing";
  return null;
}

/** Runs a command with a time limit; never throws for a non-zero exit. */
export function run(argv: string[], timeoutMs = COMMAND_TIMEOUT_MS, env?: Record<string, string>): ExecResult {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs, env: env ? { ...process.env, ...env } : undefined });
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** Runs a command that must succeed; throws with its stderr otherwise. */
export function must(argv: string[], timeoutMs = COMMAND_TIMEOUT_MS): string {
  const result = run(argv, timeoutMs);
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (exit ${result.exitCode}): ${result.stderr.trim() || result.stdout.trim()}`);
  return result.stdout;
}

export function listNamespaces(): string[] {
  return run(["ip", "netns", "list"])
    .stdout.split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.length > 0);
}

/** Kills every process inside namespace `ns` (all of them started by a lab) and deletes it. */
export function destroyNamespace(ns: string): void {
  for (const pid of namespacePids(ns)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  run(["ip", "netns", "del", ns]);
}

function namespacePids(ns: string): number[] {
  return run(["ip", "netns", "pids", ns])
    .stdout.split("\n")
    .map((line) => Number.parseInt(line, 10))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/**
 * Deletes labs named `${root}-<pid>-…` whose test process is gone (a run that
 * was killed before its afterAll). Returns the namespaces removed.
 */
export function sweepStaleLabs(root: string): string[] {
  const pattern = new RegExp(`^${root.replace(/[^a-z0-9]/gi, (c) => `\\${c}`)}-(\\d+)-`);
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const pid = Number(pattern.exec(ns)?.[1] ?? Number.NaN);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    destroyNamespace(ns);
    removed.push(ns);
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class NetnsLab {
  readonly prefix: string;
  readonly bridgeNs: string;
  readonly bridgeAddress: string;
  private readonly byName = new Map<string, LabNode>();
  private readonly processes = new Set<LabProcess>();
  private readonly created: string[] = [];

  private constructor(prefix: string, subnet: string) {
    this.prefix = prefix;
    this.bridgeNs = `${prefix}-br`;
    this.bridgeAddress = `${subnet}.254`;
  }

  /** Builds the lab; on any failure removes what it made and throws. */
  static create(options: LabOptions): NetnsLab {
    const subnet = options.subnet ?? DEFAULT_SUBNET;
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(subnet)) throw new Error(`subnet "${subnet}" must be three octets, like ${DEFAULT_SUBNET}`);
    if (!/^[a-z0-9-]{1,40}$/.test(options.prefix)) throw new Error(`prefix "${options.prefix}" must be lower-case letters, digits and dashes`);
    if (options.nodes.length < 1 || options.nodes.length > 250) throw new Error("a lab has 1 to 250 nodes");
    for (const name of options.nodes) if (!NODE_NAME.test(name)) throw new Error(`node name "${name}" must match ${NODE_NAME}`);
    if (new Set(options.nodes).size !== options.nodes.length) throw new Error("node names must be unique");

    const lab = new NetnsLab(options.prefix, subnet);
    try {
      lab.addNamespace(lab.bridgeNs);
      const br = ["ip", "-n", lab.bridgeNs];
      must([...br, "link", "set", "lo", "up"]);
      // No IGMP snooping: without a querier it could stop forwarding multicast to ports that joined late.
      must([...br, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]);
      must([...br, "addr", "add", `${lab.bridgeAddress}/24`, "dev", "br0"]);
      must([...br, "link", "set", "br0", "up"]);
      options.nodes.forEach((name, i) => {
        const node: LabNode = { name, ns: `${options.prefix}-${name}`, iface: NODE_IFACE, address: `${subnet}.${i + 1}` };
        lab.addNamespace(node.ns);
        if (!options.ipv6) {
          must(["ip", "netns", "exec", node.ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
        }
        // Made in the bridge namespace and moved straight into the node's: the host never holds either end.
        must([...br, "link", "add", `p-${name}`, "type", "veth", "peer", "name", node.iface, "netns", node.ns]);
        must([...br, "link", "set", `p-${name}`, "master", "br0", "up"]);
        const n = ["ip", "-n", node.ns];
        must([...n, "link", "set", "lo", "up"]);
        must([...n, "addr", "add", `${node.address}/24`, "dev", node.iface]);
        must([...n, "link", "set", node.iface, "up"]);
        if (options.multicastRoute !== false) must([...n, "route", "add", "224.0.0.0/4", "dev", node.iface]);
        lab.byName.set(name, node);
      });
    } catch (error) {
      for (const ns of lab.created.reverse()) destroyNamespace(ns);
      throw error;
    }
    return lab;
  }

  node(name: string): LabNode {
    const node = this.byName.get(name);
    if (!node) throw new Error(`no node "${name}" in lab ${this.prefix}`);
    return node;
  }

  get nodes(): LabNode[] {
    return [...this.byName.values()];
  }

  /** A node name or the bridge ("br") to the namespace to run in. */
  private nsOf(where: string): string {
    return where === "br" ? this.bridgeNs : this.node(where).ns;
  }

  /** Runs a command inside a node (or "br") and waits, at most `timeoutMs`. */
  exec(where: string, argv: string[], timeoutMs = COMMAND_TIMEOUT_MS, env?: Record<string, string>): ExecResult {
    return run(["ip", "netns", "exec", this.nsOf(where), ...argv], timeoutMs, env);
  }

  /** Starts a long-running command inside a node (or "br"); cleanup() stops it if the test did not. */
  spawn(where: string, argv: string[], options: { env?: Record<string, string>; cwd?: string } = {}): LabProcess {
    const proc = Bun.spawn(["ip", "netns", "exec", this.nsOf(where), ...argv], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
    });
    let captured = "";
    const capture = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      const reader = stream.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        captured = (captured + decoder.decode(value, { stream: true })).slice(-MAX_CAPTURE);
      }
    };
    void capture(proc.stdout as ReadableStream<Uint8Array>).catch(() => {});
    void capture(proc.stderr as ReadableStream<Uint8Array>).catch(() => {});
    const processes = this.processes;
    const handle: LabProcess = {
      node: where,
      pid: proc.pid,
      proc,
      exited: proc.exited,
      output: () => captured,
      async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = STOP_TIMEOUT_MS) {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        const code = await Promise.race([proc.exited, Bun.sleep(timeoutMs).then(() => null)]);
        if (code === null) {
          proc.kill("SIGKILL");
          await proc.exited;
        }
        processes.delete(handle);
        return code;
      },
    };
    processes.add(handle);
    return handle;
  }

  /** Unplugs a node's cable: its bridge port goes down, so it neither hears nor is heard. */
  disconnect(name: string): void {
    must(["ip", "-n", this.bridgeNs, "link", "set", `p-${this.node(name).name}`, "down"]);
  }

  /** Plugs it back in. */
  connect(name: string): void {
    must(["ip", "-n", this.bridgeNs, "link", "set", `p-${this.node(name).name}`, "up"]);
  }

  /**
   * An HTTP request from inside the lab (the bridge namespace by default),
   * since the host has no route into it. Resolves to status and body; rejects
   * on connection failure or after `timeoutMs`. `json` or `form` (URL-encoded,
   * as a browser posts a form) is the body; `headers` are added. Uses curl
   * when installed, else a one-line Bun script.
   */
  async http(
    url: string,
    options: { method?: string; json?: unknown; form?: Record<string, string>; headers?: Record<string, string>; from?: string; timeoutMs?: number } = {},
  ): Promise<{ status: number; body: string }> {
    const timeoutMs = options.timeoutMs ?? 2_000;
    const body =
      options.json !== undefined ? JSON.stringify(options.json) : options.form !== undefined ? new URLSearchParams(options.form).toString() : undefined;
    const method = options.method ?? (body === undefined ? "GET" : "POST");
    const headers: Record<string, string> = {
      ...(options.json !== undefined ? { "content-type": "application/json" } : {}),
      ...(options.form !== undefined ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      ...options.headers,
    };
    const ns = this.nsOf(options.from ?? "br");
    const curl = Bun.which("curl");
    const argv = curl
      ? [curl, "-sS", "--max-time", String(timeoutMs / 1000), "-X", method, "-w", "\n%{http_code}"]
      : [process.execPath, "-e", HTTP_SCRIPT];
    if (curl) for (const [name, value] of Object.entries(headers)) argv.push("-H", `${name}: ${value}`);
    if (curl && body !== undefined) argv.push("--data-binary", body);
    if (curl) argv.push(url);
    const env = curl
      ? undefined
      : { ...process.env, LAB_URL: url, LAB_METHOD: method, LAB_BODY: body ?? "", LAB_HEADERS: JSON.stringify(headers), LAB_TIMEOUT: String(timeoutMs) };
    const proc = Bun.spawn(["ip", "netns", "exec", ns, ...argv], { stdout: "pipe", stderr: "pipe", env, timeout: timeoutMs + 2_000, killSignal: "SIGKILL" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) throw new Error(`${method} ${url} from ${ns} failed: ${err.trim() || `exit ${code}`}`);
    const cut = out.lastIndexOf("\n");
    return { status: Number(out.slice(cut + 1)), body: out.slice(0, cut) };
  }

  httpGet(url: string, options: { from?: string; timeoutMs?: number } = {}): Promise<{ status: number; body: string }> {
    return this.http(url, options);
  }

  /** Stops every process the lab started (SIGTERM, then SIGKILL), then deletes its namespaces. Safe to call twice. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.processes].map((p) => p.stop("SIGTERM", 1_500).catch(() => null)));
    for (const ns of this.created.splice(0).reverse()) destroyNamespace(ns);
  }

  private addNamespace(ns: string): void {
    if (listNamespaces().includes(ns)) destroyNamespace(ns); // a leftover of a killed run with a recycled pid
    must(["ip", "netns", "add", ns]);
    this.created.push(ns);
  }
}
