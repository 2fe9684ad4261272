/**
 * A network key saved on a running machine is used at once: the peer port,
 * heartbeats and the Data Hub take it without a restart, and the hub keeps
 * serving at the same epoch. In process, over real loopback sockets.
 */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { formatHostPort, parseHostPort } from "../../../src/core/config.ts";
import { formatNetworkKey } from "../../../src/core/keys.ts";
import { secureDialer } from "../../../src/net/peer-net.ts";
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

/** A local app on `node`'s `/app` under `key`; resolves with the reason once its connection closes. */
async function localApp(address: string, key: Uint8Array): Promise<{ closed: Promise<string> }> {
  let closed!: (reason: string) => void;
  const done = new Promise<string>((resolve) => (closed = resolve));
  await secureDialer({ networkKey: key, machine: nacl.sign.keyPair() }).dial(parseHostPort(address)!, "/app", () => ({ message() {}, close: (reason) => closed(reason) }));
  return { closed: done };
}

for (const host of ["127.0.0.1", "::1"]) {
  test(`a new key closes the local apps' connections and the links the machine dialled under the old one, and saving the same key closes none (${host})`, async () => {
    const oldKey = nacl.randomBytes(32);
    const peerListen = formatHostPort({ host, port: 0 });
    const { node: main } = await fresh({ dataDir: setUpDataDir(oldKey), flags: { role: "main", peerListen, ...FAST } });
    await waitFor("the main serving", () => main.status().failover?.state === "active");
    const { node: client } = await fresh({ dataDir: setUpDataDir(oldKey, "client"), flags: { role: "client", peerListen, main: main.status().peerListen!, ...FAST } });
    await waitFor("the client linked", () => client.status().failover?.hubConnected === true, 10_000);
    const onMain = await localApp(main.status().peerListen!, oldKey);
    const onClient = await localApp(client.status().peerListen!, oldKey);
    let sameKeyClosed = false;
    void onClient.closed.then(() => (sameKeyClosed = true));

    // The same key saved again: nothing drops (docs/design.md §Invariants, saving changes nothing).
    await client.saveNetworkKey(formatNetworkKey(oldKey));
    await waitFor("the client still linked", () => client.status().failover?.hubConnected === true);
    expect(sameKeyClosed).toBe(false);

    // Another key on the client only: its apps reconnect under it, and its link to the main cannot stand.
    await client.saveNetworkKey(formatNetworkKey(nacl.randomBytes(32)));
    expect(await onClient.closed).toContain("network key changed");
    await waitFor("the client's chip says the key differs", () => consoleChip(client.status()).text === "Network key differs", 10_000);
    expect(client.status().failover?.hubConnected).toBe(false);

    // The right key pasted back: it heals.
    await client.saveNetworkKey(formatNetworkKey(oldKey));
    await waitFor("the client healed", () => client.status().failover?.hubConnected === true && consoleChip(client.status()).text !== "Network key differs", 10_000);

    // A new key on the main closes what its local apps and the client hold under the old one.
    await main.saveNetworkKey(formatNetworkKey(nacl.randomBytes(32)));
    expect(await onMain.closed).toContain("network key changed");
    await waitFor("the client's link to the main is gone", () => client.status().failover?.hubConnected === false, 10_000);
  }, 40_000);
}
