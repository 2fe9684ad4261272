/**
 * What a server holds of the Data Hub's retained state, read from its SQLite
 * file (read-only, beside the running process: WAL lets a reader in). Lets a
 * test know the backup has a value before it kills the machines that could
 * otherwise tell.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { DATABASE_FILE } from "../../src/store/database.ts";

/** The retained value of `key` in `dataDir`'s database, or undefined when it has none (yet). */
export function retainedValueOnDisk(dataDir: string, key: string): unknown {
  let db: Database;
  try {
    db = new Database(join(dataDir, DATABASE_FILE), { readonly: true });
  } catch {
    return undefined; // not created yet
  }
  try {
    const row = db.query("SELECT value FROM hub_entries WHERE key = ?").get(key) as { value: string | null } | null;
    return row?.value == null ? undefined : JSON.parse(row.value);
  } catch {
    return undefined; // tables not migrated yet
  } finally {
    db.close();
  }
}
