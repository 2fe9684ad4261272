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
import { nodesPerTest, setUpDataDir } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

const fresh = nodesPerTest();
const FAST = { heartbeatMs: "50", failoverTimeoutMs: "250" };

/** The events of a machine's JSON log lines. */
const messages = (lines: string[]) => lines.map((line) => (JSON.parse(line) as { event: string }).event);

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
