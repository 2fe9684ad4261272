/** A real database with every store, in a fresh data dir per test, closed and removed after it. */
import { afterEach, beforeEach } from "bun:test";
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { databasePath, openDatabase } from "../../src/store/database.ts";
import { createStores } from "../../src/store/stores.ts";

export const STORE_NOW = 1_700_000_000_000;

/** Registers the per-test hooks; `dataDir()` is the current test's folder. */
export function storesPerTest(prefix: string) {
  let dir = "";
  const open: Database[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterEach(() => {
    for (const db of open.splice(0)) db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  /** The database in this test's folder (opened again after a close), tracked so it is closed after the test. */
  const openStores = () => {
    const db = openDatabase(databasePath(dir));
    open.push(db);
    return { db, ...createStores(db, { now: () => STORE_NOW }) };
  };
  /** Closes `db` and opens the same folder again, as a restart would. */
  const reopen = (db: Database) => {
    db.close();
    open.splice(open.indexOf(db), 1);
    return openStores();
  };
  const track = (db: Database) => {
    open.push(db);
    return db;
  };
  return { dataDir: () => dir, openStores, reopen, track };
}
