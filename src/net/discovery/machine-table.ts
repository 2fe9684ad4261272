/**
 * The machines this one has discovered, keyed by DNS-SD service instance,
 * with when each was last vouched for. Pure: time is the `now` passed in.
 *
 * A machine leaves the table when its service goes down (`gone`: a goodbye or
 * the records' TTL ran out) or when nothing has vouched for it for
 * `forgetAfterMs` (`expire`): the discovery adapter re-confirms, on every
 * sweep, each service dnssd still holds, so this catches a browser that lost
 * track (restarted after an error, a resolver that gave up without a word).
 */
import type { Sighting } from "./sighting.ts";
import type { MachineAdvert } from "./txt.ts";

/** One row of the "discovered machines" list the UI offers. */
export interface DiscoveredMachine extends MachineAdvert {
  addresses: string[];
  port: number;
  /** Its network key fingerprint differs from ours: it cannot join this network as it is. */
  keyMismatch: boolean;
  /** Clock time (ms) it was last vouched for. */
  lastSeen: number;
}

export const DEFAULT_FORGET_AFTER_MS = 30_000;
export const MIN_FORGET_AFTER_MS = 500;
export const MAX_FORGET_AFTER_MS = 3_600_000;
/** A link full of fake services must not grow memory without bound; real studios have tens of machines. */
export const MAX_SERVICES = 512;

export function clampForgetAfter(ms: number = DEFAULT_FORGET_AFTER_MS): number {
  if (!Number.isFinite(ms)) return DEFAULT_FORGET_AFTER_MS;
  return Math.min(MAX_FORGET_AFTER_MS, Math.max(MIN_FORGET_AFTER_MS, Math.round(ms)));
}

interface Entry {
  sighting: Sighting;
  lastSeen: number;
}

/** Whose point of view the list is from: ourselves are left out, keyMismatch compares with our fingerprint. */
export interface Viewpoint {
  id: string;
  fingerprint: string;
}

export class MachineTable {
  readonly forgetAfterMs: number;
  private readonly entries = new Map<string, Entry>();

  constructor(forgetAfterMs?: number) {
    this.forgetAfterMs = clampForgetAfter(forgetAfterMs);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Records that `sighting` was vouched for at `now`. Returns true when what
   * `list` shows changed (a new service or new details), false when only
   * lastSeen moved or the table is full.
   */
  seen(sighting: Sighting, now: number): boolean {
    const before = this.entries.get(sighting.service);
    if (!before && this.entries.size >= MAX_SERVICES) return false;
    this.entries.set(sighting.service, { sighting, lastSeen: Math.max(now, before?.lastSeen ?? now) });
    return !before || !sameSighting(before.sighting, sighting);
  }

  /** The service went down. Returns true when it was known. */
  gone(service: string): boolean {
    return this.entries.delete(service);
  }

  /** Forgets every service not vouched for within forgetAfterMs of `now`; returns their names. */
  expire(now: number): string[] {
    const forgotten: string[] = [];
    for (const [service, entry] of this.entries) {
      if (now - entry.lastSeen > this.forgetAfterMs) {
        this.entries.delete(service);
        forgotten.push(service);
      }
    }
    return forgotten;
  }

  clear(): void {
    this.entries.clear();
  }

  /**
   * One row per machine id, as seen from `self`: ourselves excluded, the most
   * recently vouched-for service of each id kept, sorted by name then id.
   */
  list(self: Viewpoint): DiscoveredMachine[] {
    const newest = new Map<string, Entry>();
    for (const entry of this.entries.values()) {
      const id = entry.sighting.advert.id;
      if (id === self.id) continue;
      const held = newest.get(id);
      if (!held || entry.lastSeen > held.lastSeen || (entry.lastSeen === held.lastSeen && entry.sighting.service < held.sighting.service)) {
        newest.set(id, entry);
      }
    }
    return [...newest.values()]
      .map(({ sighting, lastSeen }) => ({
        ...sighting.advert,
        addresses: [...sighting.addresses],
        port: sighting.port,
        keyMismatch: sighting.advert.fingerprint !== self.fingerprint,
        lastSeen,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

function sameSighting(a: Sighting, b: Sighting): boolean {
  return (
    a.port === b.port &&
    a.addresses.length === b.addresses.length &&
    a.addresses.every((x, i) => x === b.addresses[i]) &&
    (Object.keys(a.advert) as (keyof MachineAdvert)[]).every((k) => a.advert[k] === b.advert[k])
  );
}
