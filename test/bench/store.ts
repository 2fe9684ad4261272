/**
 * Store benchmark: a main, its backup and two clients (real executables on loopback,
 * product timing: heartbeats every 100 ms), side by side with plain copies on the same disk:
 *
 * 1. Replication lag: PUSHES pushes (default 1000) of a 10 KB file at 100/s, each
 *    acknowledged only after the backup applied it.
 * 2. A show folder of SHOW_FILES files (default 1000) totalling SHOW_MB MiB (default 1024):
 *    `cp -r` + `sync`; `understudy push` from client a (until the backup holds it);
 *    `understudy pull` into an empty folder on client b.
 * 3. An asset of ASSET_MB MiB (default 1024): `cp` + `sync`; `understudy asset put` to the
 *    main until the backup holds it too.
 *
 * For each transfer: CPU seconds per GiB of the client (command, plus its node when it goes
 * through one), the main and the backup, and of the main's event-loop thread alone (what holds
 * up its heartbeats; work moved to a worker thread still counts in the main's); and the longest heartbeat silence each server saw
 * from the other meanwhile (minus the 100 ms interval: an upper bound on send jitter).
 * Every run starts from a cold page cache when we may drop it (root). BUSY=n: n processes spin on
 * the CPU meanwhile (busy.ts); the load average is printed with the tables.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import nacl from "tweetnacl";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { connectSecure } from "../../src/net/secure-socket.ts";
import { ShowFileClient } from "../../src/services/show-file-client.ts";
import { pushResult } from "../../src/services/show-file-protocol.ts";
import { Cluster, DEFAULTS } from "../support/cluster.ts";
import { tempDir } from "../support/machine-process.ts";
import { removeTempDirs } from "../support/temp-dirs.ts";
import { BUSY, loadAverage, startBusy } from "./busy.ts";
import { commandCpuSeconds, cpuSeconds, HeartbeatGaps } from "./process-meter.ts";

const PUSHES = Number(process.env.PUSHES ?? 1000);
const SHOW_FILES = Number(process.env.SHOW_FILES ?? 1000);
const SHOW_MB = Number(process.env.SHOW_MB ?? 1024);
const ASSET_MB = Number(process.env.ASSET_MB ?? 1024);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** User + system CPU seconds of a process's first thread (its JavaScript event loop), from /proc (Linux). */
function eventLoopCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const cluster = await Cluster.start({ ...DEFAULTS, clients: ["a", "b"] });
const stopBusy = startBusy();
const loadAtStart = await loadAverage();
const c = cluster;
const work = tempDir("understudy-bench-store-");

function dropCaches(): void {
  Bun.spawnSync(["sync"]);
  if (process.getuid?.() === 0) Bun.spawnSync(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"]);
}

function timed(command: string[]): number {
  const t0 = performance.now();
  const r = Bun.spawnSync(command);
  if (r.exitCode !== 0) throw new Error(`${command.join(" ")} failed: ${r.stderr.toString()}`);
  return (performance.now() - t0) / 1000;
}

type Transfer = { name: string; mib: number; files: number; seconds: number; reference: number; cpu: Record<"client" | "main" | "mainLoop" | "backup", number>; gaps: Map<string, number> };
const transfers: Transfer[] = [];
const references: { name: string; mib: number; files: number; seconds: number }[] = [];

/** Runs an understudy command, measuring wall time until `done` says the backup has it, CPU per process and heartbeat gaps. */
async function transfer(name: string, mib: number, files: number, reference: number, args: string[], viaNode: string | null, done: () => Promise<void> = async () => {}): Promise<void> {
  dropCaches();
  const pids = { main: c.machine("main").proc.pid, backup: c.machine("backup").proc.pid, node: viaNode ? c.machine(viaNode).proc.pid : null };
  const before = { main: cpuSeconds(pids.main), mainLoop: eventLoopCpuSeconds(pids.main), backup: cpuSeconds(pids.backup), node: pids.node ? cpuSeconds(pids.node) : 0 };
  const gaps = new HeartbeatGaps([
    { ui: c.machine("backup").ui, from: "main", label: "main → backup" },
    { ui: c.machine("main").ui, from: "backup", label: "backup → main" },
  ]);
  const t0 = performance.now();
  const proc = c.spawnCommand(args);
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`understudy ${args.join(" ")} failed: ${err}`);
  await done();
  const seconds = (performance.now() - t0) / 1000;
  const longest = await gaps.stop();
  const perGiB = (s: number) => s / ((mib * MiB) / GiB);
  transfers.push({
    name,
    mib,
    files,
    seconds,
    reference,
    gaps: longest,
    cpu: {
      client: perGiB(commandCpuSeconds(proc) + (pids.node ? cpuSeconds(pids.node) - before.node : 0)),
      main: perGiB(cpuSeconds(pids.main) - before.main),
      mainLoop: perGiB(eventLoopCpuSeconds(pids.main) - before.mainLoop),
      backup: perGiB(cpuSeconds(pids.backup) - before.backup),
    },
  });
}

