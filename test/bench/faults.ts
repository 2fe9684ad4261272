/**
 * `bun run bench faults` (root, nftables): the fault suite's cases against the
 * real executable in network namespaces, as a table. RUNS=n repeats each case
 * (default 1), FAULT_SECONDS sets the loss cases' length (default 60).
 * failovers = epoch changes the backup saw; recovery = a restarted main's
 * process start until the main serves, the backup is idle and the client
 * follows the main again.
 */
import { executable } from "../support/executable.ts";
import { DEFAULTS, FAST, FaultCluster, faultLabUnavailable, type Preset } from "../support/fault-cluster.ts";

const RUNS = Number(process.env.RUNS ?? 1);
const FAULT_SECONDS = Number(process.env.FAULT_SECONDS ?? 60);
const unavailable = faultLabUnavailable();
if (unavailable) {
  console.error(`bench faults: ${unavailable}`);
  process.exit(2);
}

type Row = { name: string; runs: number; failovers: number; recovery: number[] };
const cluster = FaultCluster.create(await executable(), "us-bf", "10.235.0");
const rows: Row[] = [];

async function measure(name: string, preset: Preset, fault: (c: FaultCluster, recovery: number[]) => Promise<void>): Promise<void> {
  const row: Row = { name, runs: RUNS, failovers: 0, recovery: [] };
  for (let i = 0; i < RUNS; i++) {
    await cluster.fresh(preset);
    const before = (await cluster.epochs())[1];
    await fault(cluster, row.recovery);
    row.failovers += (await cluster.epochs())[1] - before;
  }
  rows.push(row);
  console.error(`${name}: ${row.failovers} failovers`);
}

try {
  for (const preset of [DEFAULTS, FAST]) {
    await measure(`5 % loss on every link, ${FAULT_SECONDS} s (${preset.name})`, preset, async (c) => {
      c.loss(5);
      await Bun.sleep(FAULT_SECONDS * 1000);
      c.loss(null);
    });
  }
  await measure(`SIGSTOP of the main, 10 × 400 ms (defaults)`, DEFAULTS, async (c) => {
    for (let i = 0; i < 10; i++) {
      await c.pauseMain(400);
      await Bun.sleep(600);
    }
  });
  await measure("restart of the main after 3 s, 3 × (fast)", FAST, async (c, recovery) => {
    for (let i = 0; i < 3; i++) {
      await c.killMain();
      await Bun.sleep(3000);
      const startedAt = performance.now();
      c.start("main");
      await c.settled(20_000);
      recovery.push(performance.now() - startedAt);
    }
  });
} finally {
  await cluster.cleanup();
}

const median = (values: number[]) => (values.length === 0 ? "-" : [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!.toFixed(0));
console.log(
  [
    "| case | runs | failovers (epoch changes) | recovery ms (median) |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.name} | ${r.runs} | ${r.failovers} | ${median(r.recovery)} |`),
  ].join("\n"),
);
