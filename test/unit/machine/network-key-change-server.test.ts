/**
 * A network key saved on a running *server*: its Data Hub closes the sessions
 * opened under the old key, and says why (CLOSE_NETWORK_KEY_CHANGED). A client
 * must not read that as a broken link (docs/design.md §Security): it does not
 * tell its core the main is gone, it dials again, and whether the main is
 * still there is for heartbeats to say. In process, over real loopback sockets.
 */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { formatHostPort } from "../../../src/core/config.ts";
import { formatNetworkKey } from "../../../src/core/keys.ts";
import { consoleChip } from "../../../src/core/console-chip.ts";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { nodesPerTest, setUpDataDir } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

const fresh = nodesPerTest();
const FAST = { heartbeatMs: "50", failoverTimeoutMs: "250" };
// With a backup, a takeover window a loaded test machine cannot trip by itself (as client-during-outage.test.ts).
const FAST_PAIR = { heartbeatMs: "100", failoverTimeoutMs: "1000" };

/** The events of a machine's JSON log lines. */
const messages = (lines: string[]) => lines.map((line) => (JSON.parse(line) as { event: string }).event);

/** A waitFor predicate: true once `node` has heard `count` more heartbeats from `from` (each one makes its last-heard age drop). */
function heartbeatsHeard(node: MachineNode, from: string, count: number): () => boolean {
  let heard = 0;
  let age = Number.POSITIVE_INFINITY;
  return () => {
    const now = node.status().failover?.peers?.find((p) => p.id === from)?.lastHeardMsAgo;
    if (now !== undefined && now < age) heard += 1;
    age = now ?? age;
    return heard >= count;
  };
}

for (const host of ["127.0.0.1", "::1"]) {
  test(`a new key saved on the main is not a broken link for its client: no linkBroken, it keeps the main, reads 'Network key differs' and heals when the key is pasted back (${host})`, async () => {
    const key = nacl.randomBytes(32);
    const peerListen = formatHostPort({ host, port: 0 });
    const { node: main } = await fresh({ dataDir: setUpDataDir(key), flags: { role: "main", peerListen, ...FAST } });
    await waitFor("the main serving", () => main.status().failover?.state === "active");
    const { node: client, lines } = await fresh({ dataDir: setUpDataDir(key, "client"), flags: { role: "client", peerListen, main: main.status().peerListen!, ...FAST } });
    await waitFor("the client linked", () => client.status().failover?.hubConnected === true, 10_000);
    const chipBefore = consoleChip(client.status()).text;
    const logged = lines.length;

    // The main's key changes: its hub closes the client's session, saying why.
    await main.saveNetworkKey(formatNetworkKey(nacl.randomBytes(32)));
    await waitFor("the client's session closed", () => client.status().failover?.hubConnected === false, 10_000);
    // Not a broken link: the gateway did not tell the core (that is logged as "hub link closed" just before).
    expect(messages(lines.slice(logged))).not.toContain("hub link closed");
    expect(messages(lines.slice(logged)).some((m) => m.includes("network key change"))).toBe(true);
    // ...and the client never dropped the main ("No server reachable", its apps' publishes queued).
    const NO_SERVER = "No active server: local publishes are queued.";
    expect(messages(lines.slice(logged))).not.toContain(NO_SERVER);

    // Its dial under the old key is refused: the keys differ, and the chip says so.
    await waitFor("the client's chip says the key differs", () => consoleChip(client.status()).text === "Network key differs", 10_000);
    expect(client.status().failover?.hubConnected).toBe(false);
    // The main is still its server: heartbeats (sealed per pair) still arrive, nobody failed over.
    expect(main.status().failover?.state).toBe("active");
    expect(messages(lines.slice(logged))).not.toContain("hub link closed");

    // The old key pasted back on the main: the client links again, and its chip is what it was.
    await main.saveNetworkKey(formatNetworkKey(key));
    await waitFor("the client healed", () => client.status().failover?.hubConnected === true && consoleChip(client.status()).text === chipBefore, 15_000);
    expect(messages(lines.slice(logged))).not.toContain("hub link closed");
    expect(messages(lines.slice(logged))).not.toContain(NO_SERVER);
  }, 40_000);
}

test("a new key saved on a main with a paired backup: the backup does not take over, no client reads 'No server reachable', and all link again once the key is pasted back", async () => {
  const key = nacl.randomBytes(32);
  const { node: main } = await fresh({ dataDir: setUpDataDir(key), flags: { role: "main", ...FAST_PAIR } });
  const { node: backup, lines: backupLines } = await fresh({ dataDir: setUpDataDir(key), flags: { role: "backup", ...FAST_PAIR } });
  await main.addBackup(backup.status().peerListen!);
  await waitFor("the backup idle", () => consoleChip(main.status()).text === "Backup is idle", 15_000);
  const { node: client, lines: clientLines } = await fresh({ dataDir: setUpDataDir(key, "client"), flags: { role: "client", main: main.status().peerListen!, backup: backup.status().peerListen!, ...FAST_PAIR } });
  await waitFor("the client on the main", () => client.status().failover?.activeServer === "main" && client.status().failover?.hubConnected === true, 10_000);
  const epoch = main.status().failover!.epoch;
  const fromBackup = backupLines.length;
  const fromClient = clientLines.length;

  const chips = new Set<string>();
  const watch = setInterval(() => chips.add(consoleChip(client.status()).text), 5);
  try {
    await main.saveNetworkKey(formatNetworkKey(nacl.randomBytes(32)));
    await waitFor("the client's chip says the key differs", () => consoleChip(client.status()).text === "Network key differs", 10_000);
    // More than a failover timeout of the main's heartbeats (sealed per pair, they still arrive) on differing keys: nobody takes over.
    await waitFor("15 heartbeats of the main heard by the client on differing keys", heartbeatsHeard(client, main.status().id, 15), 15_000);
    await main.saveNetworkKey(formatNetworkKey(key));
    await waitFor("the client linked again", () => client.status().failover?.hubConnected === true && consoleChip(client.status()).text !== "Network key differs", 15_000);
  } finally {
    clearInterval(watch);
  }
  expect(chips).not.toContain("No server reachable");
  expect(backup.status().failover?.state).not.toBe("active");
  expect(main.status().failover?.state).toBe("active");
  expect(main.status().failover?.epoch).toBe(epoch);
  expect(messages(backupLines.slice(fromBackup))).not.toContain("hub link closed");
  expect(messages(clientLines.slice(fromClient))).not.toContain("hub link closed");
}, 60_000);
