/**
 * A network key saved on a running machine is used at once: the peer port,
 * heartbeats and the Data Hub take it without a restart, and the hub keeps
 * serving at the same epoch. In process, over real loopback sockets.
 */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { formatNetworkKey } from "../../../src/core/keys.ts";
import { consoleChip } from "../../../src/core/console-chip.ts";
import { machineRows } from "../../../src/core/machine-rows.ts";
import { nodesPerTest, setUpDataDir } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

const fresh = nodesPerTest();
const FAST = { heartbeatMs: "50", failoverTimeoutMs: "250" };

test("a client on the new key links to a main once the main saves that key, and the main's hub keeps serving", async () => {
  const oldKey = nacl.randomBytes(32);
  const newKey = nacl.randomBytes(32);
  const { node: main } = await fresh({ dataDir: setUpDataDir(oldKey), flags: { role: "main", ...FAST } });
  await waitFor("the main serving", () => main.status().failover?.state === "active");
  const before = main.status().failover!;
  const { node: client } = await fresh({ dataDir: setUpDataDir(newKey, "client"), flags: { role: "client", main: main.status().peerListen!, ...FAST } });
  await waitFor("the client refused for its key", () => client.status().failover?.refusal?.code === "NETWORK_KEY_MISMATCH");
  expect(client.status().failover?.hubConnected).toBe(false);

  await main.saveNetworkKey(formatNetworkKey(newKey));
  await waitFor("the client linked under the new key", () => client.status().failover?.hubConnected === true, 10_000);
  const after = main.status().failover!;
  expect(after.state).toBe("active");
  expect(after.epoch).toBe(before.epoch);
  // Saved twice: nothing changes the second time.
  await main.saveNetworkKey(formatNetworkKey(newKey));
  await waitFor("the client linked again", () => client.status().failover?.hubConnected === true, 10_000);
  expect(main.status().failover?.epoch).toBe(before.epoch);
}, 30_000);

test("a client given another key reads 'Network key differs' within a few heartbeats and heals the moment the right key is pasted on it", async () => {
  const mainKey = nacl.randomBytes(32);
  const { node: main } = await fresh({ dataDir: setUpDataDir(mainKey), flags: { role: "main", ...FAST } });
  await waitFor("the main serving", () => main.status().failover?.state === "active");
  const { node: client } = await fresh({ dataDir: setUpDataDir(nacl.randomBytes(32), "client"), flags: { role: "client", main: main.status().peerListen!, ...FAST } });
  await waitFor("the client's chip says the key differs", () => consoleChip(client.status()).text === "Network key differs", 10_000);
  await client.saveNetworkKey(formatNetworkKey(mainKey));
  await waitFor("the client healed", () => client.status().failover?.hubConnected === true && consoleChip(client.status()).text !== "Network key differs", 10_000);
  // The main's Machines row for the client shows the key both now hold.
  await waitFor("the main hears the client", () => machineRows(main.status(), [], main.heardWithinMs()).some((r) => r.id === client.status().id && r.heard), 10_000);
  expect(machineRows(main.status(), [], main.heardWithinMs()).find((r) => r.id === client.status().id)?.fingerprint).toBe(client.status().networkKeyFingerprint);
}, 30_000);
