/**
 * The Data Hub's retained key/value state, with versions (epoch, seq).
 *
 * - A write gets the next version: (current epoch, seq + 1), seq restarting at
 *   1 in a new epoch. Versions order every write across servers, so the
 *   standby and the main can exchange "what changed since version V".
 * - A deleted key stays as a tombstone (value null) so the deletion reaches
 *   the standby; tombstones the standby already has can be pruned.
 * - Set marks remember, per publisher origin, the highest seq whose `set` was
 *   applied. They travel with the state, so a `set` resent to the new active
 *   server after a switch is recognised even when its value was overwritten since
 *   (re-applying it would undo the later write).
 *
 * Durability: every change goes through `HubStatePersistence.apply` (one
 * transaction) before memory changes, so what was acknowledged survives a crash.
 * Without persistence (tests, the simulator) state lives in memory only.
 */
import { z } from "zod";
import { versionSchema, type Version } from "./frames.ts";
import { DEFAULT_RETAINED_SHARE_LIMITS, RetainedShares, retainedBytes, UNKNOWN_HOLDER, type MachineUse, type RetainedHolder, type RetainedShareLimits } from "./retained-shares.ts";
import type { LimitReached } from "./hub-errors.ts";
import { compareVersions, VersionOrder } from "./version-order.ts";

export { compareVersions };

export const DEFAULT_MAX_RETAINED_KEYS = DEFAULT_RETAINED_SHARE_LIMITS.maxKeys;
export const DEFAULT_MAX_SET_MARKS = 10_000;

export const ZERO_VERSION: Version = Object.freeze({ epoch: 0, seq: 0 });

export function maxVersion(a: Version, b: Version): Version {
  return compareVersions(a, b) >= 0 ? a : b;
}

export const retainedEntrySchema = z.object({
  key: z.string().min(1).max(256),
  /** JSON value, or null for a deleted key (tombstone). */
  value: z.unknown(),
  version: versionSchema,
  /** Who wrote it, for the shares (retained-shares.ts); absent from older peers. */
  holder: z.object({ machine: z.string().max(128), origin: z.string().max(128) }).optional(),
});
export type RetainedEntry = { readonly key: string; readonly value: unknown; readonly version: Version; readonly holder?: RetainedHolder };

export const setMarkSchema = z.object({ origin: z.string().min(1).max(128), seq: z.number().int().min(1), version: versionSchema });
/** The highest seq from `origin` whose `set` was applied, and the version of that write. */
export type SetMark = { readonly origin: string; readonly seq: number; readonly version: Version };

/** How much of the state one copy answer carries (exportSince): far below the peer port's 16 MiB frame, and its JSON a few tens of milliseconds. */
export const HUB_COPY_PAGE_BYTES = 4 * 1024 * 1024;
/** An entry's JSON beyond its key and value: version, holder, quotes and commas. */
const ENTRY_OVERHEAD_BYTES = 160;

/** A page of at most `budget` by `size`, and at least one item: `fits` counts each item offered, `more` says one was left out. */
function pageOf<T>(budget: number, size: (item: T) => number): { fits: (item: T) => boolean; more: () => boolean } {
  let used = 0;
  let taken = 0;
  let full = false;
  return {
    fits: (item) => {
      used += size(item);
      full = used > budget && taken > 0;
      if (!full) taken++;
      return !full;
    },
    more: () => full,
  };
}

/** Retained changes handed to the standby, or back to the main on failback. Parse with the schema when it arrives from a peer. */
export const hubStateChangesSchema = z.object({
  since: versionSchema,
  /** The exporter's last version: ask "since through" next time. */
  through: versionSchema,
  /** True when tombstones after `since` were pruned: the importer drops keys not listed (a full snapshot). */
  complete: z.boolean(),
  /** Sorted by version. Tombstones included. */
  entries: z.array(retainedEntrySchema),
  setMarks: z.array(setMarkSchema),
  /** One page of more: `through` is this page's last entry; ask since it again (absent from older peers: whole). */
  more: z.boolean().optional(),
});
export type HubStateChanges = z.infer<typeof hubStateChangesSchema>;

/** What persistence holds, read once at start. */
export type PersistedHubState = {
  readonly entries: readonly RetainedEntry[];
  readonly setMarks: readonly SetMark[];
  readonly lastVersion: Version;
  readonly prunedThrough: Version;
};

