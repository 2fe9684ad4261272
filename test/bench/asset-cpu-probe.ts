/**
 * Where a main's CPU goes during one `asset put` (ASSET_MB MiB, default 1024) until the backup
 * holds it: per-thread user + system CPU of the main and the backup from /proc/PID/task, grouped
 * by thread name, and the idle rate of each over IDLE_S seconds before (what the transfer's
 * seconds cost anyway). PERF=1 also records the main with `perf record` (root) into PERF_OUT.
 */
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { randomFillSync } from "node:crypto";
import { Cluster, DEFAULTS } from "../support/cluster.ts";
import { tempDir } from "../support/machine-process.ts";
import { removeTempDirs } from "../support/temp-dirs.ts";

const ASSET_MB = Number(process.env.ASSET_MB ?? 1024);
const IDLE_S = Number(process.env.IDLE_S ?? 5);
const MiB = 1024 * 1024;

type Threads = Map<string, { name: string; cpu: number }>;

function threads(pid: number): Threads {
  const out: Threads = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(tid, { name: tid === String(pid) ? "(event loop)" : name, cpu: (Number(f[11]) + Number(f[12])) / 100 });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

function diff(before: Threads, after: Threads): Map<string, number> {
  const byName = new Map<string, number>();
  for (const [tid, t] of after) byName.set(t.name, (byName.get(t.name) ?? 0) + t.cpu - (before.get(tid)?.cpu ?? 0));
  return byName;
}

function print(label: string, d: Map<string, number>, per: number, unit: string): void {
  const total = [...d.values()].reduce((a, b) => a + b, 0);
  console.log(`${label}: ${(total / per).toFixed(2)} ${unit}`);
  for (const [name, s] of [...d].sort((a, b) => b[1] - a[1])) if (s > 0) console.log(`  ${name.padEnd(20)} ${(s / per).toFixed(2)}`);
}

const c = await Cluster.start({ ...DEFAULTS, clients: [] });
const work = tempDir("understudy-asset-probe-");
try {
  await c.waitAll("linked", (_n, s) => s.chip === "Backup is idle", { timeoutMs: 30_000 });
  const asset = join(work, "asset.bin");
  const chunk = Buffer.alloc(MiB);
  const writer = Bun.file(asset).writer();
  for (let i = 0; i < ASSET_MB; i++) writer.write(randomFillSync(chunk));
  await writer.end();
  const pids = { main: c.machine("main").proc.pid, backup: c.machine("backup").proc.pid };

  const idle0 = { main: threads(pids.main), backup: threads(pids.backup) };
  await Bun.sleep(IDLE_S * 1000);
  print("main idle, CPU-s per s", diff(idle0.main, threads(pids.main)), IDLE_S, "");
  print("backup idle, CPU-s per s", diff(idle0.backup, threads(pids.backup)), IDLE_S, "");

  const perf = process.env.PERF ? Bun.spawn(["perf", "record", "-F", "999", "-g", "-p", String(pids.main), "-o", process.env.PERF_OUT ?? "/tmp/main.perf"], { stdout: "ignore", stderr: "ignore" }) : null;
  const before = { main: threads(pids.main), backup: threads(pids.backup) };
  const t0 = performance.now();
  const proc = c.spawnCommand(["asset", "put", asset, "--node", c.address("main"), "--key", c.keyFile]);
  const [err, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`asset put failed: ${err}`);
  await c.waitStatus("main", "the backup in sync", (s) => s.showFile?.backup.state === "in-sync", 600_000);
  const seconds = (performance.now() - t0) / 1000;
  const gib = ASSET_MB / 1024;
  const after = { main: threads(pids.main), backup: threads(pids.backup) };
  if (perf) {
    perf.kill("SIGINT");
    await perf.exited;
  }
  console.log(`asset put of ${ASSET_MB} MiB: ${seconds.toFixed(2)} s`);
  print("main, CPU-s per GiB", diff(before.main, after.main), gib, "");
  print("backup, CPU-s per GiB", diff(before.backup, after.backup), gib, "");
} finally {
  // SIGTERM first: a server under `--cpu-prof` (NODE_BUN_ARGS) writes its profile as it exits.
  await Promise.all(["main", "backup"].map((name) => c.machine(name).stop()));
  await c.shutdown();
  rmSync(work, { recursive: true, force: true });
  rmSync(c.dir, { recursive: true, force: true });
  removeTempDirs();
}
