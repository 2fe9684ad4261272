/**
 * Files that must never be seen half-written (config.json, keys, licenses):
 * write a temp file beside the target, fsync it, rename over the target, fsync the folder.
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, join, basename } from "node:path";

/** The longest file name ext4, APFS and NTFS take, in bytes: a temp name must fit too, whatever the target's name. */
const MAX_NAME_BYTES = 255;

/** `.NAME.PID.tmp` beside the target; for a long NAME, a hash of it instead (a 255-byte show file name made every pull fail). */
export function tempNameFor(name: string, pid = process.pid): string {
  const plain = `.${name}.${pid}.tmp`;
  if (Buffer.byteLength(plain) <= MAX_NAME_BYTES) return plain;
  return `.${createHash("sha256").update(name).digest("hex").slice(0, 32)}.${pid}.tmp`;
}

export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, tempNameFor(basename(path)));
  const fd = openSync(temp, "w", mode);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temp, path);
  syncDirectory(dir);
}

function syncDirectory(dir: string): void {
  // Windows cannot open a folder for fsync; its rename is durable enough there.
  if (process.platform === "win32") return;
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