/** One atomic change of the persisted state. */
export type HubStateChange = {
  /** Upserts, tombstones included. */
  readonly entries: readonly RetainedEntry[];
  /** Keys dropped entirely (pruned tombstones, or missing from a complete snapshot). */
  readonly removedKeys: readonly string[];
  readonly setMarks: readonly SetMark[];
  /** Marks forgotten to keep their number bounded. */
  readonly removedMarks: readonly string[];
  readonly lastVersion: Version;
  readonly prunedThrough: Version;
};

/**
 * Where retained state is kept (store/hub-state-store.ts implements it on SQLite).
 * Contract: `apply` makes the whole change durable in one transaction before it
 * returns, or throws and leaves nothing of it applied.
 */
export interface HubStatePersistence {
  load(): PersistedHubState;
  apply(change: HubStateChange): void;
}

export type RetainedUseReport = {
  readonly keys: number;
  readonly bytes: number;
  readonly maxKeys: number;
  readonly maxBytes: number;
  readonly machines: (MachineUse & { readonly name: string })[];
  /** Entries a peer sent that did not fit the shares here, since start (they were not applied). */
  readonly refusedOnImport: number;
};

export type RetainedStateLimits = { maxKeys?: number; maxSetMarks?: number; shares?: Partial<RetainedShareLimits> };

export class RetainedState {
  private readonly entries = new Map<string, RetainedEntry>();
  /** The same entries by version, for exportSince; changed only with `entries` (setEntry, deleteEntry). */
  private readonly byVersion = new VersionOrder<RetainedEntry>();
  // Map order is recency order, so the oldest mark is forgotten first.
  private readonly marks = new Map<string, SetMark>();
  private readonly persistence: HubStatePersistence | undefined;
  private readonly maxSetMarks: number;
  private readonly shares: RetainedShares;
  /** Live key → what it counts for in the shares. */
  private readonly held = new Map<string, { holder: RetainedHolder; bytes: number }>();
  private importRefusals = 0;
  private last: Version = ZERO_VERSION;
  private pruned: Version = ZERO_VERSION;

  constructor(persistence?: HubStatePersistence, limits: RetainedStateLimits = {}) {
    this.persistence = persistence;
    this.shares = new RetainedShares({ ...DEFAULT_RETAINED_SHARE_LIMITS, ...(limits.maxKeys === undefined ? {} : { maxKeys: limits.maxKeys }), ...limits.shares });
    this.maxSetMarks = limits.maxSetMarks ?? DEFAULT_MAX_SET_MARKS;
    if (!persistence) return;
    const saved = persistence.load();
    for (const entry of saved.entries) this.put(entry);
    for (const mark of [...saved.setMarks].sort((a, b) => compareVersions(a.version, b.version))) this.marks.set(mark.origin, mark);
    this.last = maxVersion(saved.lastVersion, this.last);
    this.pruned = saved.prunedThrough;
  }

  /** The newest version this state holds or has handed out. */
  get lastVersion(): Version {
    return this.last;
  }

  get liveCount(): number {
    return this.shares.keys;
  }

  /** Live keys and bytes (key plus JSON value), in total and per machine (largest first, named by `nameOf`), for /metrics. */
  useReport(nameOf: (machine: string) => string): RetainedUseReport {
    const { keys, bytes, limits } = this.shares;
    const machines = this.shares.byMachine().map((m) => ({ ...m, name: m.machine === "" ? "(unknown)" : nameOf(m.machine) }));
    return { keys, bytes, maxKeys: limits.maxKeys, maxBytes: limits.maxBytes, machines, refusedOnImport: this.importRefusals };
  }

  /** The live entry for `key`, or undefined (never set, or deleted). */
  get(key: string): RetainedEntry | undefined {
    const entry = this.entries.get(key);
    return entry && entry.value !== null ? entry : undefined;
  }

  /** The version of the last write to `key`, a deletion included; undefined if it was never written (or its tombstone was pruned). */
  versionOf(key: string): Version | undefined {
    return this.entries.get(key)?.version;
  }

  *live(): IterableIterator<RetainedEntry> {
    for (const entry of this.entries.values()) if (entry.value !== null) yield entry;
  }

  /** The version a `set` from (origin, seq) was written at, when it was that origin's last one; undefined otherwise. */
  versionOfSet(origin: string, seq: number): Version | undefined {
    const mark = this.marks.get(origin);
    return mark?.seq === seq ? mark.version : undefined;
  }

  /** A server at a lower epoch than a write it already holds has been superseded: it must not write (fencing). */
  canWriteAt(epoch: number): boolean {
    return epoch >= this.last.epoch;
  }

