/**
 * Each Machines row shows the network-key fingerprint its own machine
 * reported (issue 18, finding 5): a client whose key is changed on its setup
 * page reads "Network key differs" on the main's Machines panel within a few
 * heartbeats, and heals the moment the right key is pasted back. In process,
 * over real loopback sockets, discovery off (so only heartbeats can say it).
 */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fingerprint, formatNetworkKey } from "../../../src/core/keys.ts";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { nodesPerTest, setUpDataDir } from "../../support/machine-node.ts";
import { waitFor } from "../../support/wait-for.ts";

const fresh = nodesPerTest();
const FAST = { heartbeatMs: "50", failoverTimeoutMs: "250" };

/** The client's row on the main's Machines page, as the browser gets it. */
async function rowOf(main: MachineNode, id: string): Promise<string> {
  const html = await (await main.app.request("http://localhost/machines")).text();
  const at = html.indexOf(`data-machine-id="${id}"`);
  return at < 0 ? "" : html.slice(at).split("</tr>")[0]!;
}

test("a client's row shows the key it reports: 'Network key differs' after its key changes, healed when the main's key is pasted back", async () => {
  const key = nacl.randomBytes(32);
  const { node: main } = await fresh({ dataDir: setUpDataDir(key), flags: { role: "main", ...FAST } });
  await waitFor("the main serving", () => main.status().failover?.state === "active");
  const { node: client } = await fresh({ dataDir: setUpDataDir(key, "client"), flags: { role: "client", main: main.status().peerListen!, ...FAST } });
  const id = client.status().id;
  await waitFor("the client's row with the shared key", async () => (await rowOf(main, id)).includes(`<code>${fingerprint(key)}</code>`), 10_000);

  const other = nacl.randomBytes(32);
  await client.saveNetworkKey(formatNetworkKey(other));
  await waitFor("the main's row for the client says its key differs", async () => (await rowOf(main, id)).includes(`Network key differs (${fingerprint(other)})`), 10_000);

  await client.saveNetworkKey(formatNetworkKey(key));
  await waitFor("healed", async () => {
    const row = await rowOf(main, id);
    return row.includes(`<code>${fingerprint(key)}</code>`) && !row.includes("differs");
  }, 10_000);
  expect(await rowOf(main, id)).not.toContain(fingerprint(other));
}, 40_000);
