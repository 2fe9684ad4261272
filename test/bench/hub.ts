/**
 * Data Hub benchmark, beside Mosquitto in the same run on the same workload
 * (`bun run bench hub`): a main, a backup and two clients (real executables
 * on loopback), Debian's mosquitto started here on a loopback port.
 *
 * Paths: "sealed" = a local app on client P's /app -> main -> client S's /app
 * (understudy's own protocol, every hop sealed); "node MQTT" = mqtt.js on P's
 * MQTT front door -> main -> mqtt.js on S's front door; "mosquitto" = mqtt.js
 * -> mosquitto -> mqtt.js, QoS 0. Messages are 100-200 byte JSON. Throughput:
 * a burst of BURST messages back to back, 1 -> 1 and 1 -> 10 subscribers, from
 * the first send to the last delivery (each subscriber must get all of them,
 * in order, once). Latency: paced at 1,000 and 10,000 msg/s for PACED_S s,
 * publish to delivery, the publisher in a process of its own sending on a
 * 1 ms tick (paced-publisher.ts, which also counts its own late sends) and
 * the subscriber in this one, both on the wall clock (ONLY=latency: only
 * this phase). The bursts' load generators run in this process. Nodes run
 * with the installed service's environment (AS_SERVICE=0: without).
 * Peak RSS (VmHWM) of every process at the end, and the CPU time each
 * process spent per message in the 1 -> 1 burst (what the rates are made of,
 * and much less dependent on what else runs on the machine). Last, the same
 * burst between commands: `understudy pub` -> `understudy sub` against
 * `mosquitto_pub -l` -> `mosquitto_sub` (cli-burst.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { SERVICE_ENVIRONMENT } from "../../src/cli/service-unit.ts";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { freePeerPort } from "../support/cluster.ts";
import { executable } from "../support/executable.ts";
import { cpuSeconds } from "./process-meter.ts";
import { cliBurst, mosquittoSide, understudySide, type CliBurstResult } from "./cli-burst.ts";
import { benchFolder } from "./bench-folder.ts";
import { mqttTransport, newReceiver, sealedTransport, type Receiver, type Transport } from "./hub-transports.ts";
import { watchLoopLag, type LoopLag } from "./loop-lag.ts";
import type { PacedConfig, PacedResult } from "./paced-publisher.ts";

const BURST = Number(process.env.BURST ?? 50_000);
const FANOUT_BURST = Number(process.env.FANOUT_BURST ?? 20_000);
const PACED_S = Number(process.env.PACED_S ?? 5);
/**
 * An unmeasured burst per path first: the nodes' JavaScript is compiled to fast code only after
 * it ran a while (a node in a studio runs for hours); the first 50,000 messages after a start
 * cost about twice the CPU. WARMUP=0 measures them cold.
 */
const WARMUP = Number(process.env.WARMUP ?? 20_000);
/** How often the mosquitto burst runs again when it did not arrive whole, before the ratio is left out. */
const REFERENCE_RETRIES = 2;
/** How long every process's idle CPU is sampled before the workloads. */
const IDLE_SAMPLE_MS = 3_000;
/** A workload that has not finished by then is reported as not whole (the machine is overloaded). */
const WORKLOAD_MS = 120_000;
const PAD = "p".repeat(100);

if (!Bun.which("mosquitto")) {
  console.error("bench hub: Debian's mosquitto is not installed (apt-get install mosquitto mosquitto-clients)");
  process.exit(1);
}

/** CPU_PROF=dir: the nodes run from source under `bun --cpu-prof` (a markdown profile per process in dir at the end). */
const CPU_PROF = process.env.CPU_PROF;
/**
 * MEM_PROF=dir: the nodes run from source with mem-probe.ts preloaded (RSS and heap contents every 200 ms, dir/<pid>.jsonl).
 * STALL_PROF=dir instead: stall-probe.ts, only the event loop's stalls over 3 ms (dir/<pid>.stall); light enough not to cause its own.
 */
