import { describe, expect, test } from "bun:test";
import { HubCore, ZERO_VERSION } from "../../../src/hub/hub-core.ts";
import type { HubStateChange, HubStatePersistence, PersistedHubState } from "../../../src/hub/retained-state.ts";
import { DirectConnection, FakeHubServer } from "./hub-harness.ts";

const set = (key: string, value: unknown, origin: string, seq: number) => ({ type: "set", key, value, origin, seq }) as const;

/** A HubCore with one introduced connection "w" that writes. */
function hubWith(options: ConstructorParameters<typeof HubCore>[0] = {}) {
  const hub = new HubCore({ epoch: 1, writable: true, ...options });
  const frames: unknown[] = [];
  hub.attach("w", (f) => frames.push(f));
  hub.receive("w", { type: "hello", id: "w", name: "w", kind: "app" });
  return { hub, frames, write: (key: string, value: unknown, origin = "o", seq = nextSeq()) => hub.receive("w", set(key, value, origin, seq)) };
}
/** What hubWith's writes are held as: machine "w", app (origin) "o". */
const held = { holder: { machine: "w", origin: "o" } };
let counter = 0;
const nextSeq = () => ++counter;

/** Persistence in memory that records each change, as the SQLite store would apply it. */
class MemoryPersistence implements HubStatePersistence {
  readonly changes: HubStateChange[] = [];
  failNext = false;
  constructor(private readonly saved: PersistedHubState = { entries: [], setMarks: [], lastVersion: ZERO_VERSION, prunedThrough: ZERO_VERSION }) {}
  load(): PersistedHubState {
    return this.saved;
  }
  apply(change: HubStateChange): void {
    if (this.failNext) {
      this.failNext = false;
      throw new Error("disk full");
    }
    this.changes.push(change);
  }
}

describe("retained values", () => {
  test("set, get and delete, with versions (epoch, seq)", () => {
    const server = new FakeHubServer({ epoch: 3, writable: true });
    const a = new DirectConnection(server, "a");
    a.send(set("show/title", "Evening news", "o", 1));
    a.send(set("show/title", "Late news", "o", 2));
    a.send({ type: "get", key: "show/title", id: "g1" });
    expect(a.of("value")).toEqual([{ type: "value", key: "show/title", value: "Late news", version: { epoch: 3, seq: 2 }, id: "g1" }]);
    a.send(set("show/title", null, "o", 3));
    a.send({ type: "get", key: "show/title", id: "g2" });
    expect(a.of("value")[1]).toEqual({ type: "value", key: "show/title", value: null, version: { epoch: 0, seq: 0 }, id: "g2" });
    expect(a.of("ack").map((x) => x.seq)).toEqual([1, 2, 3]);
  });

  test("a new epoch starts its seq at 1 and orders after the old one", () => {
    const { hub, write } = hubWith({ epoch: 1 });
    write("k", 1);
    write("k", 2);
    hub.setEpoch(2);
    write("k", 3);
    expect(hub.retainedEntry("k")!.version).toEqual({ epoch: 2, seq: 1 });
    expect(hub.lastVersion).toEqual({ epoch: 2, seq: 1 });
  });

  test("a change goes to matching subscriptions as one frame; a new subscription starts with current values", () => {
    const server = new FakeHubServer({ epoch: 1, writable: true });
    const s1 = new DirectConnection(server, "s1");
    const s2 = new DirectConnection(server, "s2");
    s1.send({ type: "sub", filter: "tally/#" });
    s2.send({ type: "sub", filter: "tally/+" });
    const fanouts = server.hub.receive("s1", set("tally/cam1", "red", "o", 1));
    expect(fanouts).toEqual([{ frame: { type: "value", key: "tally/cam1", value: "red", version: { epoch: 1, seq: 1 } }, to: ["s1", "s2"] }]);
    const late = new DirectConnection(server, "late");
    late.send({ type: "sub", filter: "tally/#" });
    expect(late.of("value")).toEqual([{ type: "value", key: "tally/cam1", value: "red", version: { epoch: 1, seq: 1 } }]);
  });

  test("a set resent after a switch is acked but not applied again", () => {
    const { hub, frames, write } = hubWith();
    write("k", "first", "x", 5);
    write("k", "second", "y", 1);
    write("k", "first", "x", 5); // resent: must not undo y's later write
    expect(hub.retainedEntry("k")!.value).toBe("second");
    expect(frames.filter((f) => (f as { type: string }).type === "ack")).toHaveLength(3);
  });

  test("the number of live keys is bounded; deleting makes room", () => {
    const server = new FakeHubServer({ epoch: 1, writable: true, limits: { maxRetainedKeys: 2 } });
    const a = new DirectConnection(server, "a");
    a.send(set("a", 1, "o", 1));
    a.send(set("b", 1, "o", 2));
    a.send(set("c", 1, "o", 3));
    a.send(set("a", 2, "o", 4)); // overwriting is fine
    expect(a.of("error").map((e) => [e.code, e.ref?.key])).toEqual([["LIMIT_REACHED", "c"]]);
    a.send(set("b", null, "o", 5));
    a.send(set("c", 1, "o", 6));
    expect(a.of("error")).toHaveLength(1);
  });
});

