/**
 * `bun run bench false-failover`: no fault at all. One main, one backup, two clients (real
 * executables on loopback, `--discovery off`) at the fast preset (heartbeat 50 ms, timeout
 * 250 ms), a publisher on client A every 5 ms and a subscriber on client C, for DURATION_S (default
 * 120) while BUSY=n processes spin beside them. Every takeover the backup makes here is a false
 * failover: its /api/status is polled every 50 ms, and any epoch change or `active` state counts,
 * as do the servers' own "takes over" and stall log lines. TRANSFER_MB (default 1024, 0 for none)
 * is an asset client A puts to the main, 5 s into the run, while heartbeats must keep time: the
 * main stores and hashes it and copies it to the backup. Lost: messages the publisher had
 * acknowledged (it exits 0 once all were) that the subscriber never printed.
 */
import { randomFillSync } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePeerPort } from "../support/cluster.ts";
import { executable } from "../support/executable.ts";
import { eachLine } from "../support/stream-lines.ts";
import { BUSY, loadAverage, startBusy } from "./busy.ts";
import { benchFolder } from "./bench-folder.ts";

const SECONDS = Number(process.env.DURATION_S ?? 120);
const TRANSFER_MB = Number(process.env.TRANSFER_MB ?? 1024);
const INTERVAL_MS = 5;
const FLAGS = ["--heartbeat-ms", "50", "--failover-timeout-ms", "250"];
const bin = process.env.BIN ?? (await executable());
const { dir, keyFile, licFile } = benchFolder(bin, "understudy-bench-quiet-");
const assetFile = join(dir, "transfer.bin");
if (TRANSFER_MB > 0) {
  // Random, so no chunk is already stored; written a MiB at a time.
  const fd = openSync(assetFile, "w");
  const mib = Buffer.alloc(1 << 20);
  for (let i = 0; i < TRANSFER_MB; i++) writeSync(fd, randomFillSync(mib));
  closeSync(fd);
}

const [pm, pb, pa, pc, um, ub, ua, uc] = await Promise.all(Array.from({ length: 8 }, () => freePeerPort()));
const procs: Subprocess[] = [];
const lines: { who: string; line: string }[] = [];
const machine = (role: string, peer: number, ui: number, extra: string[], who = role) => {
  const data = mkdtempSync(join(dir, `${role}-`));
  const p = Bun.spawn([bin, "run", "--role", role, "--data", data, "--key", keyFile, "--license", licFile, "--discovery", "off", "--mqtt-listen", "off", "--log", "json", "--peer-listen", `127.0.0.1:${peer}`, "--ui-listen", `127.0.0.1:${ui}`, ...FLAGS, ...extra], { stdout: "pipe", stderr: "ignore" });
  void eachLine(p.stdout, (line) => void lines.push({ who, line })).catch(() => {});
  procs.push(p);
};
type Status = { chip: string; failover: { state: string; epoch: number; hubConnected: boolean } };
const status = async (ui: number) => (await (await fetch(`http://127.0.0.1:${ui}/api/status`)).json()) as Status;