const MEM_PROF = process.env.MEM_PROF ?? process.env.STALL_PROF;
const PROBE = process.env.STALL_PROF ? "stall-probe.ts" : "mem-probe.ts";
/** PACED_DUMP=dir: every paced message's send time (wall ms) and latency, dir/<path>-<rate>.csv, to lay beside STALL_PROF's stalls. */
const PACED_DUMP = process.env.PACED_DUMP;
// BIN=path runs that executable (e.g. one built from another commit, for a before/after under the same load).
const bin = process.env.BIN ?? (await executable());
const source = join(import.meta.dir, "../../src/main.ts");
const understudy = (name: string) =>
  CPU_PROF
    ? [process.execPath, "--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${join(CPU_PROF, name)}`, source]
    : MEM_PROF
      ? [process.execPath, ...(process.env.NODE_BUN_ARGS?.split(" ").filter(Boolean) ?? []), "--preload", join(import.meta.dir, PROBE), source]
      : [bin];
/**
 * NODE_BUN_ARGS="--smol ...": runtime flags for the nodes only (from source: on the command line;
 * the executable: through BUN_OPTIONS, which a compiled Bun executable reads too).
 */
const nodeEnv: Record<string, string | undefined> = {
  ...process.env,
  // As the installed service runs them (its environment: cli/service-unit.ts); AS_SERVICE=0 as a bare `understudy run`.
  ...(process.env.AS_SERVICE === "0" ? {} : SERVICE_ENVIRONMENT),
  ...(MEM_PROF ? { MEM_PROF_DIR: MEM_PROF } : {}),
  ...(process.env.NODE_BUN_ARGS && !MEM_PROF && !CPU_PROF ? { BUN_OPTIONS: process.env.NODE_BUN_ARGS } : {}),
  // NODE_ENV_VARS="BUN_JSC_x=1 ...": environment for the nodes only (runtime settings to compare).
  ...Object.fromEntries((process.env.NODE_ENV_VARS?.split(" ").filter(Boolean) ?? []).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])),
};
console.error(`bench hub: nodes run with ${process.env.AS_SERVICE === "0" ? "no service environment (AS_SERVICE=0)" : `the service's environment: ${Object.entries(SERVICE_ENVIRONMENT).map(([k, v]) => `${k}=${v}`).join(" ")}`}`);
const { dir, keyFile, licFile } = benchFolder(bin, "understudy-bench-hub-");
const networkKey = parseNetworkKey(readFileSync(keyFile, "utf8"), keyFile);
const procs = new Map<string, Subprocess>();

async function waitUntil(what: string, probe: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await Promise.resolve().then(probe).catch(() => false)) return;
    await Bun.sleep(20);
  }
  throw new Error(`bench hub: timed out waiting for ${what}`);
}

// ------------------------------------------------------------ processes

