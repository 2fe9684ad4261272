/**
 * The Asset Hub's space on the main and the backup: how big the cache is, how
 * much the disk holding it has free, and whether the backup can still hold a
 * full copy of the main's cache. Pure: the numbers come from store/disk-usage.ts.
 */
import { z } from "zod";

export const diskUsageSchema = z.object({
  /** Bytes of cached chunks (assets and show-file contents). */
  cacheBytes: z.number().nonnegative(),
  /** Bytes free for this machine's data dir on its disk. */
  freeBytes: z.number().nonnegative(),
  /** The size of that disk. */
  totalBytes: z.number().nonnegative(),
});
export type DiskUsage = z.infer<typeof diskUsageSchema>;

export const storageStatusSchema = z.object({ main: diskUsageSchema.nullable(), backup: diskUsageSchema.nullable(), warning: z.string().nullable() });
export type StorageStatus = z.infer<typeof storageStatusSchema>;

/** Warn while the backup still has room: once free space is under this share of the main's cache beyond its own. */
export const BACKUP_HEADROOM = 0.1;

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;

/**
 * A warning when the backup's disk (its free space plus what it already caches) is smaller than
 * the main's cache with BACKUP_HEADROOM to spare: the backup would stop copying before it is full.
 */
export function backupSpaceWarning(main: DiskUsage | null, backup: DiskUsage | null): string | null {
  if (!main || !backup) return null;
  const room = backup.freeBytes + backup.cacheBytes;
  if (room >= main.cacheBytes * (1 + BACKUP_HEADROOM)) return null;
  return `The backup's disk can hold ${gb(room)} of Asset Hub cache, but the main's cache is ${gb(main.cacheBytes)}: free space on the backup (or remove assets with "understudy asset rm") before it runs out and stops copying.`;
}

export function storageStatus(main: DiskUsage | null, backup: DiskUsage | null): StorageStatus {
  return { main, backup, warning: backupSpaceWarning(main, backup) };
}
