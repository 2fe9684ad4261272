/**
 * The Data Hub's retained state in SQLite: implements HubStatePersistence for
 * HubCore (hub/retained-state.ts), so the hub's rules stay free of I/O.
 *
 * Every change is one transaction (entries, set marks and the last version
 * together), committed with synchronous=FULL before HubCore acknowledges the write.
 */
import type { Database, Statement } from "bun:sqlite";
import type { HubStateChange, HubStatePersistence, PersistedHubState, RetainedEntry, SetMark } from "../hub/retained-state.ts";
import type { Clock } from "../core/clock.ts";
import { wallClock } from "../net/system-time.ts";

type EntryRow = { key: string; value: string | null; epoch: number; seq: number; holder_machine: string | null; holder_origin: string | null };
type MarkRow = { origin: string; seq: number; epoch: number; vseq: number };
type MetaRow = { last_epoch: number; last_seq: number; pruned_epoch: number; pruned_seq: number };

export class HubStateStore implements HubStatePersistence {
  private readonly db: Database;
  /** Wall-clock ms for the `updated` column (shown to people only); injectable for tests. */
  private readonly clock: Clock;
  private readonly upsertEntry: Statement;
  private readonly deleteEntry: Statement;
  private readonly upsertMark: Statement;
  private readonly deleteMark: Statement;
  private readonly updateMeta: Statement;
  private readonly writeInTransaction: (change: HubStateChange) => void;

  constructor(db: Database, clock: Clock = wallClock) {
    this.db = db;
    this.clock = clock;
    this.upsertEntry = db.query(
      `INSERT INTO hub_entries (key, value, epoch, seq, updated, holder_machine, holder_origin) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, epoch = excluded.epoch, seq = excluded.seq, updated = excluded.updated,
         holder_machine = excluded.holder_machine, holder_origin = excluded.holder_origin`,
    );
    this.deleteEntry = db.query("DELETE FROM hub_entries WHERE key = ?");
    this.upsertMark = db.query(
      `INSERT INTO hub_set_marks (origin, seq, epoch, vseq) VALUES (?, ?, ?, ?)
       ON CONFLICT (origin) DO UPDATE SET seq = excluded.seq, epoch = excluded.epoch, vseq = excluded.vseq`,
    );
    this.deleteMark = db.query("DELETE FROM hub_set_marks WHERE origin = ?");
    this.updateMeta = db.query("UPDATE hub_meta SET last_epoch = ?, last_seq = ?, pruned_epoch = ?, pruned_seq = ? WHERE id = 1");
    // IMMEDIATE takes the write lock at BEGIN, so a busy database fails (after busy_timeout) before any work.
    this.writeInTransaction = db.transaction((change: HubStateChange) => this.write(change)).immediate;
  }

  load(): PersistedHubState {
    const entries = (this.db.query("SELECT key, value, epoch, seq, holder_machine, holder_origin FROM hub_entries").all() as EntryRow[]).map((row): RetainedEntry => {
      const entry = { key: row.key, value: row.value === null ? null : JSON.parse(row.value), version: { epoch: row.epoch, seq: row.seq } };
      return row.holder_machine === null ? entry : { ...entry, holder: { machine: row.holder_machine, origin: row.holder_origin ?? "" } };
    });
    const setMarks = (this.db.query("SELECT origin, seq, epoch, vseq FROM hub_set_marks").all() as MarkRow[]).map(
      (row): SetMark => ({ origin: row.origin, seq: row.seq, version: { epoch: row.epoch, seq: row.vseq } }),
    );
    const meta = this.db.query("SELECT last_epoch, last_seq, pruned_epoch, pruned_seq FROM hub_meta WHERE id = 1").get() as MetaRow;
    return {
      entries,
      setMarks,
      lastVersion: { epoch: meta.last_epoch, seq: meta.last_seq },
      prunedThrough: { epoch: meta.pruned_epoch, seq: meta.pruned_seq },
    };
  }

  /** One transaction; throws (and rolls back everything) if any part fails. */
  apply(change: HubStateChange): void {
    this.writeInTransaction(change);
  }

  private write(change: HubStateChange): void {
    const now = this.clock.now();
    for (const entry of change.entries) {
      const value = entry.value === null ? null : JSON.stringify(entry.value);
      this.upsertEntry.run(entry.key, value, entry.version.epoch, entry.version.seq, now, entry.holder?.machine ?? null, entry.holder?.origin ?? null);
    }
    for (const key of change.removedKeys) this.deleteEntry.run(key);
    for (const mark of change.setMarks) this.upsertMark.run(mark.origin, mark.seq, mark.version.epoch, mark.version.seq);
    for (const origin of change.removedMarks) this.deleteMark.run(origin);
    const { lastVersion: last, prunedThrough: pruned } = change;
    this.updateMeta.run(last.epoch, last.seq, pruned.epoch, pruned.seq);
  }
}
