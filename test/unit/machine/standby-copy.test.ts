/**
 * A main waiting to be switched back keeps copying the backup's Data Hub state
 * (docs/design.md §Lanes and replication, core/routing.ts replicationSource):
 * a write the backup acknowledged while the main waited survives the backup's
 * death even when its publisher died first and cannot resend it. In process,
 * over loopback, with the real machines.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { consoleChip } from "../../../src/core/console-chip.ts";
import type { FromHubFrame } from "../../../src/hub/frames.ts";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { databasePath } from "../../../src/store/database.ts";
import { HubStateStore } from "../../../src/store/hub-state-store.ts";
import { nodesPerTest, setUpDataDir } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

const fresh = nodesPerTest();
const FAST = { heartbeatMs: "100", failoverTimeoutMs: "1000" };
const WRITES = 5;

/** Sets `count` retained values from an app on `node`, and resolves when its server acknowledged every one. */
async function setAcked(node: MachineNode, count: number): Promise<void> {
  const acked = new Set<number>();
  const app = node.attachHubApp("writer", (frame: FromHubFrame) => frame.type === "ack" && acked.add(frame.seq));
  if (!app) throw new Error("no hub app on the client");
  for (let seq = 1; seq <= count; seq++) app.send({ type: "set", key: `show/cue/${seq}`, value: { cue: seq }, origin: "writer.1", seq });
  await waitFor("every write acknowledged", () => acked.size === count, 10_000);
}

/** The retained value of `key` and its version as the serving hub holds it (asked through an app on `node`). */
async function entryOn(node: MachineNode, key: string): Promise<{ value: unknown; epoch: number }> {
  let got: { value: unknown; epoch: number } | null = null;
  const app = node.attachHubApp(`reader-${key}`, (frame: FromHubFrame) => {
    if (frame.type === "value" && frame.id === "q") got = { value: frame.value, epoch: frame.version.epoch };
  });
  app!.send({ type: "get", key, id: "q" });
  await waitFor(`the answer for ${key}`, () => got !== null, 5_000);
  app!.close();
  return got!;
}

/** A main and its backup; the main is stopped, the backup takes over, the main comes back (failback manual) and waits. */
async function mainInStandby() {
  const key = nacl.randomBytes(32);
  const mainDir = setUpDataDir(key);
  let main: MachineNode = (await fresh({ dataDir: mainDir, flags: { role: "main", failback: "manual", ...FAST } })).node;
  const mainAt = main.status().peerListen!;
  const { node: backup } = await fresh({ dataDir: setUpDataDir(key), flags: { role: "backup", ...FAST } });
  await main.addBackup(backup.status().peerListen!);
  await waitFor("the backup idle", () => consoleChip(main.status()).text === "Backup is idle", 15_000);

  await main.stop();
  await waitFor("the backup serving", () => backup.status().failover?.state === "active", 10_000);
  const takeover = backup.status().failover!.epoch;
  main = (await fresh({ dataDir: mainDir, flags: { role: "main", failback: "manual", peerListen: mainAt, ...FAST } })).node;
  await waitFor("the main waiting to be switched back", () => main.status().failover?.state === "standby", 15_000);

  // A studio has more clients than the one that dies: a main that hears nobody at all when the backup goes
  // silent cannot tell that from its own cut cable and waits isolated (core/failover/main.ts). This one stays.
  const clientFlags = { role: "client", main: mainAt, backup: backup.status().peerListen!, ...FAST };
  const { node: bystander } = await fresh({ dataDir: setUpDataDir(key, "client"), flags: clientFlags });
  await waitFor("the bystander on the backup", () => bystander.status().failover?.activeServer === "backup", 10_000);
  // A client publishes through the serving backup, which acknowledges; then the client dies with its acked writes.
  const { node: client } = await fresh({ dataDir: setUpDataDir(key, "client"), flags: clientFlags });
  await waitFor("the client on the backup", () => client.status().failover?.activeServer === "backup" && client.status().failover?.hubConnected === true, 10_000);
  await setAcked(client, WRITES);
  await client.stop();
  return { main, mainDir, backup, takeover };
}

test("a main in standby keeps copying the backup: writes it acknowledged survive the backup and their publisher both dying", async () => {
  const { main, mainDir, backup } = await mainInStandby();

  // The main copies while it waits: every write reaches its own retained state on disk, still in standby.
  const onMainsDisk = () => {
    const db = new Database(databasePath(mainDir), { readonly: true });
    try {
      return new HubStateStore(db).load().entries.filter((e) => e.key.startsWith("show/cue/") && e.value !== null).length;
    } finally {
      db.close();
    }
  };
  await waitFor("the main's copy of the writes the backup took", () => onMainsDisk() === WRITES, 10_000);
  expect(main.status().failover?.state).toBe("standby");

  await backup.stop();
  await waitFor("the main serving again", () => main.status().failover?.state === "active", 10_000);
  for (let seq = 1; seq <= WRITES; seq++) expect((await entryOn(main, `show/cue/${seq}`)).value).toEqual({ cue: seq });
}, 60_000);

test("switched back at once, the main serves every write the backup took while it waited, as the backup took it", async () => {
  const { main, backup, takeover } = await mainInStandby();
  // No wait for the standby copy: the switch-back's catch-up takes what it has not copied yet.
  expect(await main.switchBack()).toContain("Switching back");
  await waitFor("the main serving again", () => main.status().failover?.state === "active", 10_000);
  await waitFor("the backup idle beside it", () => backup.status().failover?.state === "idle", 10_000);
  for (let seq = 1; seq <= WRITES; seq++) {
    // The backup's version: copied in, once, not taken again under the main's epoch.
    expect(await entryOn(main, `show/cue/${seq}`)).toEqual({ value: { cue: seq }, epoch: takeover });
  }
}, 60_000);