describe("handing state to the standby and back", () => {
  test("export since a version lists only later changes, in version order, deletions included", () => {
    const { hub, write } = hubWith();
    write("a", 1);
    write("b", 1);
    const mark = hub.lastVersion;
    write("c", 1);
    write("a", 2);
    write("b", null);
    const changes = hub.exportStateSince(mark);
    expect(changes.entries).toEqual([
      { key: "c", value: 1, version: { epoch: 1, seq: 3 }, ...held },
      { key: "a", value: 2, version: { epoch: 1, seq: 4 }, ...held },
      { key: "b", value: null, version: { epoch: 1, seq: 5 } },
    ]);
    expect(changes.through).toEqual({ epoch: 1, seq: 5 });
    expect(changes.complete).toBe(false);
    expect(hub.exportStateSince(hub.lastVersion).entries).toEqual([]);
  });

  test("import: newer versions win, so importing twice or out of date changes nothing", () => {
    const main = hubWith();
    main.write("a", 1);
    main.write("b", 1);
    const standby = new HubCore({ epoch: 1 });
    const all = main.hub.exportStateSince(ZERO_VERSION);
    expect(standby.importState(all)).toEqual([]); // no subscribers, nothing to push
    expect(standby.retainedEntry("a")?.value).toBe(1);
    main.write("a", 2);
    standby.importState(main.hub.exportStateSince(all.through));
    standby.importState(all); // stale: ignored
    expect(standby.retainedEntry("a")).toEqual({ key: "a", value: 2, version: { epoch: 1, seq: 3 }, ...held });
    expect(standby.lastVersion).toEqual(main.hub.lastVersion);
  });

  test("failover and failback: the main gets the backup's changes, then writes after them", () => {
    const main = hubWith({ epoch: 1 });
    main.write("rundown", "v1");
    main.write("doomed", true);
    const backup = hubWith({ epoch: 1, writable: false });
    backup.hub.importState(main.hub.exportStateSince(ZERO_VERSION));
    // Main dies; the backup takes over at epoch 2.
    main.hub.setWritable(false);
    backup.hub.setEpoch(2);
    backup.hub.setWritable(true);
    backup.write("rundown", "v2");
    backup.write("doomed", null);
    // Main returns: copies what changed since its own last version, then takes over at epoch 3.
    main.hub.importState(backup.hub.exportStateSince(main.hub.lastVersion));
    expect(main.hub.retainedEntry("rundown")).toEqual({ key: "rundown", value: "v2", version: { epoch: 2, seq: 1 }, ...held });
    expect(main.hub.retainedEntry("doomed")).toBeUndefined();
    main.hub.setEpoch(3);
    main.hub.setWritable(true);
    main.write("rundown", "v3");
    expect(main.hub.retainedEntry("rundown")!.version).toEqual({ epoch: 3, seq: 1 });
  });

  test("set marks travel with the state: a set resent to the new server is not applied twice", () => {
    const main = hubWith({ epoch: 1 });
    main.write("k", "from x", "x", 5); // ack lost when the main died
    main.write("k", "from y", "y", 1);
    const backup = hubWith({ epoch: 2 });
    backup.hub.importState(main.hub.exportStateSince(ZERO_VERSION));
    backup.write("k", "from x", "x", 5); // x's node resends
    expect(backup.hub.retainedEntry("k")!.value).toBe("from y");
    // The ack names the version the set was written at on the main (its set mark travelled with it).
    expect(backup.frames.at(-1)).toEqual({ type: "ack", origin: "x", seq: 5, version: { epoch: 1, seq: 1 } });
  });

  test("a repeated set is acked with its version while it is its origin's last one, without one after", () => {
    const hub = hubWith({ epoch: 1 });
    hub.write("a", "1", "x", 1);
    hub.write("b", "2", "x", 2);
    hub.write("b", "2", "x", 2); // its first ack was lost: the node sends it again
    expect(hub.frames.at(-1)).toEqual({ type: "ack", origin: "x", seq: 2, version: { epoch: 1, seq: 2 } });
    hub.write("a", "1", "x", 1);
    expect(hub.frames.at(-1)).toEqual({ type: "ack", origin: "x", seq: 1 });
  });

  test("imported changes reach subscribers of the importing hub", () => {
    const main = hubWith();
    main.write("tally/cam1", "red");
    const server = new FakeHubServer({ epoch: 1 });
    const s = new DirectConnection(server, "s");
    s.send({ type: "sub", filter: "tally/#" });
    server.dispatch(server.hub.importState(main.hub.exportStateSince(ZERO_VERSION)));
    expect(s.of("value").map((v) => v.value)).toEqual(["red"]);
  });

  test("tombstones the standby confirmed are pruned; an older standby then gets a complete snapshot", () => {
    const main = hubWith();
    main.write("keep", 1);
    main.write("gone", 1);
    const stale = new HubCore({ epoch: 1 });
    stale.importState(main.hub.exportStateSince(ZERO_VERSION));
    main.write("gone", null);
    main.write("new", 1);
    expect(main.hub.pruneDeletedThrough(main.hub.lastVersion)).toBe(1);
    const snapshot = main.hub.exportStateSince(stale.lastVersion);
    expect(snapshot.complete).toBe(true);
    expect(snapshot.entries.map((e) => e.key).sort()).toEqual(["keep", "new"]);
    stale.importState(snapshot);
    expect(stale.retainedEntry("gone")).toBeUndefined();
    expect(stale.retainedEntry("new")?.value).toBe(1);
    expect(main.hub.exportStateSince(main.hub.lastVersion).complete).toBe(false);
  });
});

