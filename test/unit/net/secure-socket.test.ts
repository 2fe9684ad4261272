import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { deriveBroadcastKey } from "../../../src/net/crypto.ts";
import { openBroadcast, sealBroadcast } from "../../../src/net/broadcast.ts";
import { connectSecure, type SecureSocketOptions } from "../../../src/net/secure-socket.ts";
import { waitFor } from "../../support/wait-for.ts";
import { serveBarePeer } from "../../support/peer-identity.ts";

const networkKey = nacl.randomBytes(32);
const servers: ReturnType<typeof Bun.serve>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true);
});

function serve(options: SecureSocketOptions, received: string[], refused: string[]) {
  const server = serveBarePeer(
    options,
    (connection, path) => ({
      message(payload) {
        const text = new TextDecoder().decode(payload);
        received.push(`${path}:${text}`);
        connection.send(new TextEncoder().encode(`echo ${text}`));
        connection.sendSealed(sealBroadcast(deriveBroadcastKey(networkKey, 3), new TextEncoder().encode(`all ${text}`)));
      },
      close() {},
    }),
    { onRefused: (_address, error) => refused.push(error.code) },
  );
  servers.push(server);
  return `127.0.0.1:${server.port}`;
}

test("a client and a server with the same key talk sealed, both ways, and broadcasts pass through", async () => {
  const received: string[] = [];
  const address = serve({ networkKey, machine: nacl.sign.keyPair() }, received, []);
  const replies: string[] = [];
  const client = await connectSecure(address, "/hub", { networkKey, machine: nacl.sign.keyPair() }, () => ({
    message: (p) => replies.push(new TextDecoder().decode(p)),
    broadcast: (frame) => replies.push(new TextDecoder().decode(openBroadcast(deriveBroadcastKey(networkKey, 3), frame, address))),
    close() {},
  }));
  expect(client.peer.machineId).toMatch(/^[0-9a-f]{16}$/);
  client.send(new TextEncoder().encode("one"));
  client.send(new TextEncoder().encode("two"));
  await waitFor("replies", () => replies.length === 4);
  expect(received).toEqual(["/hub:one", "/hub:two"]);
  expect(replies).toEqual(["echo one", "all one", "echo two", "all two"]);
  client.close();
});

test("a client with another network key is refused, and the error names both fingerprints", async () => {
  const refused: string[] = [];
  const address = serve({ networkKey, machine: nacl.sign.keyPair() }, [], refused);
  const other = nacl.randomBytes(32);
  const error = await connectSecure(address, "/hub", { networkKey: other, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} })).catch((e) => e);
  expect(error.code).toBe("NETWORK_KEY_MISMATCH");
  expect(error.message).toMatch(/different network key \(fingerprint [0-9a-f]{16} vs [0-9a-f]{16}/);
  await waitFor("server-side refusal", () => refused.length === 1);
  expect(refused[0]).toBe("NETWORK_KEY_MISMATCH");
});

test("nothing listening: a clear error, not a hang", async () => {
  const error = await connectSecure("127.0.0.1:9", "/hub", { networkKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} })).catch((e) => e);
  expect(error.code).toBe("HANDSHAKE_FAILED");
  expect(error.message).toContain("127.0.0.1:9");
});

test("an upgrade without a proof gets no socket: whatever it meant to send is never read", async () => {
  const received: string[] = [];
  const refused: string[] = [];
  const address = serve({ networkKey, machine: nacl.sign.keyPair() }, received, refused);
  const ws = new WebSocket(`ws://${address}/hub`);
  let opened = false;
  ws.onopen = () => ((opened = true), ws.send(new Uint8Array(200).fill(7)));
  await new Promise<void>((resolve) => (ws.onclose = () => resolve()));
  expect(opened).toBe(false);
  expect(received).toEqual([]);
  expect(refused).toEqual(["HANDSHAKE_FAILED"]);
});