  /** Whether a `set` from (origin, seq) was already applied, here or on the server this state came from. */
  isDuplicateSet(origin: string, seq: number): boolean {
    return seq <= (this.marks.get(origin)?.seq ?? 0);
  }

  /** Why `holder` may not write `value` at `key` (a share is full), or null; deletions always pass. */
  writeRefusal(key: string, value: unknown, holder: RetainedHolder, nameOf: (machine: string) => string = (m) => m): LimitReached | null {
    if (value === null) return null;
    return this.shares.refusal(holder, retainedBytes(key, value), this.held.get(key) ?? null, nameOf);
  }

  /**
   * Writes `value` (null deletes) at the next version in `epoch`, persisting
   * first; throws what persistence threw, leaving memory unchanged. Returns
   * the entry, or null when deleting a key that holds nothing (a no-op).
   * The caller checks `canWriteAt` first.
   */
  write(key: string, value: unknown, epoch: number, origin: string, seq: number, holder?: RetainedHolder): RetainedEntry | null {
    if (value === null && this.get(key) === undefined) return null;
    const version: Version = { epoch, seq: epoch === this.last.epoch ? this.last.seq + 1 : 1 };
    const entry: RetainedEntry = value === null || holder === undefined ? { key, value, version } : { key, value, version, holder };
    const mark: SetMark = { origin, seq: Math.max(seq, this.marks.get(origin)?.seq ?? 0), version };
    const removedMarks = this.marksToForget([mark]);
    this.persist({ entries: [entry], removedKeys: [], setMarks: [mark], removedMarks, lastVersion: version, prunedThrough: this.pruned });
    this.put(entry);
    this.putMark(mark, removedMarks);
    this.last = version;
    return entry;
  }

  /**
   * Entries and set marks changed after `since`, sorted by version, at most about `pageBytes` of them: a
   * whole state (up to 128 MiB) in one answer passed the peer port's 16 MiB frame, so the backup never
   * got its first copy, and its JSON held the main's event loop for a quarter second per question. A
   * page ends at an entry (`through` is its version, `more` says ask again); its set marks are those up
   * to it. Costs what it returns (version-order.ts), except for a complete snapshot, sent whole.
   */
  exportSince(since: Version, pageBytes = HUB_COPY_PAGE_BYTES): HubStateChanges {
    const complete = compareVersions(since, this.pruned) < 0;
    // The page stops the walk through the version order: a page costs what it returns, not the whole tail.
    const page = pageOf<RetainedEntry>(pageBytes, (e) => (this.held.get(e.key)?.bytes ?? e.key.length) + ENTRY_OVERHEAD_BYTES);
    const entries = complete ? this.byVersion.all().filter((e) => e.value !== null) : this.byVersion.after(since, page.fits);
    const more = page.more();
    const through = more ? entries.at(-1)!.version : this.last;
    const setMarks = [...this.marks.values()].filter((m) => compareVersions(m.version, since) > 0 && compareVersions(m.version, through) <= 0);
    return { since, through, complete, entries, setMarks, ...(more ? { more } : {}) };
  }

  /**
   * Applies changes exported by another server: an entry wins when its version
   * is newer than ours (so importing twice, or out of date, changes nothing).
   * All of it in one transaction. Returns the entries that changed (for fan-out).
   */
  import(changes: HubStateChanges): RetainedEntry[] {
    const newer = changes.entries.filter((e) => {
      const mine = this.entries.get(e.key);
      return !mine || compareVersions(e.version, mine.version) > 0;
    });
    const deleted: RetainedEntry[] = [];
    const removedKeys: string[] = [];
    if (changes.complete) {
      // A full snapshot: a key it does not list was deleted there and its tombstone pruned.
      const listed = new Set(changes.entries.map((e) => e.key));
      for (const [key, mine] of this.entries) {
        // Anything written here after the snapshot was taken stays.
        if (listed.has(key) || compareVersions(mine.version, changes.through) > 0) continue;
        if (mine.value !== null) deleted.push({ key, value: null, version: changes.through });
        else removedKeys.push(key);
      }
    }
    const marks = changes.setMarks.filter((m) => !this.isDuplicateSet(m.origin, m.seq));
    const removedMarks = this.marksToForget(marks);
    const lastVersion = maxVersion(this.last, changes.through);
    // Deletions first, so the room they give counts for the new entries.
    const { fits: changed, undo } = this.takeWithinShares([...deleted, ...newer]);
    if (changed.length + removedKeys.length + marks.length === 0 && compareVersions(lastVersion, this.last) === 0) return [];
    try {
      this.persist({ entries: changed, removedKeys, setMarks: marks, removedMarks, lastVersion, prunedThrough: this.pruned });
    } catch (error) {
      undo();
      throw error;
    }
    for (const entry of changed) this.setEntry(entry);
    for (const key of removedKeys) this.deleteEntry(key);
    for (const mark of marks) this.putMark(mark, []);
    for (const origin of removedMarks) this.marks.delete(origin);
    this.last = lastVersion;
    return changed;
  }

