import { describe, expect, test } from "bun:test";
import { HubCore, ZERO_VERSION } from "../../../src/hub/hub-core.ts";
import { DEFAULT_RETAINED_SHARE_LIMITS } from "../../../src/hub/retained-shares.ts";
import { databasePath, openDatabase } from "../../../src/store/database.ts";
import { HubStateStore } from "../../../src/store/hub-state-store.ts";
import { renderMetrics } from "../../../src/web/metrics.ts";
import type { MachineStatus } from "../../../src/core/status.ts";
import { tempDir } from "../../support/temp-dirs.ts";
import { DirectConnection, FakeHubServer } from "./hub-harness.ts";

const set = (key: string, value: unknown, origin: string, seq: number) => ({ type: "set", key, value, origin, seq }) as const;

/** A machine's node uplink on a hub: the adapter proved `machine`, the node said hello as `name`. */
function machineOn(server: FakeHubServer, machine: string, name = machine) {
  const frames: { type: string; code?: string; message?: string; ref?: { key?: string } }[] = [];
  server.hub.attach(machine, (f) => frames.push(f as never), machine);
  server.hub.receive(machine, { type: "hello", id: machine, name, kind: "node" });
  let seq = 0;
  return {
    frames,
    // Origins are unique per publisher network-wide (the hub de-duplicates on origin and seq).
    write: (key: string, value: unknown, origin = `app-${machine}`) => server.receive(machine, set(key, value, origin, ++seq)),
    errors: () => frames.filter((f) => f.type === "error"),
  };
}

const small = { maxRetainedKeys: 10, maxRetainedKeysPerMachine: 6, maxRetainedKeysPerApp: 4 };

