/**
 * HL2, the standby copy (docs/design.md §Lanes and replication, §Invariants): a
 * write the serving backup held while the main waited to be switched back, and
 * that the main could have copied (both running, the link between them whole,
 * one network key, the main still waiting, for COPY_WINDOW_HEARTBEATS after),
 * is on the main at the end, whatever became of its publisher or the backup.
 * It only watches: it samples the backup's retained state while the main waits.
 */
import type { Version } from "../../src/hub/frames.ts";
import { compareVersions, ZERO_VERSION } from "../../src/hub/retained-state.ts";
import type { HubCore } from "../../src/hub/hub-core.ts";
import type { World } from "./world.ts";

/** The standby copy asks every heartbeat: a question may wait a period, its dial another, then the wire. */
export const COPY_WINDOW_HEARTBEATS = 4;

type Snapshot = { readonly t: number; readonly entries: ReadonlyMap<string, { version: Version; value: string }> };

export class StandbyCopyCheck {
  /** Since when the main could copy from the backup without a break (null: it cannot now). */
  #healthySince: number | null = null;
  #lastSample = -Infinity;
  /** Snapshots not yet a window old. */
  #pending: Snapshot[] = [];
  /** Per key, the newest version the main owes (a snapshot a whole window old). */
  readonly #owed = new Map<string, { version: Version; value: string; t: number }>();
  /** Keys HL2 judged at the end. */
  judged = 0;

  constructor(
    private readonly world: World,
    private readonly keyOf: (name: string) => number,
  ) {}

  /** Called every heartbeat from the sim's loop, with each server's hub core (null while it is down). */
  sample(main: HubCore | null, backup: HubCore | null): void {
    const w = this.world;
    const now = w.now();
    const h = w.cfg.timings.heartbeatMs;
    // A late sample (the sim's loop was stopped) cannot vouch for what happened in between.
    const gap = now - this.#lastSample > 1.5 * h;
    this.#lastSample = now;
    const healthy = !gap && main !== null && backup !== null && this.#canCopy();
    if (!healthy) {
      this.#healthySince = null;
      this.#pending = [];
      return;
    }
    this.#healthySince ??= now;
    const window = COPY_WINDOW_HEARTBEATS * h + 4 * w.cfg.latency[1];
    while (this.#pending.length > 0 && now - this.#pending[0]!.t >= window) this.#owe(this.#pending.shift()!);
    const entries = new Map(backup.exportStateSince(ZERO_VERSION).entries.filter((e) => e.value !== null).map((e) => [e.key, { version: e.version, value: JSON.stringify(e.value) }]));
    this.#pending.push({ t: now, entries });
  }

  #canCopy(): boolean {
    const w = this.world;
    const [m, b] = [w.node("main"), w.node("backup")];
    if (!m.state || !b.state || m.frozen || b.frozen) return false;
    if (m.state.role !== "main" || m.state.phase.kind !== "standby" || b.serving === null) return false;
    if (this.keyOf("main") !== this.keyOf("backup")) return false;
    return [w.linkState("main", "backup"), w.linkState("backup", "main")].every((l) => !l.cut && l.loss === 0 && l.extraDelay === 0);
  }

  #owe(s: Snapshot): void {
    for (const [key, e] of s.entries) {
      const had = this.#owed.get(key);
      if (!had || compareVersions(e.version, had.version) > 0) this.#owed.set(key, { ...e, t: s.t });
    }
  }

  /** At the end: every owed write is on the main (its version or a newer one, or the same value taken again). */
  check(main: HubCore | null): string[] {
    if (main === null) return [];
    const lost: string[] = [];
    for (const [key, owed] of this.#owed) {
      this.judged += 1;
      const mine = main.retainedEntry(key);
      if (mine && (compareVersions(mine.version, owed.version) >= 0 || JSON.stringify(mine.value) === owed.value)) continue;
      lost.push(`${key}@${owed.version.epoch}:${owed.version.seq} (on the backup at t=${owed.t})`);
    }
    return lost.length === 0 ? [] : [`HL2 the main lacks ${lost.length} writes the backup held while the main waited to be switched back and could copy: ${lost.slice(0, 4).join(", ")}`];
  }
}