  /**
   * Forgets tombstones at or below `through`: call it with a version the
   * standby has confirmed, so every deletion reached it. A later export from
   * an older version becomes a complete snapshot.
   */
  pruneDeletedThrough(through: Version): number {
    const bound = compareVersions(through, this.last) < 0 ? through : this.last;
    const removedKeys = [...this.entries.values()]
      .filter((e) => e.value === null && compareVersions(e.version, bound) <= 0)
      .map((e) => e.key);
    const prunedThrough = maxVersion(this.pruned, bound);
    if (removedKeys.length === 0 && compareVersions(prunedThrough, this.pruned) === 0) return 0;
    this.persist({ entries: [], removedKeys, setMarks: [], removedMarks: [], lastVersion: this.last, prunedThrough });
    for (const key of removedKeys) this.deleteEntry(key);
    this.pruned = prunedThrough;
    return removedKeys.length;
  }

  private persist(change: HubStateChange): void {
    this.persistence?.apply(change);
  }

  private put(entry: RetainedEntry): void {
    const now = entry.value === null ? null : { holder: entry.holder ?? UNKNOWN_HOLDER, bytes: retainedBytes(entry.key, entry.value) };
    this.account(entry.key, this.held.get(entry.key) ?? null, now);
    this.setEntry(entry);
  }

  private setEntry(entry: RetainedEntry): void {
    this.entries.set(entry.key, entry);
    this.byVersion.set(entry);
  }

  private deleteEntry(key: string): void {
    this.entries.delete(key);
    this.byVersion.delete(key);
  }

  /**
   * The imported entries that fit the shares here, in order, each counted as it is taken: the copy
   * a backup keeps stays within the same bounds as the main's (a faulty or differently set main
   * cannot fill it). One that does not fit is not applied; a later version of its key may be.
   * `undo` gives the counts back if the change is then not persisted.
   */
  private takeWithinShares(entries: readonly RetainedEntry[]): { fits: RetainedEntry[]; undo: () => void } {
    const fits: RetainedEntry[] = [];
    const undo: (() => void)[] = [];
    for (const entry of entries) {
      const before = this.held.get(entry.key) ?? null;
      const now = entry.value === null ? null : { holder: entry.holder ?? UNKNOWN_HOLDER, bytes: retainedBytes(entry.key, entry.value) };
      if (now && this.shares.refusal(now.holder, now.bytes, before, (m) => m) !== null) {
        this.importRefusals++;
        continue;
      }
      fits.push(entry);
      this.account(entry.key, before, now);
      undo.push(() => this.account(entry.key, now, before));
    }
    return { fits, undo: () => undo.reverse().forEach((step) => step()) };
  }

  /** Moves the key's count in the shares from `before` to `now` (null: not live). */
  private account(key: string, before: { holder: RetainedHolder; bytes: number } | null, now: { holder: RetainedHolder; bytes: number } | null): void {
    if (before) this.shares.remove(before.holder, before.bytes);
    if (now) this.shares.add(now.holder, now.bytes);
    if (now) this.held.set(key, now);
    else this.held.delete(key);
  }

  private putMark(mark: SetMark, forget: readonly string[]): void {
    this.marks.delete(mark.origin);
    this.marks.set(mark.origin, mark);
    for (const origin of forget) this.marks.delete(origin);
  }

  /** The oldest marks to drop so that adding `incoming` keeps at most maxSetMarks. */
  private marksToForget(incoming: readonly SetMark[]): string[] {
    const fresh = new Set(incoming.map((m) => m.origin).filter((o) => !this.marks.has(o)));
    let excess = this.marks.size + fresh.size - this.maxSetMarks;
    const forget: string[] = [];
    const updated = new Set(incoming.map((m) => m.origin));
    for (const origin of this.marks.keys()) {
      if (excess <= 0) break;
      if (updated.has(origin)) continue;
      forget.push(origin);
      excess--;
    }
    return forget;
  }
}
