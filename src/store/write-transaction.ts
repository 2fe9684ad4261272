/**
 * Every write of the show file, the asset cache and the replication log goes
 * through here: one IMMEDIATE transaction (the write lock is taken at BEGIN, so
 * a busy database fails before any work), and SQLITE_FULL turned into DiskFull.
 * SQLite has already rolled the transaction back when it reports SQLITE_FULL,
 * so a full disk leaves nothing half-written. ENOSPC from an asset chunk file
 * (written before its index row) is DiskFull too; the chunk writer removes its temp file.
 */
import type { Database } from "bun:sqlite";
import { AppError } from "../core/errors.ts";
import { DiskFull } from "./store-errors.ts";

/** Runs `write` in one transaction and returns its result. `what` completes "... was not saved" in the DiskFull message. */
export function writeTransaction<T>(db: Database, what: string, write: () => T): T {
  try {
    // Nested calls become savepoints (bun:sqlite), so a store may call another store's write inside its own.
    return db.transaction(write).immediate();
  } catch (error) {
    if (!(error instanceof AppError) && isDiskFull(error)) throw new DiskFull(what, db.filename, error);
    throw error;
  }
}

/** Reads that must see one consistent state (several statements) run in one deferred transaction. */
export function readTransaction<T>(db: Database, read: () => T): T {
  return db.transaction(read).deferred();
}

export function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_FULL") || code === "ENOSPC" || code === "EDQUOT");
}
