/** The database the hub state lives in: pragmas and the migrations runner (store/database.ts). */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MIGRATIONS, databasePath, migrate, openDatabase, schemaVersion, type Migration } from "../../../src/store/database.ts";

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "understudy-db-"));
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

test("opening sets WAL, a busy timeout, synchronous=FULL and foreign keys", () => {
  const db = openDatabase(join(dataDir, "nested", "understudy.db"));
  const pragma = (name: string) => Object.values(db.query(`PRAGMA ${name}`).get() as object)[0];
  expect(pragma("journal_mode")).toBe("wal");
  expect(pragma("busy_timeout")).toBe(5000);
  expect(pragma("synchronous")).toBe(2); // FULL
  expect(pragma("foreign_keys")).toBe(1);
  db.close();
});

describe("migrations", () => {
  test("a new database gets every migration once, recorded in schema_version", () => {
    const path = databasePath(dataDir);
    openDatabase(path).close();
    const db = openDatabase(path);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(db.query("SELECT version, name FROM schema_version ORDER BY version").all()).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    db.close();
  });

  test("migrations appended later run on an existing database, in order", () => {
    const path = databasePath(dataDir);
    openDatabase(path).close();
    const ran: number[] = [];
    const later: Migration[] = [
      ...MIGRATIONS,
      { version: MIGRATIONS.length + 1, name: "show file", up: (db) => (ran.push(1), db.run("CREATE TABLE later_one (x INTEGER)")) },
      { version: MIGRATIONS.length + 2, name: "assets", up: (db) => (ran.push(2), db.run("CREATE TABLE later_two (x INTEGER)")) },
    ];
    const db = openDatabase(path, later);
    expect(ran).toEqual([1, 2]);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length + 2);
    db.close();
  });

  test("a failing migration leaves no trace and is retried next time", () => {
    const path = databasePath(dataDir);
    const failing: Migration[] = [
      ...MIGRATIONS,
      {
        version: MIGRATIONS.length + 1,
        name: "half",
        up: (db) => {
          db.run("CREATE TABLE half_done (x INTEGER)");
          throw new Error("boom");
        },
      },
    ];
    expect(() => openDatabase(path, failing)).toThrow("boom");
    const db = openDatabase(path);
    expect(schemaVersion(db)).toBe(MIGRATIONS.length);
    expect(db.query("SELECT name FROM sqlite_master WHERE name = 'half_done'").get()).toBeNull();
    db.close();
  });

  test("a database from a newer understudy is refused, not guessed at", () => {
    const path = databasePath(dataDir);
    const newer: Migration[] = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: "future", up: () => {} }];
    openDatabase(path, newer).close();
    expect(() => openDatabase(path)).toThrow(`has schema version ${MIGRATIONS.length + 1}, but this understudy knows only up to ${MIGRATIONS.length}`);
  });

  test("versions must run 1, 2, 3 in list order", () => {
    const db = new Database(":memory:");
    expect(() => migrate(db, [{ version: 2, name: "skips one", up: () => {} }])).toThrow("expected 1");
    db.close();
  });
});
