/**
 * Preloaded into a node by `MEM_PROF=dir bun run bench hub` (nodes then run from source): every
 * 200 ms it appends one JSON line to dir/<pid>.jsonl with the process's RSS, what the JavaScript
 * heap holds (bun:jsc heapStats), the event loop's longest stall since the last line, and at the
 * largest heap seen the ten most numerous object types.
 * This is how the bench finds where a node's memory goes.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { heapStats } from "bun:jsc";

const dir = process.env.MEM_PROF_DIR;
if (dir) {
  const file = join(dir, `${process.pid}.jsonl`);
  let largest = 0;
  let ticks = 0;
  const budget = Number(process.env.MEM_PROF_BUDGET ?? 0);
  // The event loop's longest stall: a 1 ms timer that comes late says how long the loop was held.
  let lastTick = performance.now();
  let stall = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - lastTick - 1);
    lastTick = now;
  }, 1);
  tick.unref();
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    const h = heapStats();
    const line: Record<string, unknown> = {
      t: Date.now(),
      rss: m.rss >> 20,
      heapSize: h.heapSize >> 20,
      heapCapacity: h.heapCapacity >> 20,
      extra: h.extraMemorySize >> 20,
      external: m.external >> 20,
      arrayBuffers: m.arrayBuffers >> 20,
      objects: h.objectCount,
      stallMs: Math.round(stall * 10) / 10,
    };
    stall = 0;
    // MEM_PROF_GC=1: every 2 s a full collection first, so heapSize is what is live, not garbage not yet swept.
    if (process.env.MEM_PROF_GC && ++ticks % 10 === 0) {
      Bun.gc(true);
      const live = heapStats();
      line.live = live.heapSize >> 20;
      line.liveObjects = live.objectCount;
      line.liveTop = Object.entries(live.objectTypeCounts).sort((a, b) => b[1] - a[1]).slice(0, 8);
    }
    // MEM_PROF_BUDGET=MiB: a full collection whenever RSS is past it (what a keeper in the node would do).
    if (budget > 0 && m.rss >> 20 > budget) {
      const t = performance.now();
      Bun.gc(true);
      line.gcMs = Math.round((performance.now() - t) * 10) / 10;
      line.rssAfter = process.memoryUsage().rss >> 20;
    }
    if (h.heapSize > largest * 1.2) {
      largest = h.heapSize;
      line.top = Object.entries(h.objectTypeCounts).sort((a, b) => b[1] - a[1]).slice(0, 10);
    }
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  }, 200);
  timer.unref();
}
