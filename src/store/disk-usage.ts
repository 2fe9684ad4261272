/** How much the Asset Hub cache takes and how much room its disk has (core/storage-check.ts judges it). */
import type { Database } from "bun:sqlite";
import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import type { DiskUsage } from "../core/storage-check.ts";
import { chunkDirFor } from "./chunk-files.ts";

/** The cache's size (every stored chunk) and the free and total bytes of the disk holding `db`. */
export function diskUsage(db: Database): DiskUsage {
  const cacheBytes = (db.query("SELECT COALESCE(SUM(size), 0) AS bytes FROM chunks").get() as { bytes: number }).bytes;
  if (chunkDirFor(db.filename) === null) return { cacheBytes, freeBytes: 0, totalBytes: 0 };
  const disk = statfsSync(dirname(db.filename));
  return { cacheBytes, freeBytes: disk.bavail * disk.bsize, totalBytes: disk.blocks * disk.bsize };
}
