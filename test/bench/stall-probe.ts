/**
 * Preloaded into a node by `STALL_PROF=dir bun run bench hub` (nodes then run from source): a 1 ms
 * timer that comes late says how long the event loop was held; every stall over 3 ms is appended
 * to dir/<pid>.stall once a second as "wall ms,stall ms" pairs. Nothing else runs, so the probe
 * does not cause the stalls it looks for (mem-probe.ts's heap census takes tens of ms).
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.MEM_PROF_DIR;
if (dir) {
  const file = join(dir, `${process.pid}.stall`);
  const stalls: number[] = [];
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const stall = now - last - 1;
    if (stall > 3) stalls.push(Date.now(), Math.round(stall * 10) / 10);
    last = now;
  }, 1).unref();
  setInterval(() => {
    if (stalls.length > 0) appendFileSync(file, `${stalls.splice(0).join(",")}\n`);
  }, 1000).unref();
}
