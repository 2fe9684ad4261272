/**
 * A client's backup learned from its main (docs/design.md §Pairing): believed
 * only when the machine at the address proves the id the main named; kept
 * across a restart; forgotten when the main says it has none; the setup's
 * backup always wins.
 */
import { secureDialer } from "../../../src/net/peer-net.ts";
import { afterEach, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import nacl from "tweetnacl";
import type { AuthenticatedPeer } from "../../../src/net/channel.ts";
import { LearnedBackup } from "../../../src/machine/learned-backup.ts";
import { ServerIdentities } from "../../../src/machine/server-identities.ts";
import { LearnedBackupFile } from "../../../src/store/learned-backup-file.ts";
import { serveBarePeer } from "../../support/peer-identity.ts";
import { tempDir } from "../../support/temp-dirs.ts";
import { waitFor } from "../../support/wait-for.ts";
import { nodesPerTest, setUpDataDir } from "../../support/machine-node.ts";

const fresh = nodesPerTest();
const FAST = { heartbeatMs: "100", failoverTimeoutMs: "1000" };

let stop: (() => void) | null = null;
afterEach(() => {
  stop?.();
  stop = null;
});

test("a machine at the learned address proving another id than the main named is not believed; the named one is; a new word forgets it", async () => {
  const networkKey = nacl.randomBytes(32);
  const server = serveBarePeer({ networkKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} }), { path: "/app" });
  stop = () => server.stop(true);
  const at = { host: "127.0.0.1", port: server.port! };
  const identified: AuthenticatedPeer[] = [];
  const disbelieved: AuthenticatedPeer[] = [];
  const identities = new ServerIdentities(
    secureDialer({ networkKey, machine: nacl.sign.keyPair() }),
    { identified: (_role, peer) => identified.push(peer), refused() {}, disbelieved: (_a, peer) => disbelieved.push(peer) },
  );
  const servers = { main: null, backup: at };
  const notHeard = () => false;

  identities.refresh(servers, { main: null, backup: "00000000000000ff" }, notHeard);
  await waitFor("the wrong machine reported", () => disbelieved.length === 1);
  expect(identified).toEqual([]);
  expect(identities.known().backup).toBeNull();
  // Dialled again while not heard: still not believed, reported once.
  identities.refresh(servers, { main: null, backup: "00000000000000ff" }, notHeard);
  identities.refresh(servers, { main: null, backup: "00000000000000ff" }, notHeard);
  expect(identities.known().backup).toBeNull();

  const realId = disbelieved[0]!.machineId;
  identities.refresh(servers, { main: null, backup: realId }, notHeard);
  await waitFor("the named machine identified", () => identities.known().backup === realId);
  expect(identified.map((p) => p.machineId)).toEqual([realId]);

  // The main now names another machine at the same address: the old one is forgotten at once.
  identities.addressesChanged(servers, { main: null, backup: "00000000000000ee" });
  expect(identities.known().backup).toBeNull();
});

test("the learned backup is kept in the data dir, forgotten when the main says none, and the setup's backup wins", async () => {
  const dir = tempDir("learned-backup-");
  let changes = 0;
  const learned = new LearnedBackup(dir, () => changes++);
  await learned.load();
  expect(learned.backup(null)).toBeNull();

  const word = { address: "[::1]:7401", machineId: "00000000000000bb" };
  await learned.heard(word);
  await learned.heard(word);
  expect(changes).toBe(1);
  expect(learned.backup(null)).toEqual({ address: { host: "::1", port: 7401 }, machineId: "00000000000000bb" });
  expect(learned.backup({ host: "10.0.0.2", port: 7401 })).toEqual({ address: { host: "10.0.0.2", port: 7401 }, machineId: null });

  const restarted = new LearnedBackup(dir, () => {});
  await restarted.load();
  expect(restarted.backup(null)).toEqual({ address: { host: "::1", port: 7401 }, machineId: "00000000000000bb" });

  await restarted.heard(null);
  expect(restarted.backup(null)).toBeNull();
  expect(existsSync(new LearnedBackupFile(dir).path)).toBe(false);
});

test("in process: a client naming only the main learns the backup it pairs with, keeps it on disk, and forgets it when the main removes it", async () => {
  const key = nacl.randomBytes(32);
  const { node: main } = await fresh({ dataDir: setUpDataDir(key), flags: { role: "main", ...FAST } });
  const { node: backup } = await fresh({ dataDir: setUpDataDir(key), flags: { role: "backup", ...FAST } });
  const clientDir = setUpDataDir(key, "client");
  await fresh({ dataDir: clientDir, flags: { role: "client", main: main.status().peerListen!, ...FAST } });
  const file = new LearnedBackupFile(clientDir);

  await main.addBackup(backup.status().peerListen!);
  await waitFor("the client learned the backup", () => file.read()?.machineId === backup.status().id, 15_000);
  expect(file.read()?.address).toBe(backup.status().peerListen!);

  await main.removeBackup();
  await waitFor("the client forgot the backup", () => file.read() === null, 15_000);
}, 60_000);
