/**
 * exportSince answers from a version-ordered index (src/hub/version-order.ts): it must give
 * exactly what a scan and sort of every key gave, whatever happened before: writes, deletions
 * (tombstones), pruned tombstones (the complete snapshot), imports in and out of order,
 * a complete snapshot's deletions sharing one version, and the set marks.
 */
import { describe, expect, test } from "bun:test";
import type { Version } from "../../../src/hub/frames.ts";
import { compareVersions, RetainedState, ZERO_VERSION, type HubStateChanges, type RetainedEntry, type SetMark } from "../../../src/hub/retained-state.ts";
import { VersionOrder } from "../../../src/hub/version-order.ts";
import { Fuzz, FUZZ_SEED } from "../../support/fuzz.ts";

/** What exportSince answered before the index: every key scanned, filtered and sorted (stable, so ties keep the Map's order). */
function scanExport(state: RetainedState, since: Version): HubStateChanges {
  const inside = state as unknown as { entries: Map<string, RetainedEntry>; marks: Map<string, SetMark>; pruned: Version; last: Version };
  const complete = compareVersions(since, inside.pruned) < 0;
  const entries = [...inside.entries.values()]
    .filter((e) => (complete ? e.value !== null : compareVersions(e.version, since) > 0))
    .sort((a, b) => compareVersions(a.version, b.version));
  const setMarks = [...inside.marks.values()].filter((m) => compareVersions(m.version, since) > 0);
  return { since, through: inside.last, complete, entries, setMarks };
}

describe("exportSince", () => {
  test("a copy request returns the changes after its version, tombstones and set marks included", () => {
    const state = new RetainedState();
    state.write("a", 1, 1, "app", 1);
    state.write("b", 2, 1, "app", 2);
    const mark = state.lastVersion;
    state.write("a", 3, 1, "app", 3);
    state.write("b", null, 1, "other", 1);
    const changes = state.exportSince(mark);
    expect(changes.complete).toBe(false);
    expect(changes.entries).toEqual([
      { key: "a", value: 3, version: { epoch: 1, seq: 3 } },
      { key: "b", value: null, version: { epoch: 1, seq: 4 } },
    ]);
    expect(changes.setMarks).toEqual([
      { origin: "app", seq: 3, version: { epoch: 1, seq: 3 } },
      { origin: "other", seq: 1, version: { epoch: 1, seq: 4 } },
    ]);
    expect(state.exportSince(state.lastVersion).entries).toEqual([]);
  });

  test("a large state comes in pages: each ends at an entry with its set marks, and the pages imported in turn make the same copy", () => {
    const state = new RetainedState();
    const pad = "p".repeat(1000);
    for (let i = 1; i <= 40; i++) state.write(`k${i % 25}`, { i, pad }, 1, `app${i % 3}`, i);
    state.write("k3", null, 1, "app0", 41);
    const pages = [];
    const copy = new RetainedState();
    let since = ZERO_VERSION;
    for (let n = 0; n < 100; n++) {
      const page = state.exportSince(since, 5_000);
      pages.push(page);
      expect(page.setMarks.every((m) => compareVersions(m.version, since) > 0 && compareVersions(m.version, page.through) <= 0)).toBe(true);
      copy.import(page);
      if (!page.more) break;
      expect(page.through).toEqual(page.entries.at(-1)!.version);
      since = page.through;
    }
    expect(pages.length).toBeGreaterThan(3);
    expect(pages.at(-1)!.more).toBeUndefined();
    expect(pages.flatMap((p) => p.entries)).toEqual(state.exportSince(ZERO_VERSION).entries);
    expect(copy.exportSince(ZERO_VERSION)).toEqual(state.exportSince(ZERO_VERSION));
    expect(copy.lastVersion).toEqual(state.lastVersion);
  });

  test("an entry larger than a page still goes, alone", () => {
    const state = new RetainedState();
    state.write("big", "x".repeat(20_000), 1, "app", 1);
    state.write("small", 1, 1, "app", 2);
    const first = state.exportSince(ZERO_VERSION, 5_000);
    expect(first.entries.map((e) => e.key)).toEqual(["big"]);
    expect(first.more).toBe(true);
    expect(state.exportSince(first.through, 5_000).entries.map((e) => e.key)).toEqual(["small"]);
  });

  test("after pruning, an older copy mark gets a complete snapshot of the live keys", () => {
    const state = new RetainedState();
    state.write("a", 1, 1, "app", 1);
    state.write("b", 2, 1, "app", 2);
    state.write("b", null, 1, "app", 3);
    state.pruneDeletedThrough(state.lastVersion);
    state.write("b", 4, 1, "app", 4);
    expect(state.exportSince(ZERO_VERSION)).toEqual({
      since: ZERO_VERSION,
      through: { epoch: 1, seq: 4 },
      complete: true,
      entries: [
        { key: "a", value: 1, version: { epoch: 1, seq: 1 } },
        { key: "b", value: 4, version: { epoch: 1, seq: 4 } },
      ],
      setMarks: [{ origin: "app", seq: 4, version: { epoch: 1, seq: 4 } }],
    });
  });

  test(`answers as a scan of every key did, over random histories (FUZZ_SEED=${JSON.stringify(FUZZ_SEED)})`, () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} retained export`);
    for (let run = 0; run < 40; run++) {
      // Two servers copying each other, each writing in its own epochs, as a main and its backup do across failovers.
      const servers = [new RetainedState(), new RetainedState()];
      const epochs = [1, 2];
      const keys = Array.from({ length: 2 + fuzz.int(12) }, (_, i) => `k${i}`);
      const seen: Version[] = [ZERO_VERSION];
      let seq = 0;
      for (let step = 0; step < 150; step++) {
        const at = fuzz.int(2);
        const here = servers[at]!;
        const there = servers[1 - at]!;
        const roll = fuzz.int(20);
        if (roll < 10) {
          const value = fuzz.int(4) === 0 ? null : fuzz.int(100);
          if (here.canWriteAt(epochs[at]!)) here.write(fuzz.pick(keys), value, epochs[at]!, `o${fuzz.int(5)}`, ++seq);
        } else if (roll < 14) {
          here.import(there.exportSince(fuzz.pick(seen)));
        } else if (roll < 16) {
          here.pruneDeletedThrough(fuzz.pick(seen));
        } else if (roll < 17) {
          epochs[at] = Math.max(...epochs) + 1;
        } else {
          // Out of order: an older copy, or a snapshot from a server ahead, lands late.
          here.import(there.exportSince(ZERO_VERSION));
        }
        seen.push(here.lastVersion, there.lastVersion);
        for (const server of servers) {
          for (const since of [ZERO_VERSION, fuzz.pick(seen), server.lastVersion, { epoch: fuzz.int(5), seq: fuzz.int(20) }]) {
            expect(server.exportSince(since)).toEqual(scanExport(server, since));
          }
        }
      }
    }
  });

  test("the index stays within bounds when one key is written over and over with no one asking", () => {
    const order = new VersionOrder<RetainedEntry>();
    for (let seq = 1; seq <= 10_000; seq++) order.set({ key: "only", value: seq, version: { epoch: 1, seq } });
    expect(order.held).toBeLessThanOrEqual(65);
    expect(order.after(ZERO_VERSION)).toEqual([{ key: "only", value: 10_000, version: { epoch: 1, seq: 10_000 } }]);
  });
});
