/**
 * The last step of a pull (§Show folder): a downloaded file goes into place, or a
 * deleted one goes away, only if the folder's file is still what the pull
 * checked before it started. An operator may save a file while a revision
 * downloads; that edit is kept, and the incoming version is saved beside it
 * (`note.txt.from-revision-10`), so a pull never replaces what the operator changed.
 *
 * "Still what was checked" is the file's size, times and inode as seen when it
 * was hashed; when those moved, or the file was written around the time it was
 * hashed (a write in the same clock tick keeps the times), it is hashed again.
 * A file that was absent is put in place with a hard link, which refuses to
 * replace a file made meanwhile; the window between the last look and a rename
 * over an existing file is one system call.
 */
import { linkSync, lstatSync, mkdirSync, renameSync, rmSync, type Stats } from "node:fs";
import { dirname, join } from "node:path";
import type { Clock } from "../../core/clock.ts";
import { showPathProblem } from "../../core/show-paths.ts";
import { chunkFile } from "./file-chunks.ts";
import { RACY_MS } from "./file-hash-cache.ts";

/** What a path held when the pull checked it: its hash (null: nothing, "other": a folder, link or device) and its stamp. */
export type CheckedLocal = { readonly hash: string | null | "other"; readonly stamp: string | null; readonly at: number };

/** A file the pull left as the operator had it; `savedAs` is where the incoming version went (null for a deletion). */
export type KeptFile = { readonly path: string; readonly savedAs: string | null };

/** Where the folder keeps incoming versions that do not fit beside the file (a name too long for the disk). */
export const CONFLICTS_DIR = "conflicts";

const stampOf = (stats: Stats) => `${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}:${stats.ino}`;

/** Hashes `path` in `dir` as the pull's first look; `wallClock` is the clock file times are in. */
export async function checkLocal(dir: string, path: string, wallClock: Clock): Promise<CheckedLocal> {
  const at = wallClock.now();
  const stats = lstatOrNull(join(dir, path));
  if (stats === null) return { hash: null, stamp: null, at };
  if (!stats.isFile()) return { hash: "other", stamp: null, at };
  return { hash: (await chunkFile(join(dir, path))).hash, stamp: stampOf(stats), at };
}

/** Whether the file at `path` is still what `checked` saw. */
export async function unchangedSince(dir: string, path: string, checked: CheckedLocal): Promise<boolean> {
  const stats = lstatOrNull(join(dir, path));
  if (stats === null) return checked.hash === null;
  if (!stats.isFile() || checked.hash === null || checked.hash === "other") return false;
  const racy = Math.max(stats.mtimeMs, stats.ctimeMs) >= checked.at - RACY_MS;
  if (stampOf(stats) === checked.stamp && !racy) return true;
  return (await chunkFile(join(dir, path))).hash === checked.hash;
}

/**
 * Moves the finished download `from` to `path`, unless the file there changed since `checked`:
 * then it is saved beside it and the name it got is returned. Null when it was put in place.
 */
export async function placeChecked(dir: string, stateDir: string, path: string, from: string, checked: CheckedLocal, head: number): Promise<string | null> {
  const target = join(dir, path);
  if (await unchangedSince(dir, path, checked)) {
    if (checked.hash !== null) {
      renameSync(from, target);
      return null;
    }
    if (linkWithoutReplacing(from, target)) return null;
  }
  return saveBeside(dir, stateDir, path, from, head);
}

/** Deletes `path` unless it changed since `checked`; whether it did. */
export async function deleteChecked(dir: string, path: string, checked: CheckedLocal): Promise<boolean> {
  if (!(await unchangedSince(dir, path, checked))) return false;
  rmSync(join(dir, path), { force: true });
  return true;
}

/** `path.from-revision-N` (then `-2`, `-3` …) beside the file, or in the conflicts folder when no such name fits. */
function saveBeside(dir: string, stateDir: string, path: string, from: string, head: number): string {
  for (let n = 1; n <= 100; n++) {
    const name = `${path}.from-revision-${head}${n === 1 ? "" : `-${n}`}`;
    if (showPathProblem(name) !== undefined) break;
    if (linkWithoutReplacing(from, join(dir, name))) return name;
  }
  const name = `${stateDir}/${CONFLICTS_DIR}/revision-${head}/${path}`;
  const target = join(dir, name);
  rmSync(target, { force: true });
  mkdirSync(dirname(target), { recursive: true });
  renameSync(from, target);
  return name;
}

/** Hard-links `from` to `to` and removes `from`; false when `to` exists (never replaced). */
function linkWithoutReplacing(from: string, to: string): boolean {
  try {
    linkSync(from, to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    // A disk without hard links (FAT, some network shares): look, then rename.
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "ENOSYS" && code !== "EOPNOTSUPP") throw error;
    if (lstatOrNull(to) !== null) return false;
    renameSync(from, to);
    return true;
  }
  rmSync(from, { force: true });
  return true;
}

export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw error;
  }
}

/** One sentence for the operator naming the files a pull to `head` kept, and what to do; "" when none. */
export function describeKept(kept: readonly KeptFile[], head: number, base: number): string {
  if (kept.length === 0) return "";
  const each = kept.map((k) =>
    k.savedAs === null ? `${JSON.stringify(k.path)} (revision ${head} deletes it)` : `${JSON.stringify(k.path)} (revision ${head}'s version is saved as ${JSON.stringify(k.savedAs)})`,
  );
  const files = kept.length === 1 ? "1 file" : `${kept.length} files`;
  return `Kept ${files} changed here during the pull: ${each.join(", ")}. The folder stays at revision ${base}: to finish, put the saved version in place of yours (keep your copy elsewhere), pull again, then bring your changes back and push.`;
}