describe("persistence", () => {
  test("every set is one change, persisted before the ack; state is loaded at start", () => {
    const persistence = new MemoryPersistence();
    const { write } = hubWith({ persistence });
    write("a", { x: 1 }, "o", 1);
    expect(persistence.changes).toEqual([
      {
        entries: [{ key: "a", value: { x: 1 }, version: { epoch: 1, seq: 1 }, ...held }],
        removedKeys: [],
        setMarks: [{ origin: "o", seq: 1, version: { epoch: 1, seq: 1 } }],
        removedMarks: [],
        lastVersion: { epoch: 1, seq: 1 },
        prunedThrough: ZERO_VERSION,
      },
    ]);
    const reloaded = new HubCore({
      epoch: 1,
      persistence: new MemoryPersistence({
        entries: [{ key: "a", value: { x: 1 }, version: { epoch: 1, seq: 1 } }],
        setMarks: [{ origin: "o", seq: 1, version: { epoch: 1, seq: 1 } }],
        lastVersion: { epoch: 1, seq: 1 },
        prunedThrough: ZERO_VERSION,
      }),
    });
    expect(reloaded.retainedEntry("a")?.value).toEqual({ x: 1 });
    expect(reloaded.lastVersion).toEqual({ epoch: 1, seq: 1 });
  });

  test("a failed save is refused with STORE_FAILED: no ack, nothing changed, and a retry works", () => {
    const persistence = new MemoryPersistence();
    const { hub, frames, write } = hubWith({ persistence });
    frames.length = 0;
    persistence.failNext = true;
    write("a", 1, "o", 1);
    expect(frames).toEqual([{ type: "error", code: "STORE_FAILED", message: expect.stringContaining("disk full"), ref: { type: "set", origin: "o", seq: 1, key: "a" } }]);
    expect(hub.retainedEntry("a")).toBeUndefined();
    expect(hub.lastVersion).toEqual(ZERO_VERSION);
    write("a", 1, "o", 1);
    expect(frames.at(-1)).toEqual({ type: "ack", origin: "o", seq: 1, version: { epoch: 1, seq: 1 } });
  });

  test("deleting a key that holds nothing writes nothing", () => {
    const persistence = new MemoryPersistence();
    const { frames, write } = hubWith({ persistence });
    write("never", null, "o", 1);
    expect(persistence.changes).toHaveLength(0);
    expect(frames.at(-1)).toEqual({ type: "ack", origin: "o", seq: 1 });
  });
});