async function backupInSync(): Promise<void> {
  await c.waitStatus("main", "the backup in sync", (s) => s.showFile?.backup.state === "in-sync", 600_000);
}

try {
  await c.waitAll("everyone linked", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 30_000 });

  // 1. Replication lag of small pushes.
  const networkKey = parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile);
  const client = new ShowFileClient();
  client.attach(await connectSecure(c.address("main"), "/files", { networkKey, machine: nacl.sign.keyPair() }, () => client.events()));
  const latencies: number[] = [];
  let behind = 0;
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < PUSHES; i++) {
    const wait = started + i * 10 - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    const t0 = performance.now();
    const content = nacl.randomBytes(10 * 1024);
    inflight.push(
      client
        .putChunk(content)
        .then(({ hash }) => client.call("push", { base: 0, author: "bench", message: `push ${i}`, changes: [{ path: `lag/${i}.bin`, size: content.length, chunks: [hash] }] }, pushResult))
        .then((r) => {
          latencies.push(performance.now() - t0);
          if (r.replicated !== "backup") behind++;
        }),
    );
  }
  await Promise.all(inflight);
  client.close();
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
  const rate = PUSHES / ((performance.now() - started) / 1000);

  // 2. A show folder: SHOW_FILES random files of varied sizes, SHOW_MB MiB in all.
  const show = join(work, "show");
  const total = SHOW_MB * MiB;
  const sizes: number[] = [];
  for (let i = 0, written = 0; i < SHOW_FILES; i++) {
    const size = i === SHOW_FILES - 1 ? total - written : Math.round((total / SHOW_FILES) * (0.5 + ((i * 7919) % 1000) / 1000));
    sizes.push(size);
    written += size;
  }
  // The last file takes what is left, which can outgrow twice the average when SHOW_FILES is small.
  const buffer = Buffer.alloc(Math.max(...sizes) + 1);
  sizes.forEach((size, i) => {
    mkdirSync(join(show, `scene-${i % 20}`), { recursive: true });
    writeFileSync(join(show, `scene-${i % 20}`, `clip-${i}.bin`), randomFillSync(buffer, 0, size).subarray(0, size));
  });
  dropCaches();
  const copyFolder = timed(["sh", "-c", `cp -r ${show} ${join(work, "show-copy")} && sync`]);
  references.push({ name: "plain copy of the folder (cp -r + sync), same disk", mib: SHOW_MB, files: SHOW_FILES, seconds: copyFolder });
  rmSync(join(work, "show-copy"), { recursive: true, force: true });
  await transfer("show folder push (client a, until the backup holds it)", SHOW_MB, SHOW_FILES, copyFolder, ["push", show, "-m", "bench", "--node", c.peer("a"), "--key", c.keyFile], "a", backupInSync);
  const pulled = join(work, "pulled");
  await transfer("show folder pull into an empty folder (client b)", SHOW_MB, SHOW_FILES, copyFolder, ["pull", pulled, "--node", c.peer("b"), "--key", c.keyFile], "b");
  // The pull also brings the small files of part 1; the show folder's files must all be there.
  const pulledBytes = readdirSync(pulled, { recursive: true })
    .map(String)
    .filter((f) => f.startsWith("scene-") && statSync(join(pulled, f)).isFile())
    .reduce((n, f) => n + statSync(join(pulled, f)).size, 0);
  if (pulledBytes !== total) throw new Error(`the pull wrote ${pulledBytes} bytes of the show folder, not ${total}`);
  rmSync(pulled, { recursive: true, force: true });

  // 3. One asset of ASSET_MB MiB.
  const asset = join(work, "asset.bin");
  {
    const chunk = Buffer.alloc(MiB);
    const writer = Bun.file(asset).writer();
    for (let i = 0; i < ASSET_MB; i++) writer.write(randomFillSync(chunk));
    await writer.end();
  }
  dropCaches();
  const copyFile = timed(["sh", "-c", `cp ${asset} ${join(work, "asset-copy.bin")} && sync`]);
  references.push({ name: "plain copy of the file (cp + sync), same disk", mib: ASSET_MB, files: 1, seconds: copyFile });
  rmSync(join(work, "asset-copy.bin"), { force: true });
  await transfer("asset put to the main, until the backup holds it", ASSET_MB, 1, copyFile, ["asset", "put", asset, "--node", c.address("main"), "--key", c.keyFile], null, backupInSync);

  const mbps = (mib: number, s: number) => ((mib * MiB) / 1e6 / s).toFixed(0);
  console.log(`${new Date().toISOString()}, BUSY=${BUSY}, load average ${loadAtStart} at the start, ${await loadAverage()} at the end`);
  console.log("");
  console.log("| measure | pushes | rate /s | p50 ms | p99 ms | max ms | acknowledged as behind |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(`| push acknowledged after the backup applied it (10 KB) | ${PUSHES} | ${rate.toFixed(0)} | ${at(0.5).toFixed(1)} | ${at(0.99).toFixed(1)} | ${sorted.at(-1)!.toFixed(1)} | ${behind} |`);
  console.log("");
  console.log("| measure | MiB | files | seconds | MB/s | share of the plain copy |");
  console.log("|---|---|---|---|---|---|");
  for (const r of references) console.log(`| ${r.name} | ${r.mib} | ${r.files} | ${r.seconds.toFixed(2)} | ${mbps(r.mib, r.seconds)} | 1 |`);
  for (const t of transfers) console.log(`| ${t.name} | ${t.mib} | ${t.files} | ${t.seconds.toFixed(2)} | ${mbps(t.mib, t.seconds)} | ${(t.reference / t.seconds).toFixed(2)} |`);
  console.log("");
  console.log("| transfer | client CPU s/GiB | main CPU s/GiB | main's event loop CPU s/GiB | backup CPU s/GiB | longest heartbeat silence main → backup, ms | backup → main, ms |");
  console.log("|---|---|---|---|---|---|---|");
  for (const t of transfers) {
    console.log(`| ${t.name} | ${t.cpu.client.toFixed(2)} | ${t.cpu.main.toFixed(2)} | ${t.cpu.mainLoop.toFixed(2)} | ${t.cpu.backup.toFixed(2)} | ${t.gaps.get("main → backup")?.toFixed(0) ?? "–"} | ${t.gaps.get("backup → main")?.toFixed(0) ?? "–"} |`);
  }
} finally {
  await stopBusy();
  await c.shutdown();
  rmSync(work, { recursive: true, force: true });
  rmSync(c.dir, { recursive: true, force: true });
  // The servers' and clients' data folders (gigabytes each run; they once filled the disk).
  removeTempDirs();
}
