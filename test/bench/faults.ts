/**
 * `bun run bench faults` (root, nftables): the fault suite's cases
 * (test/faults/fault-cases.ts) against the real executable in network
 * namespaces, as a table. RUNS=n repeats each case (default 1), FAULT_SECONDS
 * sets the loss and flapping cases' length (default 120, the run),
 * CASES=text keeps only the cases whose name contains it.
 *
 * failovers = the backup's takeovers seen in its polls (every 50 ms);
 * two-active = time both servers' polls said `active`, summed over a run (the worst run); lost =
 * messages acknowledged to the publishing app on the client that never
 * reached the subscribing app on the backup's machine (all runs); recovery =
 * from the end of the fault (for restarts: the main's process start) until
 * the main serves, the backup is idle and the client follows the main.
 */
import { executable } from "../support/executable.ts";
import { FaultCluster, faultLabUnavailable } from "../support/fault-cluster.ts";
import { faultCases, runCase, type CaseResult } from "../faults/fault-cases.ts";

const RUNS = Number(process.env.RUNS ?? 1);
const FAULT_SECONDS = Number(process.env.FAULT_SECONDS ?? 120);
const ONLY = process.env.CASES ?? "";
const unavailable = faultLabUnavailable();
if (unavailable) {
  console.error(`bench faults: ${unavailable}`);
  process.exit(2);
}

type Row = { name: string; results: CaseResult[] };
const cluster = FaultCluster.create(await executable(), "us-bf", "10.235.0");
const rows: Row[] = [];

try {
  for (const fault of faultCases(FAULT_SECONDS).filter((f) => f.name.includes(ONLY))) {
    const row: Row = { name: fault.name, results: [] };
    for (let i = 0; i < RUNS; i++) row.results.push(await runCase(cluster, fault));
    rows.push(row);
    const sum = (pick: (r: CaseResult) => number) => row.results.reduce((s, r) => s + pick(r), 0);
    console.error(`${fault.name}: ${sum((r) => r.takeovers)} failovers, ${sum((r) => r.lost)} of ${sum((r) => r.acknowledged)} acknowledged lost, ${sum((r) => r.publishErrors.length)} publisher errors`);
  }
} finally {
  await cluster.cleanup();
}

const median = (values: number[]) => (values.length === 0 ? "-" : [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!.toFixed(0));
const total = (r: Row, pick: (c: CaseResult) => number) => r.results.reduce((s, c) => s + pick(c), 0);
console.log(
  [
    "| case | runs | failovers | two-active ms | lost / acknowledged | recovery ms (median) |",
    "|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.results.length} | ${total(r, (c) => c.takeovers)} | ${Math.max(...r.results.map((c) => c.twoActiveMs)).toFixed(0)} | ` +
        `${total(r, (c) => c.lost)} / ${total(r, (c) => c.acknowledged)} | ${median(r.results.flatMap((c) => c.recoveryMs))} |`,
    ),
  ].join("\n"),
);
