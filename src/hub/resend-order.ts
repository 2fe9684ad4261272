/**
 * Where a resent `set` stands among the writes to its key (HubCore).
 *
 * After a switch, nodes resend the sets the previous hub acknowledged
 * (acked-writes.ts), each naming the version that hub gave it (`acked`).
 * Versions order every write across servers (epoch first), so a resend
 * applies only when its `acked` version is newer than the write it would
 * overwrite. The new hub writes it at a version of its own, though, so it
 * remembers the `acked` version behind each key it wrote from a resend: two
 * nodes' resends to one key may arrive in either order, and the later write
 * (as the first hub ordered them) must still win.
 *
 * Bounded by keys (the least recently written is forgotten first); a forgotten
 * key compares by its own version, which only makes a later resend lose to it.
 */
import { compareVersions } from "./retained-state.ts";
import type { Version } from "./frames.ts";

export const DEFAULT_MAX_RESENT_KEYS = 10_000;

export class ResendOrder {
  private readonly byKey = new Map<string, { readonly written: Version; readonly acked: Version }>();

  constructor(private readonly maxKeys = DEFAULT_MAX_RESENT_KEYS) {}

  /** Whether a set acknowledged at `acked` elsewhere is older than the key's current write (at `current`, tombstones included). */
  isSuperseded(key: string, acked: Version, current: Version | undefined): boolean {
    if (current === undefined) return false;
    const resent = this.byKey.get(key);
    const order = resent && compareVersions(resent.written, current) === 0 ? resent.acked : current;
    return compareVersions(acked, order) <= 0;
  }

  /** A resend acknowledged at `acked` elsewhere was written here at `written`. */
  record(key: string, written: Version, acked: Version): void {
    this.byKey.delete(key);
    this.byKey.set(key, { written, acked });
    if (this.byKey.size > Math.max(1, this.maxKeys)) this.byKey.delete(this.byKey.keys().next().value as string);
  }
}
