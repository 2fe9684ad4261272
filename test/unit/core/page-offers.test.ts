import { expect, test } from "bun:test";
import { machineRows, SERVER_VIEWER, type FoundMachine } from "../../../src/core/machine-rows.ts";
import { machinesOffers } from "../../../src/core/machines-offers.ts";
import { storageOffers, type FolderState } from "../../../src/core/storage-offers.ts";
import { peer, statusFixture } from "../../support/status-fixture.ts";

const offers = (status: ReturnType<typeof statusFixture>, permission: 1 | 2 | 3 | null = null) =>
  machinesOffers(status, machineRows(status, [], 1000, { ...SERVER_VIEWER, permission }), permission);

test("Machines: a server given a backup is a main (switch-back card, remove icon, permission levels)", () => {
  for (const role of ["main", "server"] as const) {
    const o = offers(statusFixture({ role }, { state: "standby", pairing: { peerId: "b0b0b0b0b0b0b0b0", peerName: "backup", address: "10.0.0.2:7401", confirmed: true, hubCopied: true } }));
    expect(o.switchBackCard).toBe(true);
    expect(o.permissions).toBe(true);
    expect(o.addBackup).toBe("paired");
    expect(o.rows["b0b0b0b0b0b0b0b0"]).toEqual([{ kind: "remove-backup", allowed: true }]);
  }
});

test("Machines: Add Backup server is on the right of the Main server row while no backup is paired", () => {
  const alone = offers(statusFixture({ chip: "No backup", backup: null }, { pairing: null, peers: [] }));
  expect(alone.addBackup).toBe("form");
  expect(alone.rows["a1a1a1a1a1a1a1a1"]).toEqual([{ kind: "add-backup", allowed: true }]);
  expect(offers(statusFixture()).rows["a1a1a1a1a1a1a1a1"]).toEqual([]);
});

test("Machines: a client's Backup row offers Switch back while the main waits in standby, and Remove always, as two actions; both need level 3", () => {
  const client = (mainState: string) =>
    statusFixture({ role: "client", roleLabel: "Client", showFile: null }, { pairing: null, peers: [peer({ id: "m", name: "main", role: "main", state: mainState }), peer()] });
  expect(offers(client("standby"), 3).rows["b0b0b0b0b0b0b0b0"]).toEqual([
    { kind: "switch-back", allowed: true },
    { kind: "remove-backup", allowed: true },
  ]);
  expect(offers(client("active"), 3).rows["b0b0b0b0b0b0b0b0"]).toEqual([{ kind: "remove-backup", allowed: true }]);
  expect(offers(client("active"), 2).rows["b0b0b0b0b0b0b0b0"]).toEqual([{ kind: "remove-backup", allowed: false }]);
  // The client hears a backup serving or idle: no Add Backup server (it holds no pairing of its own to tell).
  expect(offers(client("active"), 3).rows["m"]).toEqual([]);
  expect(offers(client("active"), 2).rows["m"]).toEqual([]);
  const noBackup = statusFixture({ role: "client", roleLabel: "Client", showFile: null }, { pairing: null, peers: [peer({ id: "m", name: "main", role: "main", state: "active", pairedWith: null })] });
  expect(offers(noBackup, 3)).toMatchObject({ addBackup: "form", rows: { m: [{ kind: "add-backup", allowed: true }] } });
  const mainPairs = statusFixture({ role: "client", roleLabel: "Client", showFile: null }, { pairing: null, peers: [peer({ id: "m", name: "main", role: "main", state: "active", pairedWith: "b0b0b0b0b0b0b0b0" })] });
  expect(offers(mainPairs, 3).addBackup).toBe("paired");
  const removed = statusFixture({ role: "client", roleLabel: "Client", showFile: null }, { pairing: null, peers: [peer({ id: "m", role: "main", state: "active", pairedWith: null }), peer({ state: "unpaired" })] });
  expect(offers(removed, 3).rows["b0b0b0b0b0b0b0b0"]).toEqual([]);
  expect(offers(client("active"), 2).addBackup).toBe("none");
  expect(offers(client("active"), 3)).toMatchObject({ addBackup: "paired", addBackupFromClient: true, permissions: false, switchBackCard: false });
});

const folder: FolderState = { folder: "/srv/show", autoPull: false, problem: null, toPush: [], toPushCount: 0, job: null };

test("Synced storage: every control says why not while the backup serves, and Auto-Pull pinned by a flag says so first", () => {
  const onBackup = statusFixture({ role: "client", showFile: null }, { activeServer: "backup", pairing: null, showFileReadOnly: true });
  const o = storageOffers(onBackup, folder, false);
  expect(o.readOnly).toBe(true);
  for (const reason of [o.pull, o.push, o.autoPull]) expect(reason).toStartWith("The main server is down");
  expect(storageOffers(onBackup, folder, true).autoPull).toBe("Set by --auto-pull on the command line.");
  expect(storageOffers(statusFixture(), { ...folder, toPush: null }, false)).toEqual({ readOnly: false, pull: null, push: null, autoPull: null });
  expect(storageOffers(statusFixture(), { ...folder, folder: null, autoPull: true }, false)).toMatchObject({ pull: "Set the show folder first.", autoPull: null });
});

test("Machines: Add Backup server proposes found backups with this key, once each, IPv4 before IPv6, IPv6 in brackets, never link-local (no zone to dial it with)", () => {
  const found = (over: Partial<FoundMachine>): FoundMachine => ({
    id: "d0d0d0d0d0d0d0d0", name: "studio-b", role: "backup", license: "server-with-failover", fingerprint: "0011223344556677", addresses: ["10.0.0.2", "fd00::2"], port: 7401, keyMismatch: false, ...over,
  });
  const status = statusFixture({ chip: "No backup", backup: null }, { pairing: null, peers: [] });
  const machines = [
    found({}),
    found({}), // the same machine seen twice (two interfaces): offered once
    found({ id: "e", addresses: ["10.0.0.3"], keyMismatch: true }),
    found({ id: "f", role: "client", addresses: ["10.0.0.4"] }),
    found({ id: "g", name: "studio-v6", addresses: ["fe80::1", "fd00::7"] }),
    found({ id: "h", name: "studio-ll", addresses: ["fe80::9"] }),
  ];
  const o = machinesOffers(status, machineRows(status, machines, 1000), null, machines);
  expect(o.backupCandidates).toEqual([
    { name: "studio-b", address: "10.0.0.2:7401" },
    { name: "studio-v6", address: "[fd00::7]:7401" },
  ]);
  expect(machineRows(status, machines, 1000).find((r) => r.id === "d0d0d0d0d0d0d0d0")!.address).toBe("10.0.0.2:7401, [fd00::2]:7401");
});

test("Synced storage: a main back but not yet serving (rejoining) offers what its routing does: read-only", () => {
  const rejoining = statusFixture({}, { state: "rejoining", activeServer: null, showFileReadOnly: true });
  expect(storageOffers(rejoining, folder, false).readOnly).toBe(true);
});
