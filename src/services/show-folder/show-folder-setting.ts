/**
 * Which folder may be a machine's show folder: an absolute path of a folder
 * that exists, apart from understudy's own data dir (pushing that would send
 * the machine's keys and database to every machine, and pulling into it would
 * overwrite them) and the system's own folders, also through a link
 * (core/system-folders.ts).
 */
import { realpathSync, statSync } from "node:fs";
import { relative, isAbsolute, sep } from "node:path";
import { isAbsolutePath } from "../../core/config.ts";
import { InvalidInput } from "../../core/errors.ts";
import { systemFolderReason } from "../../core/system-folders.ts";

/** Refuses `dir` in words the operator can act on (field "folder"); returns it as typed. */
export function checkShowFolder(dir: string, dataDir: string): string {
  const problem = showFolderProblem(dir, dataDir);
  if (problem !== null) throw new InvalidInput(problem, "folder");
  return dir;
}

/** Why `dir` cannot be the show folder, or null when it can. */
export function showFolderProblem(dir: string, dataDir: string): string | null {
  if (!isAbsolutePath(dir)) return `Type the folder's full path, such as /srv/show or D:\\show: "${dir}" is relative.`;
  let real: string;
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is a file, not a folder.`;
    real = realpathSync(dir);
  } catch {
    return `There is no folder ${dir} on this machine: create it, or check the path.`;
  }
  const system = systemFolderReason(real, dir) ?? systemFolderReason(dir);
  if (system !== undefined) return system;
  const data = realOrSame(dataDir);
  if (real === data) return `${dir} is understudy's own data folder: choose a folder of show files outside it.`;
  if (inside(real, data)) return `${dir} is inside understudy's own data folder (${dataDir}): choose a folder of show files outside it.`;
  if (inside(data, real)) return `${dir} holds understudy's own data folder (${dataDir}), whose keys must never be pushed: choose a folder that does not contain it.`;
  return null;
}

function inside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel);
}

function realOrSame(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Why the show folder set by a flag cannot be one before the machine starts (a system folder, also through a link), or null; a missing folder is not refused here (a drive not mounted yet). */
export function showFolderFlagProblem(dir: string): string | null {
  return systemFolderReason(realOrSame(dir), dir) ?? systemFolderReason(dir) ?? null;
}
