/** The decisions that moved from the machine layer into core: each a table. */
import { describe, expect, test } from "bun:test";
import type { NodeState } from "../../../src/core/failover/index.ts";
import { heardWithin } from "../../../src/core/heard.ts";
import { clientBackup, filesRoute, heartbeatTargets, replicationSource, showFileReadOnly } from "../../../src/core/routing.ts";

const state = (o: Record<string, unknown>) => ({ peerId: "x", other: { live: null, beat: null }, clients: new Map(), ...o }) as unknown as NodeState;

describe("heartbeatTargets", () => {
  const setup = { main: "m:1", backup: "b:1" };
  test.each([
    ["main: only the paired backup", "main", "p:1", { main: null, backup: "p:1" }],
    ["main, unpaired: nobody (the backup its setup names is not paired yet)", "main", null, { main: null, backup: null }],
    ["backup: the main its setup names", "backup", "p:1", { main: "m:1", backup: null }],
    ["client: both", "client", null, setup],
  ] as const)("%s", (_name, role, paired, expected) => {
    expect(heartbeatTargets(role, setup, paired)).toEqual(expected);
  });
  test("backup naming no main: the main that paired with it", () => {
    expect(heartbeatTargets("backup", { main: null, backup: null }, "p:1")).toEqual({ main: "p:1", backup: null });
    expect(heartbeatTargets("backup", { main: null, backup: null }, null)).toEqual({ main: null, backup: null });
  });
});

describe("replicationSource", () => {
  test.each([
    ["a paired backup syncing copies from the main", state({ role: "backup", phase: { kind: "syncing" } }), "main"],
    ["a paired idle backup copies from the main", state({ role: "backup", phase: { kind: "idle", condition: null } }), "main"],
    ["a serving backup copies nothing", state({ role: "backup", phase: { kind: "active", epoch: 2, since: 0 } }), null],
    ["an unpaired backup copies nothing", state({ role: "backup", peerId: null, phase: { kind: "unpaired" } }), null],
    ["an active main copies nothing", state({ role: "main", phase: { kind: "active", epoch: 1, since: 0 } }), null],
    ["a main waiting to be switched back copies from the backup", state({ role: "main", phase: { kind: "standby", since: 0 } }), "backup"],
    ["an unpaired main in standby copies nothing", state({ role: "main", peerId: null, phase: { kind: "standby", since: 0 } }), null],
    ["a rejoining main copies nothing continuously (its one catch-up does)", state({ role: "main", phase: { kind: "rejoining", since: 0, catchUp: { kind: "idle", retryAt: 0 }, copyFailingSince: null, switchBack: true } }), null],
    ["an isolated main copies nothing", state({ role: "main", phase: { kind: "isolated", since: 0 } }), null],
    ["a client copies nothing", state({ role: "client", following: "backup", followingEpoch: 2 }), null],
    ["no state yet", null, null],
  ] as const)("%s", (_name, s, expected) => {
    expect(replicationSource(s)).toBe(expected);
  });
});

describe("showFileReadOnly agrees with filesRoute", () => {
  const rejoining = state({ role: "main", phase: { kind: "rejoining", since: 0, catchUp: { kind: "idle", retryAt: 0 }, copyFailingSince: null, switchBack: false } });
  test.each([
    ["the active main is writable", state({ role: "main", phase: { kind: "active", epoch: 1, since: 0 } }), false],
    ["a rejoining main is read-only (push waits for it to serve again)", rejoining, true],
    ["a serving backup is read-only", state({ role: "backup", phase: { kind: "active", epoch: 2, since: 0 } }), true],
    ["an idle backup forwards to the main", state({ role: "backup", phase: { kind: "idle", condition: null } }), false],
    ["a client following the backup is read-only", state({ role: "client", following: "backup", followingEpoch: 2 }), true],
    ["a client following the main forwards", state({ role: "client", following: "main", followingEpoch: 1 }), false],
  ] as const)("%s", (_name, s, readOnly) => {
    expect(showFileReadOnly(s, 0, true)).toBe(readOnly);
    expect(filesRoute(s, 0, true).kind === "read-only").toBe(readOnly);
  });
});

describe("heardWithin", () => {
  test.each([
    [0, 1000, true],
    [999, 1000, true],
    [1000, 1000, false],
    [1001, 1000, false],
  ])("%i ms ago with a %i ms timeout: %p", (ago, timeout, heard) => {
    expect(heardWithin(ago, timeout)).toBe(heard);
  });
});

describe("clientBackup", () => {
  const learned = { address: "l:1", machineId: "00000000000000bb" };
  test.each([
    ["the setup's backup wins over the learned one (any machine proving it)", "c:1", learned, { address: "c:1", machineId: null }],
    ["the setup's backup, nothing learned", "c:1", null, { address: "c:1", machineId: null }],
    ["no setup backup: the main's word, which must prove the id the main named", null, learned, { address: "l:1", machineId: "00000000000000bb" }],
    ["neither: none", null, null, null],
  ] as const)("%s", (_name, configured, word, expected) => {
    expect(clientBackup(configured, word)).toEqual(expected);
  });
});
