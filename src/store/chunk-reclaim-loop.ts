/**
 * Runs ChunkReclaimer on a timer: a sweep every quarter of the grace period
 * (within MIN/MAX_SWEEP_MS), logging what it gave back. The sweep itself is
 * synchronous and steppable (chunk-reclaimer.ts); this is only its timer.
 */
import type { Database } from "bun:sqlite";
import type { Logger } from "../log.ts";
import type { AssetStore } from "./asset-store.ts";
import { ChunkReclaimer } from "./chunk-reclaimer.ts";
import type { Clock, Timers } from "../core/clock.ts";
import { systemTimers, wallClock } from "../net/system-time.ts";

export const MIN_SWEEP_MS = 50;
export const MAX_SWEEP_MS = 60_000;

export type ReclaimLoop = { readonly reclaimer: ChunkReclaimer; stop(): void };

/** `clock` gives the sweep its (wall-clock) time; `clock` and `timers` are injectable for tests. */
export function startChunkReclaim(
  stores: { readonly assets: AssetStore; readonly log: { readonly database: Database } },
  graceMs: number,
  log: Logger,
  clock: Clock = wallClock,
  timers: Timers = systemTimers,
): ReclaimLoop {
  const db = stores.log.database;
  const reclaimer = new ChunkReclaimer(db, graceMs);
  const everyMs = Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(graceMs / 4)));
  const stop = timers.every(everyMs, () => {
    try {
      const result = reclaimer.sweep(clock.now());
      stores.assets.forgetDroppedUploads();
      if (result.chunksRemoved > 0 || result.uploadsDropped > 0) log.info("reclaimed unused chunks", result);
    } catch (error) {
      log.warn("reclaiming unused chunks failed", { message: (error as Error).message });
    }
  });
  return { reclaimer, stop };
}
