import { expect, test } from "bun:test";
import type { DiscoveredMachine } from "../../../src/net/discovery/discovery.ts";
import { machineRows } from "../../../src/core/machine-rows.ts";
import { peer, statusFixture } from "../../support/status-fixture.ts";

const found = (over: Partial<DiscoveredMachine>): DiscoveredMachine => ({
  id: "c0c0c0c0c0c0c0c0",
  name: "render-1",
  role: "client",
  license: "client",
  version: "0.1.0",
  fingerprint: "0011223344556677",
  epoch: 3,
  addresses: ["10.0.0.9"],
  port: 7401,
  keyMismatch: false,
  lastSeen: 0,
  ...over,
});

test("servers first (this machine among them), heard machines with their state and round trip, discovered ones with license and key", () => {
  const status = statusFixture(
    { role: "client", roleLabel: "Client", name: "control" },
    { activeServer: "main", pairing: null, peers: [peer({ id: "m", name: "studio-main", role: "main", state: "active", delayMs: 0.3 }), peer({ delayMs: 0.6 })] },
  );
  const rows = machineRows(status, [found({}), found({ id: "d", name: "intruder", keyMismatch: true, fingerprint: "ffffffffffffffff" }), found({ id: "b0b0b0b0b0b0b0b0", role: "backup", license: "server-with-failover" })], 1000);
  expect(rows.map((r) => [r.name, r.roleLabel])).toEqual([
    ["studio-main", "Main server"],
    ["backup", "Backup server"],
    ["control", "Client"],
    ["intruder", "Client"],
    ["render-1", "Client"],
  ]);
  expect(rows[0]).toMatchObject({ state: "serving", delayMs: 0.3, heard: true });
  expect(rows[1]).toMatchObject({ license: "Server with failover", state: "in sync, ready" });
  expect(rows[2]).toMatchObject({ self: true, license: "Server with failover" });
  expect(rows[3]).toMatchObject({ keyDiffers: true, state: "another network key", heard: false });
});

test("a peer silent for longer than the failover timeout shows no round trip, and a paired backup never heard still has its row", () => {
  const silent = machineRows(statusFixture({}, { peers: [peer({ lastHeardMsAgo: 4200 })] }), [], 1000);
  expect(silent[1]).toMatchObject({ kind: "backup", delayMs: null, heard: false, state: "not heard for 4 s" });
  const neverHeard = machineRows(statusFixture({}, { peers: [] }), [], 1000);
  expect(neverHeard.map((r) => [r.name, r.kind, r.state])).toEqual([
    ["studio-main", "main", "serving"],
    ["backup", "backup", "paired, not heard"],
  ]);
});

test("a level-1 client sees no other client; the main sees each client's level", () => {
  const others = [peer({ id: "m", name: "studio-main", role: "main", state: "active" }), peer({ id: "c2", name: "render-2", role: "client", state: "follow-main" })];
  const asClient = (permission: 1 | 2 | 3) =>
    machineRows(statusFixture({ role: "client", roleLabel: "Client", name: "control" }, { pairing: null, peers: others }), [], 1000, { permission, levels: {} }).map((r) => r.name);
  expect(asClient(1)).toEqual(["studio-main", "control"]);
  expect(asClient(2)).toEqual(["studio-main", "control", "render-2"]);
  const onMain = machineRows(statusFixture({}, { peers: [peer({ id: "c2", name: "render-2", role: "client" }), peer({ id: "c3", name: "render-3", role: "client" })] }), [], 1000, {
    permission: null,
    levels: { c2: 3 },
  });
  expect(onMain.filter((r) => r.kind === "client").map((r) => [r.name, r.level])).toEqual([
    ["render-2", 3],
    ["render-3", 2],
  ]);
});

test("a client lists the other clients its server hears, without a round trip of its own; not at level 1, and never twice", () => {
  const status = statusFixture({ role: "client", roleLabel: "Client", name: "control" }, { pairing: null, peers: [peer({ id: "m", name: "studio-main", role: "main", state: "active" })] });
  const others = [
    { id: "c2c2c2c2c2c2c2c2", name: "render-2", address: "10.0.0.12:7401", state: "follow-backup", localApps: 4, level: 3 as const },
    { id: "m", name: "studio-main", address: "10.0.0.1:7401", state: "active", localApps: 0, level: 2 as const },
  ];
  const rows = (permission: 1 | 2) => machineRows(status, [], 1000, { permission, levels: {}, others });
  expect(rows(2).map((r) => [r.name, r.kind, r.state, r.delayMs, r.level, r.localApps])).toEqual([
    ["studio-main", "main", "serving", 0.4, null, null],
    ["control", "client", "serving", null, 2, 2],
    ["render-2", "client", "on the backup (as the server sees it)", null, 3, 4],
  ]);
  expect(rows(1).map((r) => r.name)).toEqual(["studio-main", "control"]);
});

