/**
 * Key-less handshake flood (hostile-network issue, finding 1): a real main and
 * backup on loopback (defaults: heartbeat 100 ms, timeout 1000 ms); another
 * process opens FLOOD_RATE (2,000) connections a second for FLOOD_SECONDS (10)
 * to the main's peer port, each upgrade carrying the key's fingerprint and a
 * guessed proof (it has no key, so the upgrade is refused: no socket).
 * Reports failovers (epoch changes), the main's heartbeat send jitter (the
 * spacing of the heartbeats it sends a probe client, by its own clock, against
 * the interval) before and during the flood, the main's RSS growth, and its log lines.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { HeartbeatCodec, newBootId, type Heartbeat } from "../../src/net/heartbeat.ts";
import { freePeerPort } from "../support/cluster.ts";
import { executable } from "../support/executable.ts";
import { benchFolder } from "./bench-folder.ts";

const RATE = Number(process.env.FLOOD_RATE ?? 2000);
const SECONDS = Number(process.env.FLOOD_SECONDS ?? 10);
const HEARTBEAT_MS = 100;
const BASELINE_MS = 3000;

const bin = await executable();
const { dir, keyFile, licFile } = benchFolder(bin, "understudy-flood-");
const networkKey = parseNetworkKey(readFileSync(keyFile, "utf8"), keyFile);

async function waitFor(probe: () => Promise<boolean>, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await probe().catch(() => false)) return;
    await Bun.sleep(50);
  }
  throw new Error("timed out");
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line?.replace(/\D+/g, "") ?? 0) / 1024;
}

type Status = { id: string; chip: string; networkKeyFingerprint: string; failover: { epoch: number; activeEpoch: number | null; state: string } };
const status = async (ui: number) => (await (await fetch(`http://127.0.0.1:${ui}/api/status`)).json()) as Status;

const procs: Subprocess[] = [];
const mainLog: string[] = [];
try {
  const [pm, pb, um, ub] = await Promise.all([freePeerPort(), freePeerPort(), freePeerPort(), freePeerPort()]);
  const machine = (role: string, peer: number, ui: number, extra: string[]) => {
    const data = mkdtempSync(join(dir, `${role}-`));
    const p = Bun.spawn([bin, "run", "--role", role, "--data", data, "--key", keyFile, "--license", licFile, "--discovery", "off", "--log", "json", "--peer-listen", `127.0.0.1:${peer}`, "--ui-listen", `127.0.0.1:${ui}`, ...extra], { stdout: "pipe", stderr: "ignore" });
    procs.push(p);
    return p;
  };
  const main = machine("main", pm, um, ["--backup", `127.0.0.1:${pb}`]);
  machine("backup", pb, ub, ["--main", `127.0.0.1:${pm}`]);
  void (async () => {
    for await (const chunk of main.stdout) mainLog.push(...new TextDecoder().decode(chunk).split("\n").filter(Boolean));
  })();
  await waitFor(async () => (await status(ub)).chip === "Backup is idle", 20_000);
  const mainStatus = await status(um);
  const epochsBefore = [(await status(um)).failover.epoch, (await status(ub)).failover.epoch];

  // A probe client with the key: it heartbeats the main, which heartbeats back; the main's sentAt spacing is its send jitter.
  const codec = new HeartbeatCodec(networkKey);
  const arrivals: { at: number; sentAt: number }[] = [];
  let lastStamp: Heartbeat["echo"] = null;
  const probe = await Bun.udpSocket({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(_socket, data) {
        try {
          const hb = codec.decode(new Uint8Array(data), "main");
          if (hb.id === mainStatus.id) {
            arrivals.push({ at: performance.now(), sentAt: hb.stamp.sentAt });
            lastStamp = hb.stamp; // echoed back, so the main counts the probe as a live client
          }
        } catch {
          // not a heartbeat from the main
        }
      },
    },
  });
  const bootId = newBootId();
  let seq = 0;
  const beat = setInterval(() => {
    const hb: Heartbeat = {
      id: "f100d0000000beef", role: "client", state: "follow-main", epoch: epochsBefore[0]!, activeEpoch: epochsBefore[0]!,
      stamp: { boot: bootId, seq: ++seq, sentAt: performance.now() }, echo: lastStamp, echoHeldMs: null, challenge: false, showFileRevision: 0,
      msSinceHeardMain: 0, msSinceHeardBackup: null, condition: null, syncProgress: null, pairedWith: null, lanes: null, hubCopied: null, name: "flood-probe",
    };
    probe.send(codec.encode(hb), pm, "127.0.0.1");
  }, HEARTBEAT_MS);

  await Bun.sleep(BASELINE_MS);
  const rssBefore = rssMiB(main.pid);
  const logBefore = mainLog.length;
  const floodStart = performance.now();
  let rssMax = rssBefore;
  const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, rssMiB(main.pid))), 200);
  const flooder = Bun.spawn([process.execPath, join(import.meta.dir, "flood-client.ts"), `127.0.0.1:${pm}`, mainStatus.networkKeyFingerprint, String(RATE), String(SECONDS)], { stdout: "pipe", stderr: "inherit" });
  procs.push(flooder);
  const floodReport = JSON.parse(await new Response(flooder.stdout).text()) as Record<string, number>;
  const floodEnd = performance.now();
  clearInterval(rssTimer);
  await Bun.sleep(2000);
  clearInterval(beat);
  probe.close();
  const epochsAfter = [(await status(um)).failover.epoch, (await status(ub)).failover.epoch];
  const failovers = Math.max(0, epochsAfter[1]! - epochsBefore[1]!, epochsAfter[0]! - epochsBefore[0]!);

  const jitter = (from: number, to: number) => {
    const window = arrivals.filter((a) => a.at >= from && a.at <= to);
    const deviations = window.slice(1).map((a, i) => Math.abs(a.sentAt - window[i]!.sentAt - HEARTBEAT_MS)).sort((x, y) => x - y);
    const at = (q: number) => deviations[Math.max(0, Math.ceil(q * deviations.length) - 1)] ?? Number.NaN;
    return { n: deviations.length, p50: at(0.5), p99: at(0.99), max: deviations.at(-1) ?? Number.NaN };
  };
  const base = jitter(floodStart - BASELINE_MS, floodStart);
  const during = jitter(floodStart, floodEnd);
  const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "-");
  const mainLines = mainLog.slice(logBefore);
  console.log(
    [
      `Key-less flood: ${RATE} upgrades/s for ${SECONDS} s at the main's peer port (main and backup on loopback, heartbeat ${HEARTBEAT_MS} ms, timeout 1000 ms)`,
      "",
      "| measure | before the flood | during the flood |",
      "|---|---|---|",
      `| heartbeats the main sent the probe | ${base.n + 1} | ${during.n + 1} |`,
      `| send jitter p50 / p99 / max ms | ${f1(base.p50)} / ${f1(base.p99)} / ${f1(base.max)} | ${f1(during.p50)} / ${f1(during.p99)} / ${f1(during.max)} |`,
      `| main RSS MiB | ${rssBefore.toFixed(0)} | max ${rssMax.toFixed(0)} (+${(rssMax - rssBefore).toFixed(0)}) |`,
      "",
      "| failovers (epoch changes) | connections tried | refused before the upgrade | upgraded | answered | main log lines during the flood |",
      "|---|---|---|---|---|---|",
      `| ${failovers} (epochs ${epochsBefore.join("/")} → ${epochsAfter.join("/")}) | ${floodReport.attempted} | ${floodReport.refusedBeforeOpen} | ${floodReport.opened} | ${floodReport.answered} | ${mainLines.length} |`,
    ].join("\n"),
  );
  for (const line of mainLines.slice(0, 5)) console.error(`main: ${line}`);
} finally {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
}