const port = () => freePeerPort();
const [pm, pb, pp, ps, mqttP, mqttS, mosq, uiP, uiS] = (await Promise.all(Array.from({ length: 9 }, port))) as [number, number, number, number, number, number, number, number, number];
const at = (p: number) => `127.0.0.1:${p}`;
function machine(name: string, args: string[], ui = 0) {
  const data = mkdtempSync(join(dir, `${name.replace(" ", "-")}-`));
  const base = [...understudy(name.replace(" ", "-")), "run", "--name", name.replace(" ", "-"), "--data", data, "--key", keyFile, "--license", licFile, "--discovery", "off", "--log", "json", "--ui-listen", at(ui)];
  // NODE_LOGS=dir: each node's log (stdout, JSON lines) to dir/<name>.log.
  const stdout = process.env.NODE_LOGS ? Bun.file(join(process.env.NODE_LOGS, `${name.replace(" ", "-")}.log`)) : "ignore";
  // NODE_RUN_ARGS="--heartbeat-ms 250 ...": more `understudy run` options for every node (what a setting costs the paced tail).
  const extra = process.env.NODE_RUN_ARGS?.split(" ").filter(Boolean) ?? [];
  procs.set(name, Bun.spawn([...base, ...args, ...extra], { stdout, stderr: "inherit", env: nodeEnv }));
  if (MEM_PROF) console.error(`bench hub: ${name} is pid ${procs.get(name)!.pid}`);
}
machine("main", ["--role", "main", "--peer-listen", at(pm), "--backup", at(pb), "--mqtt-listen", "off"]);
machine("backup", ["--role", "backup", "--peer-listen", at(pb), "--main", at(pm), "--mqtt-listen", "off"]);
const servers = ["--main", at(pm), "--backup", at(pb)];
machine("client P", ["--role", "client", "--peer-listen", at(pp), "--mqtt-listen", at(mqttP), ...servers], uiP);
machine("client S", ["--role", "client", "--peer-listen", at(ps), "--mqtt-listen", at(mqttS), ...servers], uiS);
const mosquittoConf = join(dir, "mosquitto.conf");
/**
 * MOSQUITTO_NODELAY=1: mosquitto sets TCP_NODELAY on its clients' sockets, as Bun does on every socket of the nodes and of
 * mqtt.js here. Without it (Debian's default) Nagle holds a small write while one is unacknowledged and the reader delays its
 * ack up to 40 ms: mosquitto's paced tail at 10,000 msg/s is then that wait, not its work.
 */
const mosquittoNoDelay = process.env.MOSQUITTO_NODELAY === "1" ? "set_tcp_nodelay true\n" : "";
writeFileSync(mosquittoConf, `listener ${mosq} 127.0.0.1\nallow_anonymous true\npersistence false\n${mosquittoNoDelay}`);
procs.set("mosquitto", Bun.spawn(["mosquitto", "-c", mosquittoConf], { stdout: "ignore", stderr: "ignore" }));

// ------------------------------------------------------------ load generators

const sealed = sealedTransport(networkKey, keyFile, at(pp), at(ps));
const all = [sealed, mqttTransport("node MQTT (client -> main -> client)", mqttP, mqttS), mqttTransport("mosquitto 2.0 (one broker)", mosq, mosq)];
/**
 * ONLY=sealed,mosquitto runs some paths (their first word, in that order; "cli" the command-line burst); the ratio needs mosquitto.
 * ONLY=latency: only the paced phase (after the warm-up), of every path unless some are named too (ONLY=latency,mosquitto,sealed,node:
 * every path, mosquitto first, so that runs on a machine whose load drifts can alternate the order).
 */
const only = process.env.ONLY?.split(",");
const namedPaths = only?.filter((o) => o !== "cli" && o !== "latency") ?? [];
const latencyOnly = only?.includes("latency") ?? false;
const transports = !only || (latencyOnly && namedPaths.length === 0) ? all : namedPaths.flatMap((o) => all.filter((t) => t.name.startsWith(o)));

// ------------------------------------------------------------ workloads

let runId = 0;
/** Subscribers ready (a warm-up message reached each) and a publisher. */
async function setup(t: Transport, subscribers: number) {
  const run = `bench/r${++runId}`;
  const receivers = Array.from({ length: subscribers }, newReceiver);
  // One after another: a node takes at most 8 connections in their handshake per source at once (handshake-admission.ts).
  const closers: (() => void)[] = [];
  for (const r of receivers) closers.push(await t.subscribe(`${run}/#`, r));
  const pub = await t.publisher();
  await waitUntil(`${t.name}: subscriptions live`, async () => {
    await pub.send(`${run}/warm`, { seq: 0, t: 0, pad: "" });
    await Bun.sleep(100);
    return receivers.every((r) => r.warmed);
  });
  await Bun.sleep(200);
  return { run, receivers, pub, close: () => [pub.close(), ...closers.map((c) => c())] };
}

function whole(receivers: Receiver[], count: number): boolean {
  return receivers.every((r) => r.seqs.length === count && r.seqs.every((s, i) => s === i + 1));
}

