/**
 * Render-engine failover benchmark: the servers' engine watch (decision,
 * tick and Videohub driver) against the loopback Videohub simulator. Engines are
 * simulated in this process (heartbeats every 100 ms, a frame counter at
 * 50 fps). "killed": heartbeats and frames stop (the frame counter sees it
 * first); "frozen": heartbeats go on, frames stop; "silent": an engine that
 * publishes no frame counter goes silent (the failover timeout path). The time is from the fault to the simulated router applying
 * the backup's source on the destination. TRIALS=n (default 8).
 */
import { backupGroupSchema } from "../../src/core/backup-groups.ts";
import { DEFAULT_ENGINE_TIMINGS, type EngineFailoverTimings } from "../../src/core/engine-failover.ts";
import { createLogger } from "../../src/log.ts";
import { EngineWatch } from "../../src/machine/engine-watch.ts";
import { systemClock, systemTimers, wallClock } from "../../src/net/system-time.ts";
import { VideohubDriver } from "../../src/services/router/videohub-driver.ts";
import { VideohubSim } from "../support/videohub-sim.ts";

const TRIALS = Number(process.env.TRIALS ?? 8);
const group = backupGroupSchema.parse({
  id: "bench",
  name: "Bench",
  mains: [{ machineId: "render-1", outputs: [{ source: 0, destination: 10 }] }],
  backup: { machineId: "render-backup", sources: [5] },
  failoverMode: "auto",
  switchBack: "auto",
  holdTimeMs: 1_000,
});

const PRESETS: { name: string; timings: EngineFailoverTimings }[] = [
  { name: `defaults (silent ${DEFAULT_ENGINE_TIMINGS.silenceMs} ms, frozen ${DEFAULT_ENGINE_TIMINGS.framesFrozenMs} ms)`, timings: DEFAULT_ENGINE_TIMINGS },
  { name: "fast (silent 500 ms, frozen 200 ms)", timings: { silenceMs: 500, framesFrozenMs: 200, routeRetryMs: 500 } },
];

function until(probe: () => boolean, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = performance.now() + ms;
    const check = () => (probe() ? resolve() : performance.now() > end ? reject(new Error("timed out")) : setTimeout(check, 5));
    check();
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function measure(timings: EngineFailoverTimings, fault: "killed" | "frozen" | "silent"): Promise<number[]> {
  const sim = new VideohubSim().start();
  let mainState: "running" | "killed" | "frozen" | "silent" = "running";
  const publishesFrames = fault !== "silent";
  const heardAt: Record<string, number> = {};
  const watch = new EngineWatch({
    clock: systemClock,
    wallNow: () => wallClock.now(),
    timers: systemTimers,
    timings,
    backups: () => ({ router: { address: `127.0.0.1:${sim.port}`, enabled: true }, groups: [group] }),
    heard: () => Object.entries(heardAt).map(([id, at]) => ({ id, lastHeardMsAgo: systemClock.now() - at })),
    openRouter: () => new VideohubDriver({ host: "127.0.0.1", port: sim.port, clock: systemClock, timers: systemTimers }),
    publish: () => {},
    setRetained: () => {},
    readRetained: async () => null,
    log: createLogger(() => "json", () => {}),
  });
  watch.activate();
  let frames = 0;
  const beats = systemTimers.every(100, () => {
    heardAt["render-backup"] = systemClock.now();
    if (mainState !== "killed" && mainState !== "silent") heardAt["render-1"] = systemClock.now();
  });
  const frameTimer = systemTimers.every(20, () => {
    frames++;
    watch.signal({ kind: "frames", machineId: "render-backup", frames });
    if (mainState === "running" && publishesFrames) watch.signal({ kind: "frames", machineId: "render-1", frames });
  });
  const results: number[] = [];
  try {
    for (let i = 0; i < TRIALS; i++) {
      await until(() => sim.routes[10] === 0, 10_000);
      await Bun.sleep(200 + Math.random() * 100);
      let switchedAt = 0;
      sim.onRoute = (d, s) => {
        if (d === 10 && s === 5) switchedAt = performance.now();
      };
      const faultAt = performance.now();
      mainState = fault;
      await until(() => switchedAt > 0, 20_000);
      results.push(switchedAt - faultAt);
      sim.onRoute = null;
      mainState = "running";
    }
  } finally {
    beats();
    frameTimer();
    watch.deactivate();
    sim.stop();
  }
  return results.sort((a, b) => a - b);
}

const load = (await Bun.file("/proc/loadavg").text().catch(() => "?")).split(" ").slice(0, 3).join(" ");
console.log(`\n## bun run bench engines — ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, load average ${load}, ${TRIALS} trials\n`);
console.log("| preset | fault | median ms | p95 ms | min ms | max ms |");
console.log("|---|---|---|---|---|---|");
for (const preset of PRESETS) {
  for (const fault of ["killed", "frozen", "silent"] as const) {
    const r = await measure(preset.timings, fault);
    const f = (n: number) => n.toFixed(0);
    console.log(`| ${preset.name} | ${fault} | ${f(percentile(r, 50))} | ${f(percentile(r, 95))} | ${f(r[0]!)} | ${f(r.at(-1)!)} |`);
  }
}
