/**
 * Failover benchmark: one main, one backup, two clients (real executables on
 * loopback). A publisher on client A sends every 5 ms, a subscriber on client
 * B listens (the publisher starts once a warm-up message reached it); the main is killed (-9) or frozen (SIGSTOP). The gap is the time
 * from the fault to the first message B receives after its longest silence
 * that began before the backup took over (messages in flight at the fault still
 * arrive; a stall long after the takeover is not the failover's); lost counts acknowledged messages never received (missing ones the publisher was still waiting to have acknowledged are counted apart). TRIALS=n (default 20).
 * BUSY=n: n processes spin on the CPU meanwhile (busy.ts). A trial whose gap exceeds OUTLIER_MS
 * (default 300) prints its timeline: what the backup and the clients logged after the fault.
 * TIMELINE_LINES=n (default 30) lines of it. SUB_STOP=before,after (ms) stops the subscriber's node from before the fault until after it. BIN=path runs that executable instead of building this tree. FAULTS=kill|stop and PRESETS=defaults|fast run only those (default: both of each).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePeerPort } from "../support/cluster.ts";
import { executable } from "../support/executable.ts";
import { eachLine } from "../support/stream-lines.ts";
import { BUSY, loadAverage, startBusy } from "./busy.ts";
import { benchFolder } from "./bench-folder.ts";

const TRIALS = Number(process.env.TRIALS ?? 20);
const MESSAGES = 600;
const INTERVAL_MS = 5;
const OUTLIER_MS = Number(process.env.OUTLIER_MS ?? 300);
const TIMELINE_LINES = Number(process.env.TIMELINE_LINES ?? 30);
// SUB_STOP=a,b: the subscriber's node is stopped a ms before the fault and resumed b ms after (a subscriber stalled across the failover).
const SUB_STOP = (([a, b]) => (a && b ? { before: Number(a), after: Number(b) } : null))((process.env.SUB_STOP ?? "").split(","));
// BIN=path runs that executable (e.g. one built from another commit, for a before/after under the same load).
const bin = process.env.BIN ?? (await executable());
const { dir, keyFile, licFile } = benchFolder(bin, "understudy-bench-");


async function waitFor(probe: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await Promise.resolve().then(probe).catch(() => false)) return;
    await Bun.sleep(20);
  }
  throw new Error("timed out");
}

type Preset = { name: string; flags: string[]; settleMs: number };
const PRESETS: Preset[] = [
  { name: "defaults (heartbeat 100 ms, timeout 1000 ms)", flags: [], settleMs: 2500 },
  { name: "fast (heartbeat 50 ms, timeout 250 ms)", flags: ["--heartbeat-ms", "50", "--failover-timeout-ms", "250"], settleMs: 1200 },
];

async function trial(fault: "kill" | "stop", preset: Preset): Promise<{ gapMs: number; lost: number; unacked: number; repeats: number }> {
  const [pm, pb, pa, pc, um, ub, ua, uc] = (await Promise.all(Array.from({ length: 8 }, () => freePeerPort()))) as [number, number, number, number, number, number, number, number];
  const procs: Subprocess[] = [];
  // What the machines logged, with when the bench read it, for the timeline of an outlier.
  const logs: { at: number; who: string; line: string }[] = [];
  const machine = (role: string, peer: number, ui: number, extra: string[], who = role) => {
    const data = mkdtempSync(join(dir, `${role}-`));
    const p = Bun.spawn([bin, "run", "--role", role, "--data", data, "--key", keyFile, "--license", licFile, "--discovery", "off", "--mqtt-listen", "off", "--log", "json", "--peer-listen", `127.0.0.1:${peer}`, "--ui-listen", `127.0.0.1:${ui}`, ...preset.flags, ...extra], { stdout: "pipe", stderr: "ignore" });
    void eachLine(p.stdout, (line) => void logs.push({ at: performance.now(), who, line })).catch(() => {});
    procs.push(p);
    return p;
  };
  try {
    const main = machine("main", pm, um, ["--backup", `127.0.0.1:${pb}`]);
    machine("backup", pb, ub, ["--main", `127.0.0.1:${pm}`]);
    const servers = ["--main", `127.0.0.1:${pm}`, "--backup", `127.0.0.1:${pb}`];
    machine("client", pa, ua, servers, "client a");
    const clientC = machine("client", pc, uc, servers, "client c");
    const chip = async (ui: number) => ((await (await fetch(`http://127.0.0.1:${ui}/api/status`)).json()) as { chip: string; failover: { hubConnected: boolean } });
    await waitFor(async () => (await Promise.all([ua, uc, ub].map(chip))).every((s) => s.chip === "Backup is idle" && s.failover.hubConnected), 60_000);

    const received = new Map<number, number>();
    // Repeats are counted, not just skipped: `sub --count` counts every line, so each repeat the subscriber's
    // node let through would end it one message early and show as a missing one.
    let repeats = 0;
    let allIn: () => void = () => {};
    const complete = new Promise<void>((resolve) => (allIn = resolve));
    const sub = Bun.spawn([bin, "sub", "bench/#", "--node", `127.0.0.1:${pc}`, "--key", keyFile, "--timeout-ms", "30000"], { stdout: "pipe", stderr: "pipe" });
    procs.push(sub);
    let warm = false;
    const reading = eachLine(sub.stdout, (line) => {
      const { topic, seq } = JSON.parse(line) as { topic: string; seq: number };
      if (topic === "bench/warm") return void (warm = true);
      if (received.has(seq)) repeats++;
      else received.set(seq, performance.now());
      if (received.size >= MESSAGES) allIn();
    });
    // The publisher starts only once the subscription is in place: a warm-up message must reach the subscriber first.
    // (A fixed 300 ms head start was not always enough on a loaded machine, and what was published before the subscriber's
    // node had subscribed is owed to no one: it was counted as lost.)
    for (const end = performance.now() + 30_000; !warm; await Bun.sleep(100)) {
      if (performance.now() > end) throw new Error("the subscriber heard no warm-up message in 30 s");
      await Bun.spawn([bin, "pub", "bench/warm", "{}", "--node", `127.0.0.1:${pa}`, "--key", keyFile], { stdout: "ignore", stderr: "ignore" }).exited;
    }
    const pub = Bun.spawn([bin, "pub", "bench/a", '{"x":1}', "--node", `127.0.0.1:${pa}`, "--key", keyFile, "--count", String(MESSAGES), "--interval-ms", String(INTERVAL_MS)], { stdout: "ignore", stderr: "pipe" });
    procs.push(pub);
    await waitFor(() => received.size >= 100, 10_000);
    if (SUB_STOP) {
      clientC.kill("SIGSTOP");
      await Bun.sleep(SUB_STOP.before);
    }
    const faultAt = performance.now();
    const faultWall = Date.now();
    main.kill(fault === "kill" ? "SIGKILL" : "SIGSTOP");
    if (SUB_STOP) {
      await Bun.sleep(SUB_STOP.after);
      clientC.kill("SIGCONT");
    }
    await Promise.race([complete, reading, Bun.sleep(30_000)]);
    // Messages already in flight still arrive just after the fault; the outage ends with the
    // first message after the longest silence the subscriber saw once the fault happened, among the
    // silences that began before the backup took over (its own log's clock). A silence that begins
    // later is not the failover's: at load 27 one trial was covered at +244 ms and then went quiet
    // for 1.1 s (895 → 1994 ms), which the longest silence alone reported as a 1994 ms failover.
    const takeover = logs.find((l) => l.who === "backup" && l.at >= faultAt && l.line.includes("the backup takes over"));
    const takeoverWall = takeover ? Date.parse((/"time":"([^"]+)"/.exec(takeover.line) ?? [])[1] ?? "") : Number.NaN;
    const takeoverAt = Number.isFinite(takeoverWall) ? faultAt + (takeoverWall - faultWall) : Number.POSITIVE_INFINITY;
    const times = [...received.values()].sort((a, b) => a - b);
    const outage = (beganBefore: number) => {
      let resumedAt = Number.NaN;
      let longest = -1;
      for (let i = 1; i < times.length; i++) {
        if (times[i]! <= faultAt) continue;
        const began = Math.max(times[i - 1]!, faultAt);
        if (began >= beganBefore) break;
        const silence = times[i]! - began;
        if (silence > longest) {
          longest = silence;
          resumedAt = times[i]!;
        }
      }
      return resumedAt - faultAt;
    };
    const longestAnywhere = outage(Number.POSITIVE_INFINITY);
    const gapMs = Number.isFinite(outage(takeoverAt)) ? outage(takeoverAt) : longestAnywhere;
    // A takeover before the fault is a false failover (a main stalled past the timeout): the trial then measures nothing.
    const early = logs.filter((l) => l.who === "backup" && l.at < faultAt && l.line.includes("the backup takes over"));
    if (early.length > 0) console.error(`false failover: ${fault} ${preset.name}: the backup took over ${early.length}× before the fault, the first ${(faultAt - early[0]!.at).toFixed(0)} ms before it (load ${await loadAverage()})`);
    if (gapMs > OUTLIER_MS) {
      console.error(`outlier: ${fault} ${preset.name}: ${gapMs.toFixed(0)} ms (longest silence after the fault: ${longestAnywhere.toFixed(0)} ms; load ${await loadAverage()}); logged since the fault:`);
      const since = logs.filter((l) => l.at >= faultAt - 50);
      // Stalls are counted, not listed: on a loaded machine they come every few ticks.
      const stalls = since.filter((l) => l.line.includes("stalled for"));
      // The subscriber's side: when the first message after the fault came, and every silence over 100 ms after it.
      const after = times.filter((t) => t > faultAt);
      const silences = after.flatMap((t, i) => (i > 0 && t - after[i - 1]! > 100 ? [`${(after[i - 1]! - faultAt).toFixed(0)}→${(t - faultAt).toFixed(0)}`] : []));
      console.error(`  subscriber: first message after the fault at +${after.length > 0 ? (after[0]! - faultAt).toFixed(0) : "-"} ms, ${after.length} after it; silences over 100 ms (ms after the fault): ${silences.join(", ") || "none"}`);
      console.error(`  ${stalls.length} stall warnings meanwhile, the first at +${stalls.length > 0 ? (stalls[0]!.at - faultAt).toFixed(0) : "-"} ms`);
      // Read by the bench at +N ms; the process's own clock said +M (the bench's reading lags on a loaded machine).
      const own = (line: string) => {
        const t = Date.parse((/"time":"([^"]+)"/.exec(line) ?? [])[1] ?? "");
        return Number.isFinite(t) ? ` (own +${t - faultWall})` : "";
      };
      for (const l of since.filter((l) => !stalls.includes(l)).slice(0, TIMELINE_LINES)) console.error(`  +${(l.at - faultAt).toFixed(0)} ms${own(l.line)} ${l.who}: ${l.line.slice(0, 200)}`);
    }
    if (fault === "stop") main.kill("SIGCONT");
    // The publisher exits 0 only once every message was acknowledged: then anything missing was lost.
    const pubCode = await Promise.race([pub.exited, Bun.sleep(5_000).then(() => null)]);
    if (pubCode !== 0) console.error(`publisher ${pubCode === null ? "still running" : `exited ${pubCode}`}: ${pubCode === null ? "" : (await new Response(pub.stderr).text()).trim()}`);
    // Missing while the publisher still waited for acknowledgements is not a loss: it never had them.
    const missing = MESSAGES - received.size;
    if (missing > 0 || repeats > 0) {
      const absent = Array.from({ length: MESSAGES }, (_, i) => i + 1).filter((seq) => !received.has(seq));
      sub.kill("SIGKILL");
      const subErr = (await new Response(sub.stderr).text()).trim();
      console.error(`${fault} ${preset.name}: ${missing} missing (publisher ${pubCode === 0 ? "acknowledged all" : `exited ${pubCode}`}), ${repeats} repeats; missing seqs: ${ranges(absent)}; subscriber said: ${subErr.slice(0, 300) || "nothing"} (load ${await loadAverage()})`);
    }
    return { gapMs, lost: pubCode === 0 ? missing : 0, unacked: pubCode === 0 ? 0 : missing, repeats };
  } finally {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
  }
}

/** 3,4,5,9 → "3–5, 9". */
function ranges(seqs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < seqs.length; ) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j]! + 1) j++;
    out.push(i === j ? `${seqs[i]}` : `${seqs[i]}–${seqs[j]}`);
    i = j + 1;
  }
  return out.join(", ") || "none";
}

