/**
 * The retained entries in version order, so "what changed since V" (retained-state.ts
 * exportSince) costs what it returns instead of a scan and a sort of every key: the standby
 * asks on every heartbeat (docs/design.md §Data Hub).
 *
 * Entries are kept in an array, appended as they are written (a write's version is the newest,
 * so the array stays sorted), with a key's older entries left in place as stale and dropped in
 * bulk once they outnumber the current ones. An entry arriving out of order (an import, a load)
 * only marks the array for one sort before the next read.
 *
 * Equal versions (a complete snapshot's deletions share its `through`) keep the order in which
 * their keys arrived, as a Map of the entries would list them: same answers as a full scan.
 */
import type { Version } from "./frames.ts";

/** What the order needs of an entry. */
type Versioned = { readonly key: string; readonly version: Version };

export function compareVersions(a: Version, b: Version): number {
  return a.epoch !== b.epoch ? a.epoch - b.epoch : a.seq - b.seq;
}

/** An entry and its key's place in arrival order (kept while the key is present). */
type Item<E> = { readonly entry: E; readonly arrival: number };

function compareItems<E extends Versioned>(a: Item<E>, b: Item<E>): number {
  return compareVersions(a.entry.version, b.entry.version) || a.arrival - b.arrival;
}

/** Stale items tolerated before a compaction, whatever the number of keys. */
const MIN_STALE_BEFORE_COMPACTION = 64;

export class VersionOrder<E extends Versioned> {
  #items: Item<E>[] = [];
  readonly #current = new Map<string, Item<E>>();
  #sorted = true;
  #stale = 0;
  #arrivals = 0;

  /** Items held, stale ones included (at most about twice the keys). */
  get held(): number {
    return this.#items.length;
  }

  /** `entry` becomes its key's current entry. */
  set(entry: E): void {
    const before = this.#current.get(entry.key);
    const item: Item<E> = { entry, arrival: before ? before.arrival : ++this.#arrivals };
    this.#current.set(entry.key, item);
    const last = this.#items.at(-1);
    if (last && compareItems(last, item) > 0) this.#sorted = false;
    this.#items.push(item);
    if (before) this.#staled();
  }

  /** The key is gone (a pruned tombstone); written again later, it arrives anew. */
  delete(key: string): void {
    if (this.#current.delete(key)) this.#staled();
  }

  /** Current entries with a version after `since`, oldest first; the first for which `fits` says no ends the list (a page). */
  after(since: Version, fits: (entry: E) => boolean = () => true): E[] {
    const items = this.#ordered();
    let low = 0;
    let high = items.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareVersions(items[mid]!.entry.version, since) > 0) high = mid;
      else low = mid + 1;
    }
    const found: E[] = [];
    for (let i = low; i < items.length; i++) {
      const item = items[i]!;
      if (!this.#isCurrent(item)) continue;
      if (!fits(item.entry)) break;
      found.push(item.entry);
    }
    return found;
  }

  /** Every current entry, oldest first. */
  all(): E[] {
    return this.#ordered()
      .filter((item) => this.#isCurrent(item))
      .map((item) => item.entry);
  }

  #isCurrent(item: Item<E>): boolean {
    return this.#current.get(item.entry.key) === item;
  }

  /** One more stale item; past the bound they are dropped, so the array stays within twice the keys (amortised). */
  #staled(): void {
    if (++this.#stale <= Math.max(MIN_STALE_BEFORE_COMPACTION, this.#current.size)) return;
    this.#items = this.#items.filter((item) => this.#isCurrent(item));
    this.#stale = 0;
  }

  #ordered(): Item<E>[] {
    if (!this.#sorted) {
      this.#items.sort(compareItems);
      this.#sorted = true;
    }
    return this.#items;
  }
}
