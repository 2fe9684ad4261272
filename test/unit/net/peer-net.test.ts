/**
 * RealPeerNet over loopback sockets (net/peer-net.ts): what closeDialled
 * closes on a network key change, on IPv4 and IPv6.
 */
import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fingerprint } from "../../../src/core/keys.ts";
import { RealPeerNet } from "../../../src/net/peer-net.ts";
import { CLOSE_NETWORK_KEY_CHANGED, type ConnectionEvents } from "../../../src/net/secure-socket.ts";
import { waitFor } from "../../support/wait-for.ts";

const nets: RealPeerNet[] = [];
afterEach(() => {
  for (const n of nets.splice(0)) n.stop();
});

function listen(host: string, networkKey: Uint8Array) {
  const closes: string[] = [];
  const proven: string[] = [];
  const net = RealPeerNet.listen({
    at: { host, port: 0 },
    identity: () => ({ id: "x", name: "m", role: "main", version: "test", networkKeyFingerprint: fingerprint(networkKey) }),
    secure: { networkKey, machine: nacl.sign.keyPair() },
    onRefused: () => {},
    authenticated: (peer) => void proven.push(fingerprint(peer.publicKey)),
  });
  net.serve({ path: "/app", accept: () => ({ message() {}, close: (reason) => void closes.push(reason) }) });
  nets.push(net);
  return { net, closes, proven, at: { host, port: net.port } };
}

const recording = (closes: string[]) => (): ConnectionEvents => ({ message() {}, close: (reason) => void closes.push(reason) });

for (const host of ["127.0.0.1", "::1"]) {
  test(`closeDialled closes the connections this machine dialled, both ends hearing why, and leaves those others dialled to it (${host})`, async () => {
    const key = nacl.randomBytes(32);
    const a = listen(host, key);
    const b = listen(host, key);
    const [out, into] = [[] as string[], [] as string[]];
    const mine = await a.net.dial(b.at, "/app", recording(out));
    const theirs = await b.net.dial(a.at, "/app", recording(into));
    a.net.closeDialled("The network key changed; reconnecting with the new one.");
    await waitFor("b heard a's dialled connection close", () => b.closes.length === 1);
    expect(b.closes[0]).toContain("network key changed");
    await waitFor("a's own end closed", () => out.length === 1 && !mine.open);
    expect(theirs.open).toBe(true);
    expect(a.closes).toEqual([]);
    expect(into).toEqual([]);
    // Each side learned the other's machine key from the handshake (its heartbeats then open without the new-sender budget).
    expect(a.proven.length).toBe(1);
    expect(b.proven.length).toBe(1);
    // Twice: nothing more to close.
    a.net.closeDialled("again");
    expect(theirs.open).toBe(true);

    // closeAccepted: what others dialled here, each end hearing it as a key change (the dialler's links dial again).
    const codes: (number | undefined)[] = [];
    const again = await b.net.dial(a.at, "/app", () => ({ message() {}, close: (_reason, code) => void codes.push(code) }));
    a.net.closeAccepted("The network key changed here; dial again with the new one.");
    await waitFor("b's dialled connections closed by a", () => !theirs.open && !again.open && codes.length === 1);
    expect(codes).toEqual([CLOSE_NETWORK_KEY_CHANGED]);
    expect(into[0]).toContain("network key changed here");
  });
}