const stopBusy = startBusy();
try {
  machine("main", pm!, um!, ["--backup", `127.0.0.1:${pb}`]);
  machine("backup", pb!, ub!, ["--main", `127.0.0.1:${pm}`]);
  const servers = ["--main", `127.0.0.1:${pm}`, "--backup", `127.0.0.1:${pb}`];
  machine("client", pa!, ua!, servers, "client a");
  machine("client", pc!, uc!, servers, "client c");
  for (const end = performance.now() + 60_000; ; await Bun.sleep(100)) {
    const ready = await Promise.all([ua!, uc!, ub!].map(status)).then((s) => s.every((x) => x.chip === "Backup is idle" && x.failover.hubConnected), () => false);
    if (ready) break;
    if (performance.now() > end) throw new Error("the machines did not get ready in 60 s");
  }
  const loadBefore = await loadAverage();
  const startedAt = new Date().toISOString();
  const count = Math.round((SECONDS * 1000) / INTERVAL_MS);
  const sub = Bun.spawn([bin, "sub", "bench/#", "--node", `127.0.0.1:${pc}`, "--key", keyFile, "--timeout-ms", String(SECONDS * 1000 + 60_000)], { stdout: "pipe", stderr: "pipe" });
  const said: string[] = [];
  const seqs = new Set<number>();
  let warm = false;
  void eachLine(sub.stdout, (line) => {
    if (line.includes('"topic":"bench/warm"')) warm = true;
    const seq = Number(/"topic":"bench\/a".*"seq":(\d+)/.exec(line)?.[1]);
    if (Number.isFinite(seq)) seqs.add(seq);
  }).catch(() => {});
  void eachLine(sub.stderr, (line) => void said.push(line)).catch(() => {});
  // Counted only once the subscription is in place: a warm-up message must reach the subscriber first.
  for (const end = performance.now() + 30_000; !warm; ) {
    if (performance.now() > end) throw new Error("the subscriber heard no warm-up message in 30 s");
    await Bun.spawn([bin, "pub", "bench/warm", "{}", "--node", `127.0.0.1:${pa}`, "--key", keyFile], { stdout: "ignore", stderr: "ignore" }).exited;
    await Bun.sleep(200);
  }
  const pub = Bun.spawn([bin, "pub", "bench/a", '{"x":1}', "--node", `127.0.0.1:${pa}`, "--key", keyFile, "--count", String(count), "--interval-ms", String(INTERVAL_MS)], { stdout: "ignore", stderr: "ignore" });
  procs.push(sub, pub);
  // The transfer: started 5 s in, timed until the command says the backup has it (or fails).
  const transfer = { seconds: null as number | null, error: null as string | null };
  const transferDone =
    TRANSFER_MB > 0
      ? Bun.sleep(5_000).then(async () => {
          const began = performance.now();
          const put = Bun.spawn([bin, "asset", "put", assetFile, "--node", `127.0.0.1:${pa}`, "--key", keyFile], { stdout: "ignore", stderr: "pipe" });
          procs.push(put);
          const [code, err] = await Promise.all([put.exited, new Response(put.stderr).text()]);
          if (code === 0 && err.includes("the backup has it")) transfer.seconds = (performance.now() - began) / 1000;
          else transfer.error = err.trim().split("\n").at(-1) || `exit ${code}`;
        })
      : Promise.resolve();
  const first = await status(ub!);
  let polls = 0;
  let activePolls = 0;
  let epochChanges = 0;
  let lastEpoch = first.failover.epoch;
  for (const end = performance.now() + SECONDS * 1000; performance.now() < end; await Bun.sleep(50)) {
    const s = await status(ub!).catch(() => null);
    if (!s) continue;
    polls++;
    if (s.failover.state === "active") activePolls++;
    if (s.failover.epoch !== lastEpoch) epochChanges++;
    lastEpoch = s.failover.epoch;
  }
  await Promise.race([transferDone, Bun.sleep(1_000)]);
  // The publisher exits 0 once every message was acknowledged; the subscriber once it has them all.
  const published = await Promise.race([pub.exited, Bun.sleep(15_000).then(() => null)]);
  for (const end = performance.now() + 5_000; seqs.size < count && performance.now() < end; ) await Bun.sleep(100);
  const received = seqs.size;
  if (received < count) {
    const missing = Array.from({ length: count }, (_, i) => i + 1).filter((seq) => !seqs.has(seq));
    console.error(`subscriber: ${received} of the counted messages; seqs missing (first 20 of ${missing.length}): ${missing.slice(0, 20).join(", ")}; it said: ${said.slice(-10).join(" | ") || "nothing"}`);
  }
  const lostText = published === 0 ? String(count - received) : `publisher ${published === null ? "still running" : `exit ${published}`}, ${received} of ${count} received`;
  const transferText = TRANSFER_MB === 0 ? "none" : transfer.seconds !== null ? `${TRANSFER_MB} MiB in ${transfer.seconds.toFixed(1)} s` : `${TRANSFER_MB} MiB: ${transfer.error ?? "not done within the run"}`;
  const takeoverLines = lines.filter((l) => l.line.includes("takes over"));
  const takeovers = takeoverLines.length;
  const stalls = lines.filter((l) => l.line.includes("stalled for"));
  const stallOf = (line: string) => Number(/stalled for ([\d.]+) ms/.exec(line)?.[1] ?? 0);
  const worstStall = Math.round(Math.max(0, ...stalls.map((l) => stallOf(l.line))));
  // Each takeover with what the main said just before it: a main stalled past the timeout is silent, as a frozen one is.
  const wall = (line: string) => Date.parse((/"time":"([^"]+)"/.exec(line) ?? [])[1] ?? "");
  for (const t of takeoverLines) {
    const at = wall(t.line);
    const mainStalls = stalls.filter((l) => l.who === "main" && wall(l.line) <= at + 1000 && wall(l.line) >= at - 2000).map((l) => `${Math.round(stallOf(l.line))} ms at ${wall(l.line) - at} ms`);
    console.error(`takeover at ${new Date(at).toISOString()}; the main's stall warnings from 2 s before to 1 s after it (logged when it runs again): ${mainStalls.join(", ") || "none"}`);
  }
  console.log(`${startedAt}, ${SECONDS} s, fast preset, BUSY=${BUSY}, load average ${loadBefore} at the start, ${await loadAverage()} at the end`);
  console.log("| seconds | asset put during the run | backup polls | polls `active` | epoch changes | \"takes over\" lines | stall warnings (all machines) | longest stall ms | messages lost |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  console.log(`| ${SECONDS} | ${transferText} | ${polls} | ${activePolls} | ${epochChanges} | ${takeovers} | ${stalls.length} | ${worstStall} | ${lostText} |`);
} finally {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  await stopBusy();
  rmSync(dir, { recursive: true, force: true });
}
