/**
 * A node's app gateway against a real hub over real sockets (PeerEndpoint,
 * HubService): writes a server refused as not active are not held for good.
 */
import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fingerprint } from "../../../src/core/keys.ts";
import type { FromHubFrame } from "../../../src/hub/frames.ts";
import { HubCore } from "../../../src/hub/hub-core.ts";
import { createLogger } from "../../../src/log.ts";
import { AppGateway } from "../../../src/services/app-gateway.ts";
import { HubService } from "../../../src/services/hub-service.ts";
import { PeerEndpoint } from "../../../src/net/peer-endpoint.ts";
import { secureDialer } from "../../../src/net/peer-net.ts";
import { waitFor } from "../../support/wait-for.ts";

const networkKey = nacl.randomBytes(32);
const log = createLogger(() => "json", () => {});
const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

function hubServer(writable: boolean) {
  const hub = new HubService(new HubCore({ epoch: 1, writable }), networkKey, log);
  const machine = nacl.sign.keyPair();
  const endpoint = PeerEndpoint.listen({
    at: { host: "127.0.0.1", port: 0 },
    identity: () => ({ id: fingerprint(machine.publicKey), name: "hub", role: "main", version: "test", networkKeyFingerprint: null }),
    secure: { networkKey, machine },
    accept: (path, connection) => (path === "/hub" ? hub.acceptHub(connection) : null),
    onRefused: () => {},
  });
  stops.push(() => endpoint.stop());
  return { hub, port: endpoint.port };
}

test("a write the server refused as not active goes through once it is active again (the node reconnects)", async () => {
  const { hub, port } = hubServer(false); // e.g. a main isolated for a moment
  const gateway = new AppGateway({ node: { id: "n1", name: "n1" }, net: secureDialer({ networkKey, machine: nacl.sign.keyPair() }), networkKey, log, onLinkBroken: () => {}, retainAckedMs: 3_000 });
  stops.push(() => gateway.stop());
  const frames: FromHubFrame[] = [];
  const app = gateway.attachApp("test", (frame) => frames.push(frame));
  gateway.follow({ role: "main", address: { host: "127.0.0.1", port } });
  await waitFor("the hub link", () => gateway.connected);
  app.send({ type: "pub", topic: "t", data: 1, origin: "o", seq: 1 });
  await waitFor("the refusal", () => gateway.uplink.needsReattach || !gateway.connected);
  hub.startServing(1);
  await waitFor("the ack", () => frames.some((f) => f.type === "ack" && f.seq === 1), 5_000);
  expect(gateway.uplink.queuedFrames).toBe(0);
});

test("a hub that closes its sessions for a new network key is not reported gone; one that stops serving is", async () => {
  const { hub, port } = hubServer(true);
  const broken: string[] = [];
  const gateway = new AppGateway({ node: { id: "n2", name: "n2" }, net: secureDialer({ networkKey, machine: nacl.sign.keyPair() }), networkKey, log, onLinkBroken: (role) => broken.push(role), retainAckedMs: 3_000 });
  stops.push(() => gateway.stop());
  gateway.follow({ role: "main", address: { host: "127.0.0.1", port } });
  await waitFor("the hub link", () => gateway.connected);
  // Same key again: the sessions close and reconnect, as after a real new key the node also took.
  hub.setNetworkKey(networkKey);
  await waitFor("the link dropped", () => !gateway.connected);
  await waitFor("the link again", () => gateway.connected, 5_000);
  expect(broken).toEqual([]);
  hub.stopServing();
  await waitFor("the broken link reported", () => broken.length > 0);
  expect(broken).toEqual(["main"]);
});
