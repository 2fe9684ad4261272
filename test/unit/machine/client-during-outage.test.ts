/**
 * A client set up while the main is down (it names both servers): once the main
 * is back it lists the main as heard, and moves back to it without ever reading
 * "No server reachable" (docs/design.md §Failover). In process, over loopback.
 */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { consoleChip } from "../../../src/core/console-chip.ts";
import { machineRows } from "../../../src/core/machine-rows.ts";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { nodesPerTest, setUpDataDir, startNode } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

const fresh = nodesPerTest();
// The switch window is one failover timeout: the defaults leave room for a loaded test machine.
const FAST = { heartbeatMs: "100", failoverTimeoutMs: "1000" };

test("a client connected during an outage lists the main as soon as it hears it and moves back without a No server reachable blink", async () => {
  const key = nacl.randomBytes(32);
  const mainDir = setUpDataDir(key);
  let main: MachineNode = (await startNode({ dataDir: mainDir, flags: { role: "main", ...FAST } })).node;
  const mainAt = main.status().peerListen!;
  const { node: backup } = await fresh({ dataDir: setUpDataDir(key), flags: { role: "backup", ...FAST } });
  await main.addBackup(backup.status().peerListen!);
  await waitFor("the backup idle", () => consoleChip(main.status()).text === "Backup is idle", 15_000);
  await main.stop();
  await waitFor("the backup serving", () => backup.status().failover?.state === "active", 10_000);

  const { node: client } = await fresh({ dataDir: setUpDataDir(key, "client"), flags: { role: "client", main: mainAt, backup: backup.status().peerListen!, ...FAST } });
  await waitFor("the client on the backup", () => client.status().failover?.activeServer === "backup" && client.status().failover?.hubConnected === true, 10_000);

  const chips = new Set<string>();
  const watch = setInterval(() => chips.add(consoleChip(client.status()).text), 5);
  try {
    main = (await fresh({ dataDir: mainDir, flags: { role: "main", peerListen: mainAt, ...FAST } })).node;
    const mainId = main.status().id;
    await waitFor("the client lists the main as heard", () => machineRows(client.status(), [], client.heardWithinMs()).some((r) => r.id === mainId && r.heard), 10_000);
    await waitFor("the client back on the main", () => client.status().failover?.activeServer === "main" && client.status().failover?.hubConnected === true, 15_000);
  } finally {
    clearInterval(watch);
  }
  expect([...chips]).not.toContain("No server reachable");
}, 60_000);
