import { expect, test } from "bun:test";
import { backupSpaceWarning, storageStatus, type DiskUsage } from "../../../src/core/storage-check.ts";

const GB = 1e9;
const usage = (cacheGb: number, freeGb: number): DiskUsage => ({ cacheBytes: cacheGb * GB, freeBytes: freeGb * GB, totalBytes: 1000 * GB });

test.each([
  ["plenty of room", usage(100, 500), usage(100, 500), false],
  ["the backup caught up and has room to spare", usage(100, 10), usage(100, 20), false],
  ["exactly the main's cache with no headroom", usage(100, 10), usage(50, 50), true],
  ["a smaller disk than the main's cache", usage(100, 10), usage(20, 30), true],
  ["the backup not heard yet", usage(100, 10), null, false],
] as const)("%s", (_name, main, backup, warns) => {
  const warning = backupSpaceWarning(main, backup);
  expect(warning !== null).toBe(warns);
  if (warning) expect(warning).toContain("100.0 GB");
  expect(storageStatus(main, backup)).toEqual({ main, backup, warning });
});