/** CPU seconds so far of every process of the bench, this one included ("bench": the load generators). */
function cpuNow(): Map<string, number> {
  const cpu = new Map<string, number>();
  for (const [name, p] of procs) cpu.set(name, cpuSeconds(p.pid));
  const own = process.cpuUsage();
  cpu.set("bench", (own.user + own.system) / 1e6);
  return cpu;
}

/**
 * CPU seconds per second each process spends with no messages flowing (heartbeats, timers): on a loaded
 * machine a burst takes longer, and this idle share would otherwise count as CPU per message.
 */
const idleCpu = new Map<string, number>();
async function measureIdleCpu(): Promise<void> {
  const before = cpuNow();
  const start = performance.now();
  await Bun.sleep(IDLE_SAMPLE_MS);
  const after = cpuNow();
  const seconds = (performance.now() - start) / 1000;
  for (const [name, s] of after) if (name !== "bench") idleCpu.set(name, (s - (before.get(name) ?? 0)) / seconds);
}

/** CPU microseconds per message each process spent between two `cpuNow`s `ms` apart, net of its idle CPU (only those that spent some). */
function cpuPerMessage(before: Map<string, number>, after: Map<string, number>, count: number, ms: number): string {
  return [...after]
    .map(([name, s]) => [name, ((s - (before.get(name) ?? 0) - (idleCpu.get(name) ?? 0) * (ms / 1000)) * 1e6) / count] as const)
    .filter(([, us]) => us >= 1)
    .map(([name, us]) => `${name} ${us.toFixed(1)}`)
    .join(", ");
}

async function burst(t: Transport, subscribers: number, count: number): Promise<{ rate: number; ok: boolean; cpu: string }> {
  const { run, receivers, pub, close } = await setup(t, subscribers);
  const cpuBefore = cpuNow();
  const start = performance.now();
  for (let seq = 1; seq <= count && performance.now() - start < WORKLOAD_MS && !pub.lost?.(); seq++) {
    const sending = pub.send(`${run}/x`, { seq, t: 0, pad: PAD });
    if (sending) await sending;
  }
  await waitUntil(`${t.name}: the burst delivered`, () => pub.lost?.() === true || receivers.every((r) => r.seqs.length >= count), Math.max(1, WORKLOAD_MS - (performance.now() - start))).catch(() => {});
  const ms = performance.now() - start;
  const cpu = cpuPerMessage(cpuBefore, cpuNow(), count, ms);
  await Bun.sleep(100);
  const ok = whole(receivers, count);
  close();
  return { rate: (count * 1000) / ms, ok, cpu };
}

/** The first line a child prints (null if it ends without one). */
async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string | null> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    if (text.includes("\n")) return text.slice(0, text.indexOf("\n"));
  }
  return null;
}

type PacedRow = { p50: number; p99: number; max: number; ok: boolean; publisher: PacedResult; subscriberLag: LoopLag };
/** A hold of the subscriber's loop longer than this is counted (a 1 ms timer here fires every ≈ 1.1 ms when idle). */
const SUBSCRIBER_HOLD_MS = 2;

/**
 * Paced at `rate` for PACED_S s, publish to delivery: the publisher in a process of its own
 * (paced-publisher.ts, sending on a 1 ms tick), the subscriber in this one, both timing on the
 * wall clock. The bench's own lag beside the broker's: `publisher`, what it sent late;
 * `subscriberLag`, how long this process's loop was held meanwhile.
 */
