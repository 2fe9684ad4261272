import { expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataDirInUse, LOCK_FILE, takeDataDirLock } from "../../../src/store/data-dir-lock.ts";
import { tempDir } from "../../support/temp-dirs.ts";

test("the first process takes the data dir; a second one is refused with the holder's pid; release frees it", () => {
  const dir = tempDir();
  const alive = new Set([100, 200]);
  const first = takeDataDirLock(dir, 100, (pid) => alive.has(pid));
  expect(readFileSync(join(dir, LOCK_FILE), "utf8").trim()).toBe("100");
  let caught: unknown;
  try {
    takeDataDirLock(dir, 200, (pid) => alive.has(pid));
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DataDirInUse);
  expect((caught as DataDirInUse).code).toBe("DATA_DIR_IN_USE");
  expect((caught as Error).message).toContain(dir);
  expect((caught as Error).message).toContain("process 100");
  // The refused start changed nothing.
  expect(readFileSync(join(dir, LOCK_FILE), "utf8").trim()).toBe("100");
  first.release();
  first.release();
  expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  takeDataDirLock(dir, 200, (pid) => alive.has(pid));
  expect(readFileSync(join(dir, LOCK_FILE), "utf8").trim()).toBe("200");
});

test("a lock left by a dead process, or an unreadable one, is taken over", () => {
  const dir = tempDir();
  writeFileSync(join(dir, LOCK_FILE), "4242\n");
  takeDataDirLock(dir, 300, (pid) => pid === 300).release();
  writeFileSync(join(dir, LOCK_FILE), "garbage");
  const lock = takeDataDirLock(dir, 300, (pid) => pid === 300);
  expect(readFileSync(lock.path, "utf8").trim()).toBe("300");
});

test("release does not remove a lock another process has since taken", () => {
  const dir = tempDir();
  const lock = takeDataDirLock(dir, 100, () => false);
  writeFileSync(lock.path, "555\n");
  lock.release();
  expect(readFileSync(lock.path, "utf8").trim()).toBe("555");
});
