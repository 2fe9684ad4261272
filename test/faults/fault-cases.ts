/**
 * The fault suite's cases, written once: network-faults.test.ts checks each
 * against the invariants of docs/design.md §Invariants and `bun run bench faults` prints them as a
 * table. Every case starts from fresh machines and runs under a FaultWatch
 * (messages from the client to an app on the backup's machine, both servers'
 * states polled every 50 ms).
 */
import { DEFAULTS, FAST, type FaultCluster, type Preset } from "../support/fault-cluster.ts";
import { FaultWatch, type WatchReport } from "../support/fault-watch.ts";

export type FaultCase = {
  name: string;
  preset: Preset;
  /** "never": the backup must not take over (the fault is below the documented bound); "allowed": whatever the detector decides. */
  failover: "never" | "allowed";
  /** Applies the fault. Returns recovery times it measured itself; by default recovery runs from the end of the fault until settled. */
  apply(c: FaultCluster): Promise<number[] | void>;
  /** Upper bound for one run, ms (a test's timeout). */
  boundMs: number;
};

export type CaseResult = WatchReport & { epochsBefore: [number, number]; epochsAfter: [number, number]; recoveryMs: number[] };

/** Fresh machines, a watch, the fault, recovery, the report. */
export async function runCase(c: FaultCluster, fault: FaultCase): Promise<CaseResult> {
  await c.fresh(fault.preset);
  const epochsBefore = await c.epochs();
  const watch = await FaultWatch.start(c);
  let recoveryMs: number[];
  try {
    recoveryMs = (await fault.apply(c)) ?? [await c.recovery()];
  } catch (error) {
    await watch.finish(); // the watch's helpers must not outlive a case whose own check failed
    throw error;
  }
  const report = await watch.finish();
  return { ...report, epochsBefore, epochsAfter: await c.epochs(), recoveryMs };
}

/** A seeded generator, so a failing run can be repeated with the same intervals. */
function seeded(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

const pauses = (times: number, pauseMs: number, gapMs: number) => async (c: FaultCluster) => {
  for (let i = 0; i < times; i++) {
    await c.pauseMain(pauseMs);
    await Bun.sleep(gapMs);
  }
};

/** `seconds`: how long the loss and flapping cases last (the full run is 120; CI keeps 20). */
export function faultCases(seconds: number): FaultCase[] {
  const long = (seconds + 60) * 1000;
  const loss = (preset: Preset): FaultCase => ({
    name: `5 % loss on every link, ${seconds} s (${preset.name})`,
    preset,
    failover: "never",
    boundMs: long,
    async apply(c) {
      c.loss(5);
      await Bun.sleep(seconds * 1000);
      c.loss(null);
    },
  });
  const cut = (label: string, ways: [("main" | "backup"), ("main" | "backup")][]): FaultCase => ({
    name: `main and backup cut ${label} while the client hears the main (fast)`,
    preset: FAST,
    failover: "never",
    boundMs: 60_000,
    async apply(c) {
      for (const [from, to] of ways) c.cut(from, to);
      const seen = new Set<string>();
      try {
        // Many failover timeouts: the backup holds back the whole time on the client's word, and says why.
        const until = performance.now() + 12 * FAST.failoverTimeoutMs;
        while (performance.now() < until) {
          seen.add((await c.status("backup")).chip);
          await Bun.sleep(100);
        }
      } finally {
        c.healCuts();
      }
      if (!seen.has("Main unreachable from backup")) throw new Error(`the backup never said "Main unreachable from backup" (it said: ${[...seen].join(", ")})`);
    },
  });
  return [
    loss(DEFAULTS),
    loss(FAST),
    cut("both ways", [["main", "backup"], ["backup", "main"]]),
    cut("main to backup only", [["main", "backup"]]),
    cut("backup to main only", [["backup", "main"]]),
    {
      name: `the main's cable flapping every 300 ms, ${seconds} s (defaults)`,
      preset: DEFAULTS,
      failover: "never",
      boundMs: long,
      async apply(c) {
        const until = performance.now() + seconds * 1000;
        while (performance.now() < until) {
          await c.flapMain(300);
          await Bun.sleep(300);
        }
      },
    },
    {
      name: "SIGSTOP of the main, 10 × 400 ms (defaults)",
      preset: DEFAULTS,
      failover: "never",
      boundMs: 90_000,
      apply: pauses(10, 400, 600),
    },
    {
      // Just below the 1 s failover timeout: a late heartbeat may tip the detector either way.
      name: "SIGSTOP of the main, 10 × 900 ms (defaults)",
      preset: DEFAULTS,
      failover: "allowed",
      boundMs: 120_000,
      apply: pauses(10, 900, 1_100),
    },
    {
      name: "restart of the main at random 2–6 s intervals, 10 × (fast)",
      preset: FAST,
      failover: "allowed",
      boundMs: 240_000,
      async apply(c) {
        const random = seeded(7);
        const recovery: number[] = [];
        for (let i = 0; i < 10; i++) {
          await c.killMain();
          await Bun.sleep(2_000 + random() * 4_000);
          const startedAt = performance.now();
          c.start("main");
          await c.explained(() => c.settled(20_000));
          recovery.push(performance.now() - startedAt);
        }
        return recovery;
      },
    },
  ];
}
