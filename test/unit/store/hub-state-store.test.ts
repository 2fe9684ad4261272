import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HubCore, ZERO_VERSION } from "../../../src/hub/hub-core.ts";
import type { HubStateChange } from "../../../src/hub/retained-state.ts";
import { databasePath, openDatabase } from "../../../src/store/database.ts";
import { HubStateStore } from "../../../src/store/hub-state-store.ts";

let dataDir: string;
const open: Database[] = [];

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "understudy-hub-state-"));
});
afterEach(() => {
  for (const db of open.splice(0)) db.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function openStore(now = 1_700_000_000_000) {
  const db = openDatabase(databasePath(dataDir));
  open.push(db);
  return { db, store: new HubStateStore(db, { now: () => now }) };
}

function activeHub(store: HubStateStore, epoch = 1) {
  const hub = new HubCore({ epoch, writable: true, persistence: store });
  const frames: unknown[] = [];
  hub.attach("w", (f) => frames.push(f));
  hub.receive("w", { type: "hello", id: "w", name: "w", kind: "app" });
  return { hub, frames, set: (key: string, value: unknown, origin: string, seq: number) => hub.receive("w", { type: "set", key, value, origin, seq }) };
}

describe("retained state survives a restart", () => {
  test("entries, deletions, versions and set marks are reloaded", () => {
    const first = openStore();
    const before = activeHub(first.store, 4);
    before.set("show/title", { text: "Evening news", size: 3 }, "x", 1);
    before.set("tally/cam1", "red", "x", 2);
    before.set("tally/cam1", null, "y", 7);
    first.db.close();
    open.length = 0;

    const second = openStore();
    const after = activeHub(second.store, 4);
    expect(after.hub.retainedEntry("show/title")).toEqual({ key: "show/title", value: { text: "Evening news", size: 3 }, version: { epoch: 4, seq: 1 }, holder: { machine: "w", origin: "x" } });
    expect(after.hub.retainedEntry("tally/cam1")).toBeUndefined();
    expect(after.hub.lastVersion).toEqual({ epoch: 4, seq: 3 });
    // The deletion is still there to hand to a standby.
    expect(after.hub.exportStateSince({ epoch: 4, seq: 2 }).entries).toEqual([{ key: "tally/cam1", value: null, version: { epoch: 4, seq: 3 } }]);
    // A set resent after the restart is recognised by its (origin, seq).
    after.set("show/title", "stale", "x", 1);
    expect(after.hub.retainedEntry("show/title")?.value).toEqual({ text: "Evening news", size: 3 });
    expect(after.frames.at(-1)).toEqual({ type: "ack", origin: "x", seq: 1 });
    // New writes continue after the last version.
    after.set("show/title", "Late news", "z", 1);
    expect(after.hub.retainedEntry("show/title")?.version).toEqual({ epoch: 4, seq: 4 });
  });

  test("imported changes and pruning are persisted too", () => {
    const source = new HubCore({ epoch: 2, writable: true });
    source.attach("w", () => {});
    source.receive("w", { type: "hello", id: "w", name: "w", kind: "app" });
    source.receive("w", { type: "set", key: "a", value: 1, origin: "o", seq: 1 });
    source.receive("w", { type: "set", key: "b", value: 1, origin: "o", seq: 2 });
    source.receive("w", { type: "set", key: "b", value: null, origin: "o", seq: 3 });
    const first = openStore();
    const standby = new HubCore({ epoch: 2, persistence: first.store });
    standby.importState(source.exportStateSince(ZERO_VERSION));
    expect(standby.pruneDeletedThrough(standby.lastVersion)).toBe(1);
    first.db.close();
    open.length = 0;

    const reloaded = new HubCore({ epoch: 2, persistence: openStore().store });
    expect(reloaded.retainedEntry("a")?.value).toBe(1);
    expect(reloaded.lastVersion).toEqual({ epoch: 2, seq: 3 });
    expect(reloaded.exportStateSince(ZERO_VERSION).complete).toBe(true); // the pruned floor was kept
  });

  test("the updated column records wall-clock time for people", () => {
    const { db, store } = openStore(1234);
    activeHub(store).set("k", 1, "o", 1);
    expect(db.query("SELECT key, value, epoch, seq, updated FROM hub_entries").all()).toEqual([{ key: "k", value: "1", epoch: 1, seq: 1, updated: 1234 }]);
  });
});

describe("one transaction per write", () => {
  test("each set is exactly one apply, and HubCore applies nothing else", () => {
    const { store } = openStore();
    const applied: HubStateChange[] = [];
    const counting = { load: () => store.load(), apply: (c: HubStateChange) => (applied.push(c), store.apply(c)) };
    const hub = new HubCore({ epoch: 1, writable: true, persistence: counting });
    hub.attach("w", () => {});
    hub.receive("w", { type: "hello", id: "w", name: "w", kind: "app" });
    for (let seq = 1; seq <= 5; seq++) hub.receive("w", { type: "set", key: `k${seq % 2}`, value: seq, origin: "o", seq });
    hub.receive("w", { type: "pub", topic: "t", data: 1, origin: "o", seq: 6 }); // messages are not stored
    expect(applied).toHaveLength(5);
  });

  test("a change that fails half-way leaves nothing of itself behind", () => {
    const { db, store } = openStore();
    store.apply({
      entries: [{ key: "before", value: 1, version: { epoch: 1, seq: 1 } }],
      removedKeys: [],
      setMarks: [],
      removedMarks: [],
      lastVersion: { epoch: 1, seq: 1 },
      prunedThrough: ZERO_VERSION,
    });
    const broken: HubStateChange = {
      entries: [
        { key: "first", value: 1, version: { epoch: 1, seq: 2 } },
        { key: "second", value: 10n, version: { epoch: 1, seq: 3 } }, // JSON.stringify throws on a BigInt
      ],
      removedKeys: ["before"],
      setMarks: [{ origin: "o", seq: 3, version: { epoch: 1, seq: 3 } }],
      removedMarks: [],
      lastVersion: { epoch: 1, seq: 3 },
      prunedThrough: ZERO_VERSION,
    };
    expect(() => store.apply(broken)).toThrow();
    expect(db.inTransaction).toBe(false);
    const state = store.load();
    expect(state.entries.map((e) => e.key)).toEqual(["before"]);
    expect(state.setMarks).toEqual([]);
    expect(state.lastVersion).toEqual({ epoch: 1, seq: 1 });
  });
});
