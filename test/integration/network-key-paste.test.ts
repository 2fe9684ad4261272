/**
 * A network key pasted on a running client's setup page, with real
 * executables (issue 16): another key than its servers' and the client says
 * so on its chip within a few heartbeats, its local app's connection (made
 * under the old key) is closed, and pasting the right key back heals it.
 * On IPv4 and IPv6 loopback.
 */
import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { consoleChip } from "../../src/core/console-chip.ts";
import { formatNetworkKey } from "../../src/core/keys.ts";
import { Cluster, FAST } from "../support/cluster.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

for (const host of ["127.0.0.1", "::1"] as const) {
  test(`a client given another key reads "Network key differs", its local app is closed, and the right key pasted back heals it (${host})`, async () => {
    const c = (cluster = await Cluster.start({ ...FAST, host }));
    await c.startClient("c1", { keyOnPage: true });
    await c.waitStatus("c1", "the client linked to the main", (s) => s.failover?.hubConnected === true, 20_000);
    const sub = c.subscribe("c1", "t/#");
    await c.warmUp(sub, "c1", "t/warm");

    const wrong = formatNetworkKey(nacl.randomBytes(32));
    expect((await c.postForm("c1", "/setup/key", { action: "paste", key: wrong })).status).toBe(200);
    await c.waitStatus("c1", "the chip says the key differs", (s) => consoleChip(s).text === "Network key differs" && s.failover?.hubConnected === false);
    // The app's connection was made under the old key: it is closed, and the app says the node closed it.
    expect(await sub.proc.exited).not.toBe(0);
    expect(sub.stderr()).toContain("closed the connection");

    const right = await Bun.file(c.keyFile).text();
    expect((await c.postForm("c1", "/setup/key", { action: "paste", key: right })).status).toBe(200);
    await c.waitStatus("c1", "the client healed", (s) => s.failover?.hubConnected === true && consoleChip(s).text !== "Network key differs");
    // Pasted twice: nothing changes.
    expect((await c.postForm("c1", "/setup/key", { action: "paste", key: right })).status).toBe(200);
    const again = c.subscribe("c1", "t/#");
    await c.warmUp(again, "c1", "t/healed");
    expect((await c.status("c1")).failover?.hubConnected).toBe(true);
  }, 90_000);
}
