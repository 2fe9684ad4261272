/**
 * The machine's one SQLite database (docs/design.md §Lanes and replication),
 * opened in one place so the durability rules live in one place.
 *
 * Schema changes are an ordered list of migrations. To change the schema,
 * append a migration with the next version; never edit or reorder one that
 * has shipped (databases in the field already recorded it as applied).
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { AppError } from "../core/errors.ts";
import { wallClock } from "../net/system-time.ts";

export const DATABASE_FILE = "understudy.db";

/** How long a statement waits for another connection's lock before failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5_000;

export type Migration = {
  /** 1, 2, 3, ... in order, no gaps. */
  readonly version: number;
  /** What it adds, for the log and the schema_version table. */
  readonly name: string;
  /** Runs inside the migration's transaction. */
  readonly up: (db: Database) => void;
};

/** Every schema change, oldest first. Append only. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "Data Hub retained state",
    up: (db) =>
      db.run(`
        -- One row per retained key. value is JSON text; NULL marks a deleted key (a tombstone,
        -- kept until the standby has it). (epoch, seq) is the write's version; updated is wall-clock ms for people.
        CREATE TABLE hub_entries (
          key     TEXT PRIMARY KEY NOT NULL,
          value   TEXT,
          epoch   INTEGER NOT NULL,
          seq     INTEGER NOT NULL,
          updated INTEGER NOT NULL
        ) WITHOUT ROWID;
        -- Highest seq per publisher origin whose set was applied (de-duplicates resends after a switch).
        CREATE TABLE hub_set_marks (
          origin TEXT PRIMARY KEY NOT NULL,
          seq    INTEGER NOT NULL,
          epoch  INTEGER NOT NULL,
          vseq   INTEGER NOT NULL
        ) WITHOUT ROWID;
        -- Exactly one row: the last version handed out and how far tombstones were pruned.
        CREATE TABLE hub_meta (
          id           INTEGER PRIMARY KEY CHECK (id = 1),
          last_epoch   INTEGER NOT NULL,
          last_seq     INTEGER NOT NULL,
          pruned_epoch INTEGER NOT NULL,
          pruned_seq   INTEGER NOT NULL
        );
        INSERT INTO hub_meta (id, last_epoch, last_seq, pruned_epoch, pruned_seq) VALUES (1, 0, 0, 0, 0);
      `),
  },
  {
    version: 2,
    name: "Show file, asset cache and replication log",
    up: (db) =>
      db.run(`
        -- Show file. One row per push; revision 0 is the empty show file and has no row.
        -- parent is the head the revision was written on (always rev - 1); base is the revision the
        -- pusher had. base < parent means the push was accepted over others' changes to other paths.
        -- push_id is the client's id for the push, so a retry after a lost acknowledgement finds it.
        -- log_seq is the replication log entry that carries the revision; snapshots are ordered by it.
        CREATE TABLE revisions (
          rev     INTEGER PRIMARY KEY,
          parent  INTEGER NOT NULL,
          base    INTEGER NOT NULL,
          message TEXT NOT NULL,
          author  TEXT NOT NULL,
          created INTEGER NOT NULL,
          push_id TEXT UNIQUE,
          log_seq INTEGER NOT NULL UNIQUE
        );
        -- Show-file contents, addressed (and de-duplicated) by SHA-256, lowercase hex.
        CREATE TABLE blobs (
          hash TEXT PRIMARY KEY NOT NULL,
          size INTEGER NOT NULL,
          data BLOB NOT NULL
        );
        -- History: one row per path a revision changed. A deletion has no hash.
        CREATE TABLE files (
          path    TEXT NOT NULL,
          rev     INTEGER NOT NULL REFERENCES revisions (rev),
          hash    TEXT REFERENCES blobs (hash),
          size    INTEGER NOT NULL,
          deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
          PRIMARY KEY (path, rev),
          CHECK ((deleted = 1) = (hash IS NULL))
        ) WITHOUT ROWID;
        CREATE INDEX files_by_rev ON files (rev);
        CREATE INDEX files_by_hash ON files (hash);
        -- The show file at head, derived from files in the same transaction, so reading the current
        -- show file and finding colliding paths never scans history. fold is showPathFoldKey(path);
        -- UNIQUE backs up the case-insensitive collision check.
        CREATE TABLE head_files (
          path TEXT PRIMARY KEY NOT NULL,
          fold TEXT NOT NULL UNIQUE,
          hash TEXT NOT NULL REFERENCES blobs (hash),
          size INTEGER NOT NULL,
          rev  INTEGER NOT NULL
        ) WITHOUT ROWID;

        -- Asset cache: 1 MiB chunks addressed by SHA-256, shared by every asset that contains them.
        CREATE TABLE chunks (
          hash TEXT PRIMARY KEY NOT NULL,
          size INTEGER NOT NULL,
          data BLOB NOT NULL
        );
        -- A committed asset (its manifest). Immutable once written.
        CREATE TABLE assets (
          id          TEXT PRIMARY KEY NOT NULL,
          name        TEXT NOT NULL,
          size        INTEGER NOT NULL,
          sha256      TEXT NOT NULL,
          chunk_count INTEGER NOT NULL,
          created     INTEGER NOT NULL,
          log_seq     INTEGER NOT NULL UNIQUE
        );
        CREATE TABLE asset_chunks (
          asset_id TEXT NOT NULL REFERENCES assets (id),
          idx      INTEGER NOT NULL,
          hash     TEXT NOT NULL REFERENCES chunks (hash),
          PRIMARY KEY (asset_id, idx)
        ) WITHOUT ROWID;
        CREATE INDEX asset_chunks_by_hash ON asset_chunks (hash);
        -- Uploads in progress, kept across restarts so a resumed upload sends only missing chunks.
        CREATE TABLE uploads (
          id          TEXT PRIMARY KEY NOT NULL,
          name        TEXT NOT NULL,
          size        INTEGER NOT NULL,
          chunk_count INTEGER NOT NULL,
          created     INTEGER NOT NULL
        );
        CREATE TABLE upload_chunks (
          upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
          idx       INTEGER NOT NULL,
          hash      TEXT NOT NULL REFERENCES chunks (hash),
          PRIMARY KEY (upload_id, idx)
        ) WITHOUT ROWID;
        CREATE INDEX upload_chunks_by_hash ON upload_chunks (hash);

        -- Replication: one ordered log. payload is JSON naming the data the entry carries
        -- ({"rev":12} or {"assetId":"..."}); the data itself stays in its tables, so trimming the log
        -- loses nothing. AUTOINCREMENT: a seq is never reused, even after the log is trimmed.
        -- A backup keeps the main's entries here too (same seq), so it is a full copy.
        CREATE TABLE replication_log (
          seq     INTEGER PRIMARY KEY AUTOINCREMENT,
          kind    TEXT NOT NULL,
          payload TEXT NOT NULL,
          created INTEGER NOT NULL
        );
        -- Exactly one row. log_id names the history this database holds (random on a new database;
        -- a backup takes its main's at a snapshot). applied_seq: the last entry of that log whose
        -- effect is here. snapshot_*: set while a snapshot is being applied, so it resumes after a restart.
        CREATE TABLE replication_state (
          id               INTEGER PRIMARY KEY CHECK (id = 1),
          log_id           TEXT NOT NULL,
          applied_seq      INTEGER NOT NULL,
          snapshot_through INTEGER,
          snapshot_cursor  INTEGER,
          snapshot_total   INTEGER
        );
        INSERT INTO replication_state (id, log_id, applied_seq) VALUES (1, lower(hex(randomblob(16))), 0);
      `),
  },
  {
    version: 3,
    name: "Asset chunk bytes in files",
    up: (db) =>
      db.run(`
        -- in_file = 1: the chunk's bytes are the file <data dir>/chunks/<hash[0:2]>/<hash> (store/chunk-files.ts)
        -- and data is empty; the row is the index. Rows from before (in_file = 0) keep their bytes in data.
        ALTER TABLE chunks ADD COLUMN in_file INTEGER NOT NULL DEFAULT 0 CHECK (in_file IN (0, 1));
      `),
  },
  {
    version: 4,
    name: "Show-file contents in chunks",
    up: (db) =>
      db.run(`
        -- A show-file blob with chunked = 1 keeps its content as asset chunks, in order (blob_chunks),
        -- and data is empty; its hash is fileHashOfChunks (content-hash.ts). Older rows keep data inline
        -- until ShowFileStore moves them into chunks at open.
        ALTER TABLE blobs ADD COLUMN chunked INTEGER NOT NULL DEFAULT 0 CHECK (chunked IN (0, 1));
        CREATE TABLE blob_chunks (
          hash  TEXT NOT NULL REFERENCES blobs (hash),
          idx   INTEGER NOT NULL,
          chunk TEXT NOT NULL REFERENCES chunks (hash),
          PRIMARY KEY (hash, idx)
        ) WITHOUT ROWID;
        CREATE INDEX blob_chunks_by_chunk ON blob_chunks (chunk);
      `),
  },
  {
    version: 5,
    name: "Data Hub retained-state holders",
    up: (db) =>
      db.run(`
        -- Who wrote each retained key (the machine and the app's origin), for the hub's fair shares
        -- (hub/retained-shares.ts). NULL on rows from before: counted as an unknown holder.
        ALTER TABLE hub_entries ADD COLUMN holder_machine TEXT;
        ALTER TABLE hub_entries ADD COLUMN holder_origin TEXT;
      `),
  },
];

/** The database was written by a newer understudy: refuse rather than guess at its schema. */
export class DatabaseTooNew extends AppError {
  constructor(path: string, found: number, known: number) {
    super(
      "DATABASE_TOO_NEW",
      `${path} has schema version ${found}, but this understudy knows only up to ${known}. Run the newer understudy version on this machine.`,
      { status: 500 },
    );
    this.name = "DatabaseTooNew";
  }
}