function stats(values: number[]) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  // Nearest-rank percentile: the smallest value with at least q of the samples at or below it.
  const at = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  return { min: sorted[0] ?? Number.NaN, median: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] ?? Number.NaN };
}

const rows: string[] = [];
const stopBusy = startBusy();
const loadBefore = await loadAverage();
const only = (env: string | undefined, name: string) => env === undefined || env.split(",").some((n) => name.startsWith(n));
for (const preset of PRESETS.filter((p) => only(process.env.PRESETS, p.name))) {
  for (const fault of (["kill", "stop"] as const).filter((f) => only(process.env.FAULTS, f))) {
    const results = [];
    for (let i = 0; i < TRIALS; i++) results.push(await trial(fault, preset));
    const s = stats(results.map((r) => r.gapMs));
    const lost = results.reduce((n, r) => n + r.lost, 0);
    const unacked = results.reduce((n, r) => n + r.unacked, 0);
    const repeats = results.reduce((n, r) => n + r.repeats, 0);
    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : "-");
    rows.push(`| ${fault === "kill" ? "kill -9" : "SIGSTOP"} | ${preset.name} | ${TRIALS} | ${f(s.min)} | ${f(s.median)} | ${f(s.p95)} | ${f(s.max)} | ${lost} | ${unacked} | ${repeats} |`);
    console.error(rows[rows.length - 1]);
  }
}
await stopBusy();
rmSync(dir, { recursive: true, force: true });
console.log(`${new Date().toISOString()}, BUSY=${BUSY}, TRIALS=${TRIALS}, load average ${loadBefore} at the start, ${await loadAverage()} at the end`);
console.log(["| fault | preset | trials | min ms | median ms | p95 ms | max ms | lost | missing, not acknowledged | repeats |", "|---|---|---|---|---|---|---|---|---|---|", ...rows].join("\n"));