test("with discovery off, each row shows the key fingerprint its machine reported in its heartbeats (never this machine's own), and the license the pairing exchange carried", () => {
  const pairing = { peerId: "b0b0b0b0b0b0b0b0", peerName: "backup", address: "10.0.0.2:7401", peerLicense: "server-with-failover" as const, confirmed: true, hubCopied: true };
  const peers = [peer({ keyFingerprint: "0011223344556677" }), peer({ id: "c1", name: "render-1", role: "client", state: "follow-main", keyFingerprint: "9999999999999999" }), peer({ id: "c2", name: "old-build", role: "client", state: "follow-main" })];
  const heard = machineRows(statusFixture({}, { pairing, peers }), [], 1000);
  expect(heard.find((r) => r.name === "backup")).toMatchObject({ license: "Server with failover", fingerprint: "0011223344556677", keyDiffers: false, heard: true });
  // Finding 5: a client still heard (its heartbeats are sealed with machine keys) whose network key is another.
  expect(heard.find((r) => r.name === "render-1")).toMatchObject({ license: "–", fingerprint: "9999999999999999", keyDiffers: true, heard: true });
  // A machine that did not report its key: unknown, not assumed to be this machine's.
  expect(heard.find((r) => r.name === "old-build")).toMatchObject({ fingerprint: null, keyDiffers: false });
  // This machine's key changed: the rows keep what each machine reported, and the backup's now differs.
  const rekeyed = machineRows(statusFixture({ networkKeyFingerprint: "abababababababab" }, { pairing, peers }), [], 1000);
  expect(rekeyed.find((r) => r.name === "backup")).toMatchObject({ fingerprint: "0011223344556677", keyDiffers: true });
  const silent = machineRows(statusFixture({}, { pairing, peers: [] }), [], 1000);
  // Never heard, its key is not known here: after this machine's key changed, its row must not show the new fingerprint.
  expect(silent.find((r) => r.id === pairing.peerId)).toMatchObject({ state: "paired, not heard", license: "Server with failover", fingerprint: null });
});

test("a server that refused the handshake for another network key is marked with its fingerprint, on its row or a row of its own", () => {
  const refusal = { peer: "10.0.0.1:7401", code: "NETWORK_KEY_MISMATCH", message: "another key", peerFingerprint: "ffffffffffffffff", localFingerprint: "0011223344556677" };
  const client = { role: "client" as const, roleLabel: "Client", main: "10.0.0.1:7401", backup: null };
  const alone = machineRows(statusFixture(client, { pairing: null, peers: [], refusal }), [], 1000);
  expect(alone[0]).toMatchObject({ kind: "main", address: "10.0.0.1:7401", fingerprint: "ffffffffffffffff", keyDiffers: true, state: "another network key", heard: false });
  const listed = machineRows(statusFixture(client, { pairing: null, peers: [peer({ id: "m", name: "studio-main", role: "main", address: "10.0.0.1:7401", lastHeardMsAgo: 60_000 })], refusal }), [], 1000);
  expect(listed.filter((r) => r.kind === "main")).toEqual([expect.objectContaining({ name: "studio-main", fingerprint: "ffffffffffffffff", keyDiffers: true })]);
  // A refusal for another reason (no key fingerprints) marks nothing.
  const other = machineRows(statusFixture(client, { pairing: null, peers: [], refusal: { ...refusal, code: "PEER_REFUSED", peerFingerprint: null, localFingerprint: null } }), [], 1000);
  expect(other.some((r) => r.keyDiffers)).toBe(false);
});

test("a machine that sent claims it cannot back keeps its row, with the count (the panel marks it)", () => {
  const rows = machineRows(statusFixture({}, { peers: [peer({ id: "r", name: "rogue", role: "client", state: "follow-backup", unbackedClaims: 141 }), peer({ id: "c1", role: "client" })] }), [], 1000);
  expect(rows.filter((r) => r.unbackedClaims > 0).map((r) => [r.name, r.unbackedClaims])).toEqual([["rogue", 141]]);
});

test("whose Data Hub each machine's apps reach follows the routing rule: a rejoining main's apps wait for it, a standby main's use the backup's", () => {
  const status = statusFixture(
    { role: "client", roleLabel: "Client", name: "control" },
    {
      activeServer: null,
      pairing: null,
      peers: [peer({ id: "m", name: "studio-main", role: "main", state: "rejoining" }), peer({ state: "active" }), peer({ id: "c", name: "cg", role: "client", state: "follow-backup" }), peer({ id: "s", name: "silent", role: "client", lastHeardMsAgo: 9000 })],
    },
  );
  const hub = Object.fromEntries(machineRows(status, [], 1000).map((r) => [r.name, r.hub]));
  expect(hub).toEqual({ "studio-main": "waits", backup: "own", control: "waits", cg: "backup", silent: "not-heard" });
  const standby = statusFixture({}, { state: "standby", activeServer: "backup", peers: [] });
  expect(machineRows(standby, [], 1000).find((r) => r.self)!.hub).toBe("backup");
});

test("a row is red (alarm) when its machine is not heard or says it is isolated, this machine's own row included", () => {
  const rows = machineRows(statusFixture({}, { peers: [peer({ lastHeardMsAgo: 4200 }), peer({ id: "c", name: "cg", role: "client", state: "isolated" }), peer({ id: "d", name: "ok", role: "client", state: "follow-main" })] }), [], 1000);
  expect(Object.fromEntries(rows.filter((r) => !r.self).map((r) => [r.name, r.alarm]))).toEqual({ backup: "not-heard", cg: "isolated", ok: null });
  const own = machineRows(statusFixture({ chip: "Main isolated" }, { state: "isolated", peers: [] }), [], 1000);
  expect(own[0]).toMatchObject({ self: true, alarm: "isolated" });
});