export class DatabaseOpenFailed extends AppError {
  constructor(path: string, cause: unknown) {
    super("DATABASE_OPEN_FAILED", `Could not open the database ${path}: ${(cause as Error)?.message ?? String(cause)}. Check the data dir's permissions and free space.`, {
      status: 500,
      cause,
    });
    this.name = "DatabaseOpenFailed";
  }
}

export function databasePath(dataDir: string): string {
  return join(dataDir, DATABASE_FILE);
}

/**
 * Opens (creating if needed) the database at `path`, sets every pragma, and
 * applies pending migrations. One writer: the process that opens it.
 */
export function openDatabase(path: string, migrations: readonly Migration[] = MIGRATIONS): Database {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
    // First, so every later statement (the pragmas below included) waits out a lock
    // held by another process (a backup tool, `sqlite3` in a shell) instead of failing at once.
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // WAL: readers (status pages, replication reads) never block the writer, and a crash
    // mid-write leaves the last committed state. Persistent: recorded in the file.
    const mode = db.query("PRAGMA journal_mode = WAL").get() as { journal_mode: string } | null;
    if (path !== ":memory:" && mode?.journal_mode !== "wal") {
      throw new Error(`the file system refused write-ahead logging (journal mode is ${mode?.journal_mode ?? "unknown"})`);
    }
    // FULL: fsync the WAL at every commit. We acknowledge writes (hub sets, show-file pushes)
    // only after commit, and an acknowledged write must survive a power cut; NORMAL could lose
    // the last commits. The cost is one fsync per transaction, so batch writes into one.
    db.run("PRAGMA synchronous = FULL");
    // Enforce REFERENCES clauses (off by default in SQLite, for compatibility).
    db.run("PRAGMA foreign_keys = ON");
    // Temporary tables and sort spills stay in memory: the data dir may be on a slow disk.
    db.run("PRAGMA temp_store = MEMORY");
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new DatabaseOpenFailed(path, error);
  }
  try {
    migrate(db, migrations, path);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/** The highest migration applied, or 0 for a new database. */
export function schemaVersion(db: Database): number {
  const row = db.query("SELECT MAX(version) AS version FROM schema_version").get() as { version: number | null } | null;
  return row?.version ?? 0;
}

/** Applies, in order and each in its own transaction, the migrations the database has not seen. */
export function migrate(db: Database, migrations: readonly Migration[], path = "the database"): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`Migration "${m.name}" has version ${m.version}; expected ${i + 1} (versions run 1, 2, 3, ... in list order).`);
  });
  db.run(`CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const current = schemaVersion(db);
  if (current > migrations.length) throw new DatabaseTooNew(path, current, migrations.length);
  const record = db.query("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)");
  for (const migration of migrations.slice(current)) {
    // A migration and its record commit together: a crash leaves it either fully applied or not at all.
    db.transaction(() => {
      migration.up(db);
      record.run(migration.version, migration.name, wallClock.now());
    }).immediate();
  }
  return schemaVersion(db);
}