describe("fair shares of retained state", () => {
  test("one app filling its share stops only that app; the refusal names the share and who holds it", () => {
    const server = new FakeHubServer({ epoch: 1, writable: true, limits: small });
    const a = machineOn(server, "id-a", "Studio-A");
    const b = machineOn(server, "id-b", "Studio-B");
    for (let i = 0; i < 5; i++) a.write(`flood/${i}`, i, "mqtt-flood");
    expect(a.errors()).toHaveLength(1);
    expect(a.errors()[0]).toMatchObject({ code: "LIMIT_REACHED", ref: { key: "flood/4" } });
    expect(a.errors()[0]!.message).toContain(`one app's share (the app writing as "mqtt-flood" on Studio-A (id-a))`);
    expect(a.errors()[0]!.message).toContain("4 keys of at most 4");
    // Another app on the same machine, and every other machine, still write.
    a.write("tally/1", "red", "tally-app");
    b.write("router/1", 3);
    expect(a.errors()).toHaveLength(1);
    expect(b.errors()).toHaveLength(0);
    // Overwriting a key it holds, and deleting, still work for the full app.
    a.write("flood/0", "again", "mqtt-flood");
    a.write("flood/1", null, "mqtt-flood");
    a.write("flood/4", 4, "mqtt-flood");
    expect(a.errors()).toHaveLength(1);
  });

  test("a machine that keeps picking new origins is held by its machine share; others still write", () => {
    const server = new FakeHubServer({ epoch: 1, writable: true, limits: small });
    const a = machineOn(server, "id-a", "Studio-A");
    const b = machineOn(server, "id-b", "Studio-B");
    for (let i = 0; i < 8; i++) a.write(`k/${i}`, i, `origin-${i}`);
    expect(a.errors().map((e) => e.ref?.key)).toEqual(["k/6", "k/7"]);
    expect(a.errors()[0]!.message).toContain("one machine's share (Studio-A (id-a)): 6 keys of at most 6");
    for (let i = 0; i < 4; i++) b.write(`b/${i}`, i);
    expect(b.errors()).toHaveLength(0);
    // The whole hub is full now (10): the refusal names the largest holder.
    const c = machineOn(server, "id-c", "Studio-C");
    c.write("c/1", 1);
    expect(c.errors()[0]!.message).toContain("the whole hub (largest holder: Studio-A (id-a) with 6 keys");
  });

  test("values are bounded in bytes as well as in count", () => {
    const server = new FakeHubServer({ epoch: 1, writable: true, limits: { maxRetainedBytesPerApp: 100_000, maxRetainedBytes: 150_000 } });
    const a = machineOn(server, "id-a", "Studio-A");
    const b = machineOn(server, "id-b", "Studio-B");
    const big = "x".repeat(40_000);
    a.write("clip/1", big);
    a.write("clip/2", big);
    a.write("clip/3", big);
    expect(a.errors().map((e) => e.ref?.key)).toEqual(["clip/3"]);
    expect(a.errors()[0]!.message).toMatch(/one app's share .*: 78\.1 KiB of at most 97\.7 KiB/);
    b.write("still/1", big);
    b.write("still/2", big);
    expect(b.errors().map((e) => e.ref?.key)).toEqual(["still/2"]);
    expect(b.errors()[0]!.message).toContain("the whole hub");
    // A smaller value in place of a big one always passes, and makes room.
    b.write("still/1", "small");
    b.write("still/2", big);
    expect(b.errors()).toHaveLength(1);
  });

  test("the defaults a studio lives with: 100,000 keys and 128 MiB, a quarter per machine, 10,000 keys and 16 MiB per app", () => {
    expect(DEFAULT_RETAINED_SHARE_LIMITS).toEqual({
      maxKeys: 100_000,
      maxBytes: 128 * 1024 * 1024,
      maxKeysPerMachine: 25_000,
      maxBytesPerMachine: 32 * 1024 * 1024,
      maxKeysPerApp: 10_000,
      maxBytesPerApp: 16 * 1024 * 1024,
    });
    // Today's flood, 100,000 keys from one local app: it stops at its share, and another machine still writes.
    const server = new FakeHubServer({ epoch: 1, writable: true });
    const own = machineOn(server, "id-main", "Main");
    for (let i = 0; i < 10_001; i++) own.write(`flood/${i}`, 1, "mqtt-door");
    expect(own.errors().map((e) => e.ref?.key)).toEqual(["flood/10000"]);
    const b = machineOn(server, "id-b", "Studio-B");
    b.write("status", "ok");
    expect(b.errors()).toHaveLength(0);
  });

  test("the backup keeps its copy within the same shares; what the main held counts for the same machine there", () => {
    const main = new FakeHubServer({ epoch: 1, writable: true, limits: { maxRetainedKeysPerMachine: 100, maxRetainedKeysPerApp: 100 } });
    const a = machineOn(main, "id-a", "Studio-A");
    for (let i = 0; i < 8; i++) a.write(`k/${i}`, i, "first-app");
    for (let i = 0; i < 4; i++) a.write(`j/${i}`, i, "second-app");
    const backup = new FakeHubServer({ epoch: 1, limits: small });
    backup.hub.importState(main.hub.exportStateSince(ZERO_VERSION));
    // 4 of the first app's (its share), then 2 of the second's (the machine's share of 6).
    expect(backup.hub.retainedUse()).toMatchObject({ keys: 6, refusedOnImport: 6, machines: [{ machine: "id-a", keys: 6 }] });
    expect(backup.hub.retainedEntry("k/4")).toBeUndefined();
    // Serving, the backup refuses that machine as the main would.
    backup.hub.setWritable(true);
    const again = machineOn(backup, "id-a", "Studio-A");
    again.write("k/new", 1, "third-app");
    expect(again.errors()[0]?.message).toContain("one machine's share (Studio-A (id-a)): 6 keys of at most 6");
  });

  test("who holds what survives a restart (SQLite), so a restart does not hand out new shares", () => {
    const dir = tempDir("understudy-shares-");
    const db = openDatabase(databasePath(dir));
    try {
      const first = new FakeHubServer({ epoch: 1, writable: true, limits: small, persistence: new HubStateStore(db) });
      const a = machineOn(first, "id-a", "Studio-A");
      for (let i = 0; i < 6; i++) a.write(`k/${i}`, i, `first-${i}`);
      const second = new FakeHubServer({ epoch: 1, writable: true, limits: small, persistence: new HubStateStore(db) });
      const again = machineOn(second, "id-a", "Studio-A");
      again.write("k/6", 6, "second");
      expect(again.errors()[0]?.message).toContain("one machine's share (Studio-A (id-a)): 6 keys of at most 6");
      expect(second.hub.retainedUse().machines).toEqual([{ machine: "id-a", name: "Studio-A (id-a)", keys: 6, bytes: expect.any(Number) }]);
    } finally {
      db.close();
    }
  });

  test("/metrics shows the use, in total and per machine", () => {
    const server = new FakeHubServer({ epoch: 1, writable: true });
    const a = machineOn(server, "id-a", "Studio-A");
    a.write("k", "v");
    const status = { name: "main", role: "main", failover: null, storage: null, replication: null, hub: { clients: 1, received: {}, deliveries: 0, retained: server.hub.retainedUse() } } as unknown as MachineStatus;
    const text = renderMetrics(status, { failovers: 0, failbacks: 0, peers: [], hubRates: null } as never);
    expect(text).toContain("understudy_hub_retained_keys 1\n");
    expect(text).toContain('understudy_hub_retained_keys{machine="Studio-A (id-a)"} 1\n');
    expect(text).toContain(`understudy_hub_retained_bytes ${"k".length + JSON.stringify("v").length}\n`);
    expect(text).toContain(`understudy_hub_retained_limit{unit="bytes"} ${128 * 1024 * 1024}\n`);
  });
});