async function paced(t: Transport, rate: number): Promise<PacedRow> {
  const run = `bench/r${++runId}`;
  const receiver = newReceiver();
  const unsubscribe = await t.subscribe(`${run}/#`, receiver);
  const count = rate * PACED_S;
  const config: PacedConfig = { via: t.via, run, rate, count, limitMs: WORKLOAD_MS };
  const publisher = Bun.spawn([process.execPath, join(import.meta.dir, "paced-publisher.ts"), JSON.stringify(config)], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
  // The publisher stops itself after WORKLOAD_MS; this only ends one that hangs.
  const deadline = setTimeout(() => publisher.kill(), WORKLOAD_MS + 30_000);
  try {
    await waitUntil(`${t.name}: the paced publisher's warm-up delivered`, () => receiver.warmed);
    await Bun.sleep(200);
    const lag = watchLoopLag(SUBSCRIBER_HOLD_MS);
    publisher.stdin.write("go\n");
    await publisher.stdin.flush();
    const line = await firstLine(publisher.stdout);
    const sent: PacedResult = line ? (JSON.parse(line) as PacedResult) : { sent: 0, lateOver1Ms: 0, lateOver5Ms: 0, worstLateMs: Number.NaN, ms: 0 };
    await waitUntil(`${t.name}: paced messages delivered`, () => receiver.seqs.length >= sent.sent, Math.max(1, WORKLOAD_MS - sent.ms)).catch(() => {});
    const subscriberLag = lag.stop();
    await Bun.sleep(100);
    publisher.stdin.write("end\n");
    await publisher.stdin.end();
    await publisher.exited;
    if (PACED_DUMP) writeFileSync(join(PACED_DUMP, `${t.name.split(" ")[0]}-${rate}.csv`), receiver.sentAt.map((at, i) => `${at.toFixed(3)},${receiver.latencies[i]!.toFixed(3)}`).join("\n"));
    const sorted = [...receiver.latencies].sort((a, b) => a - b);
    const pct = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
    return { p50: pct(0.5), p99: pct(0.99), max: sorted.at(-1) ?? Number.NaN, ok: whole([receiver], count), publisher: sent, subscriberLag };
  } finally {
    clearTimeout(deadline);
    publisher.kill();
    unsubscribe();
  }
}

/** A rate ratio, or why there is none: a side that did not arrive whole (or did not run) has no rate. */
function ratio(rate: number | undefined, reference: number | undefined): string {
  if (reference === undefined) return "- (mosquitto did not arrive whole or did not run)";
  if (rate === undefined) return "- (did not arrive whole or did not run)";
  return (rate / reference).toFixed(2);
}

/** Current RSS of a process and its anonymous (private) part in MiB: VmRSS also counts the executable's mapped pages (≈ 44 MiB, shared). */
function rssMiB(proc: Subprocess): { rss: number; anon: number } {
  try {
    const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
    return { rss: kb("VmRSS"), anon: kb("RssAnon") };
  } catch {
    return { rss: Number.NaN, anon: Number.NaN };
  }
}

/**
 * The highest RSS of every process during each workload (sampled every 100 ms): which workload makes
 * a node's peak, and what the node holds afterwards (the last sample of a phase).
 */
const phasePeaks: { phase: string; peak: Map<string, number>; anon: Map<string, number> }[] = [];
function phase(name: string): void {
  phasePeaks.push({ phase: name, peak: new Map(), anon: new Map() });
  if (MEM_PROF) console.error(`bench hub: phase ${name} at ${Date.now()}`);
}
const rssSampler = setInterval(() => {
  const current = phasePeaks.at(-1);
  if (!current) return;
  for (const [name, p] of procs) {
    const { rss, anon } = rssMiB(p);
    current.peak.set(name, Math.max(current.peak.get(name) ?? 0, rss));
    current.anon.set(name, Math.max(current.anon.get(name) ?? 0, anon));
  }
}, 100);

function peakRssMiB(proc: Subprocess): number {
  try {
    const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
}

try {
  const statusOf = async (ui: number) => (await (await fetch(`http://${at(ui)}/api/status`)).json()) as { failover?: { hubConnected: boolean } };
  await waitUntil("the clients on the main", async () => (await Promise.all([uiP, uiS].map(statusOf))).every((s) => s.failover?.hubConnected === true), 30_000);
  phase("idle");
  await measureIdleCpu();
  const idle = [...idleCpu].map(([name, s]) => `${name} ${(s * 1000).toFixed(0)}`).join(", ");
  console.error(`idle CPU ms per second (subtracted from CPU per message): ${idle}`);
  const rows: string[] = [];
  const rates = new Map<string, number>();
  const cpus: string[] = [];
  const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en") : "-");
  const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "-");
  const pacedLine = (r: PacedRow) =>
    `p50 ${f1(r.p50)} p99 ${f1(r.p99)} max ${f1(r.max)} ms; publisher's sends late > 1 ms ${r.publisher.lateOver1Ms}, > 5 ms ${r.publisher.lateOver5Ms} (worst ${f1(r.publisher.worstLateMs)} ms); subscriber's loop held > ${SUBSCRIBER_HOLD_MS} ms ${r.subscriberLag.holds} times (worst ${f1(r.subscriberLag.worstMs)} ms)`;
  /** The bench's own lag in a paced run: the publisher's late sends and the subscriber's holds, each with its worst in ms. */
  const benchLag = (r: PacedRow) => `${r.publisher.lateOver1Ms}, ${r.publisher.lateOver5Ms} (${f1(r.publisher.worstLateMs)}); ${r.subscriberLag.holds} (${f1(r.subscriberLag.worstMs)})`;
  /** The 1 -> 1 and 1 -> 10 bursts of one path. */
  async function bothBursts(t: Transport) {
    const short = t.name.split(" ")[0];
    phase(`${short} 1 -> 1`);
    let one = await burst(t, 1, BURST);
    // A reference that did not arrive whole measured a broker dropping messages, not its rate: run it again.
    for (let retry = 1; retry <= REFERENCE_RETRIES && !one.ok && t === all[2]; retry++) {
      console.error(`${t.name}: 1 -> 1 NOT whole at ${f0(one.rate)} msg/s; running it again (${retry} of ${REFERENCE_RETRIES})`);
      one = await burst(t, 1, BURST);
    }
    console.error(`${t.name}: 1 -> 1 ${f0(one.rate)} msg/s${one.ok ? "" : " (NOT whole)"}; CPU us per message: ${one.cpu}`);
    cpus.push(`${short}: ${one.cpu}`);
    phase(`${short} 1 -> 10`);
    const ten = await burst(t, 10, FANOUT_BURST);
    console.error(`${t.name}: 1 -> 10 ${f0(ten.rate)} msg/s${ten.ok ? "" : " (NOT whole)"}`);
    return [one, ten] as const;
  }
  for (const t of transports) {
    const short = t.name.split(" ")[0];
    phase(`${short} warm-up`);
    if (WARMUP > 0) await burst(t, 1, WARMUP);
    const bursts = latencyOnly ? null : await bothBursts(t);
    phase(`${short} 1,000 msg/s`);
    const slow = await paced(t, 1_000);
    console.error(`${t.name}: at 1,000 msg/s ${pacedLine(slow)}`);
    phase(`${short} 10,000 msg/s`);
    const fast = await paced(t, 10_000);
    console.error(`${t.name}: at 10,000 msg/s ${pacedLine(fast)}`);
    const [one, ten] = bursts ?? [{ rate: Number.NaN, ok: true }, { rate: Number.NaN, ok: true }];
    if (bursts && one.ok) rates.set(t.name, one.rate);
    const ok = one.ok && ten.ok && slow.ok && fast.ok ? "yes" : "NO";
    rows.push(`| ${t.name} | ${f0(one.rate)} | ${f0(ten.rate)} (${f0(ten.rate * 10)} deliveries/s) | ${f1(slow.p50)} / ${f1(slow.p99)} | ${f1(fast.p50)} / ${f1(fast.p99)} | ${benchLag(slow)} / ${benchLag(fast)} | ${ok} |`);
    console.error(rows.at(-1));
  }
  // The command-line burst (understudy pub -> understudy sub against mosquitto_pub -l -> mosquitto_sub).
  let cliLine = "";
  if (!only || only.includes("cli")) {
    const sides = [
      ["understudy pub -> client -> main -> client -> understudy sub", understudySide(bin, at(ps), at(pp), keyFile)],
      ["mosquitto_pub -l -> mosquitto -> mosquitto_sub", mosquittoSide(mosq)],
    ] as const;
    const results: CliBurstResult[] = [];
    for (const [name, side] of sides) {
      phase(`cli ${name.split(" ")[0]}`);
      let result = await cliBurst(side, BURST, WORKLOAD_MS);
      // As for the other bursts: a reference that did not arrive whole measured drops, not a rate.
      for (let retry = 1; retry <= REFERENCE_RETRIES && !result.ok && side === sides[1][1]; retry++) {
        console.error(`${name}: NOT whole (${result.lines} of ${BURST} lines); running it again (${retry} of ${REFERENCE_RETRIES})`);
        result = await cliBurst(side, BURST, WORKLOAD_MS);
      }
      console.error(`${name}: ${BURST.toLocaleString("en")} messages in ${f0(result.ms)} ms${result.ok ? "" : ` (NOT whole: ${result.lines} lines)`}`);
      results.push(result);
    }
    const [ours, theirs] = results as [CliBurstResult, CliBurstResult];
    const rate = (r: CliBurstResult) => (r.ok ? (BURST * 1000) / r.ms : undefined);
    cliLine = `Command-line burst of ${BURST.toLocaleString("en")} (from starting the publishing command to the last line the subscribing command printed): understudy ${f0(ours.ms)} ms${ours.ok ? "" : " (NOT whole)"}, mosquitto ${f0(theirs.ms)} ms${theirs.ok ? "" : " (NOT whole)"}; ratio (rate, only where both arrived whole) ${ratio(rate(ours), rate(theirs))}.`;
  }
  phase("end");
  clearInterval(rssSampler);
  const names = [...procs.keys()];
  const peaks = [
    `| workload | ${names.join(" | ")} |`,
    `|---|${names.map(() => "---|").join("")}`,
    ...phasePeaks.slice(0, -1).map(({ phase, peak, anon }) => `| ${phase} | ${names.map((n) => `${f0(peak.get(n) ?? Number.NaN)} / ${f0(anon.get(n) ?? Number.NaN)}`).join(" | ")} |`),
  ];
  const mosquittoRate = rates.get(all[2]!.name);
  const rss = [...procs.entries()].map(([name, p]) => `${name} ${f1(peakRssMiB(p))} MiB`).join(", ");
  console.log(
    [
      `| path | 1 -> 1 burst of ${BURST.toLocaleString("en")}, msg/s | 1 -> 10 burst of ${FANOUT_BURST.toLocaleString("en")}, msg/s | p50 / p99 ms at 1,000 msg/s | p50 / p99 ms at 10,000 msg/s | bench lag at 1,000 / 10,000 msg/s: publisher's sends late > 1 ms, > 5 ms (worst ms); subscriber's loop held > ${SUBSCRIBER_HOLD_MS} ms (worst ms) | whole, in order, once |`,
      "|---|---|---|---|---|---|---|",
      ...rows,
      "",
      ...(latencyOnly
        ? []
        : [
            `Ratio to mosquitto (1 -> 1 burst, only where both arrived whole): sealed ${ratio(rates.get(sealed.name), mosquittoRate)}, node MQTT ${ratio(rates.get(all[1]!.name), mosquittoRate)}.`,
            `CPU microseconds per message in the 1 -> 1 burst (user + system, by process, net of its idle CPU: ${idle} ms/s; less load-dependent than the rates): ${cpus.join("; ")}.`,
          ]),
      ...(cliLine ? [cliLine] : []),
      `Peak RSS: ${rss}.`,
      "",
      "Highest RSS / anonymous RSS (MiB) of each process during each workload, sampled every 100 ms (RSS also counts the executable's mapped pages, shared by the nodes):",
      "",
      ...peaks,
    ].join("\n"),
  );
} finally {
  clearInterval(rssSampler);
  // A profile is written when the process exits by itself.
  for (const p of procs.values()) p.kill(CPU_PROF ? "SIGTERM" : "SIGKILL");
  await Promise.all([...procs.values()].map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
}
