/**
 * One process per data dir: `understudy.lock` holds the pid of the process
 * that runs on it. Two processes on one data dir would both write its
 * database and config and answer for the same machine key (issue 18 finding 9).
 * The lock is created exclusively (O_EXCL); a lock whose pid is dead is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { AppError } from "../core/errors.ts";

export const LOCK_FILE = "understudy.lock";

export class DataDirInUse extends AppError {
  readonly pid: number;
  constructor(dataDir: string, pid: number) {
    super(
      "DATA_DIR_IN_USE",
      `The data dir ${dataDir} is in use by another understudy (process ${pid}). Stop that process, or start this one with another --data.`,
      { status: 409 },
    );
    this.name = "DataDirInUse";
    this.pid = pid;
  }
}

export type DataDirLock = { path: string; release(): void };

/** Whether a process with this pid exists; EPERM means it exists under another user. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function createExclusive(path: string, pid: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (error) {
    if ((error as { code?: string }).code === "EEXIST") return false;
    throw error;
  }
  try {
    writeSync(fd, `${pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Takes the data dir for this process or throws DataDirInUse naming the holder.
 * A stale lock is renamed aside before it is removed, so of two processes that
 * both found it stale only the one whose rename moved it goes on; the other
 * finds the winner's fresh lock on its next try.
 */
export function takeDataDirLock(dataDir: string, pid = process.pid, alive: (pid: number) => boolean = processAlive): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 5; attempt++) {
    if (createExclusive(path, pid)) return { path, release: () => releaseIfOurs(path, pid) };
    const holder = readPid(path);
    if (holder !== null && holder !== pid && alive(holder)) throw new DataDirInUse(dataDir, holder);
    const aside = `${path}.${pid}.stale`;
    try {
      renameSync(path, aside);
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") continue;
      throw error;
    }
    const moved = readPid(aside);
    if (moved !== holder) {
      // Another process took the stale lock over between our read and our rename: put its lock back.
      renameSync(aside, path);
      if (moved !== null && alive(moved)) throw new DataDirInUse(dataDir, moved);
      continue;
    }
    rmSync(aside, { force: true });
  }
  const holder = readPid(path);
  throw new DataDirInUse(dataDir, holder ?? 0);
}

function releaseIfOurs(path: string, pid: number): void {
  if (readPid(path) === pid) rmSync(path, { force: true });
}
