/**
 * Hashes of a show folder's files remembered between scans, so the node can
 * list "Your changes to push" every second without reading the whole folder
 * again: a file is hashed again only when its size, modification time, change
 * time or inode moved (what git's index trusts). A file modified within
 * RACY_MS of being hashed is not remembered: a write in the same clock tick
 * could otherwise keep its old hash.
 */
import type { Clock } from "../../core/clock.ts";
import { lstatSync } from "node:fs";
import { chunkFile, type ChunkedFile } from "./file-chunks.ts";

export const RACY_MS = 2000;

export class FileHashCache {
  private readonly known = new Map<string, { stamp: string; file: ChunkedFile }>();

  /** `wallClock` is the clock file times are in. */
  constructor(private readonly wallClock: Clock) {}

  /** The file at `path` chunked and hashed, or as remembered when its stamp is unchanged. */
  async chunk(path: string): Promise<ChunkedFile> {
    const stats = lstatSync(path);
    const stamp = `${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}:${stats.ino}`;
    const known = this.known.get(path);
    if (known?.stamp === stamp) return known.file;
    const file = await chunkFile(path);
    if (this.wallClock.now() - Math.max(stats.mtimeMs, stats.ctimeMs) > RACY_MS) this.known.set(path, { stamp, file });
    else this.known.delete(path);
    return file;
  }

  /** How many files' hashes are remembered. */
  get size(): number {
    return this.known.size;
  }

  /** Forgets files not seen in the last scan, so the cache stays the folder's size. */
  keepOnly(paths: ReadonlySet<string>): void {
    for (const path of this.known.keys()) if (!paths.has(path)) this.known.delete(path);
  }
}
