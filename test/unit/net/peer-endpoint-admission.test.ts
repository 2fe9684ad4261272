/**
 * What a stranger, or a key holder with a bad, replayed or stale proof, can
 * make the peer port do: no socket at all, so nothing of theirs is buffered
 * (docs/design.md §Security).
 */
import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import type { AppError } from "../../../src/core/errors.ts";
import { fingerprint } from "../../../src/core/keys.ts";
import { DEFAULT_ADMISSION_LIMITS, sourceAddress } from "../../../src/net/handshake-admission.ts";
import { FINGERPRINT_HEADER, HandshakeInitiator, PROOF_HEADER } from "../../../src/net/handshake.ts";
import type { ConnectionLimits } from "../../../src/net/connection-caps.ts";
import { PeerEndpoint } from "../../../src/net/peer-endpoint.ts";
import { connectSecure } from "../../../src/net/secure-socket.ts";
import { NetworkKeyMismatch, PeerRefused } from "../../../src/net/errors.ts";
import { waitFor } from "../../support/wait-for.ts";

const networkKey = nacl.randomBytes(32);
const endpoints: PeerEndpoint[] = [];
afterEach(() => {
  for (const e of endpoints.splice(0)) e.stop();
});

type Refusal = { address: string; code: string; message: string; suppressed: number };

function listen(limits: Partial<typeof DEFAULT_ADMISSION_LIMITS> = {}, host = "127.0.0.1", sockets?: ConnectionLimits) {
  const refusals: Refusal[] = [];
  let accepted = 0;
  let closed = 0;
  const endpoint = PeerEndpoint.listen({
    at: { host, port: 0 },
    identity: () => ({ id: "x", name: "main", role: "main", version: "test", networkKeyFingerprint: fingerprint(networkKey) }),
    secure: { networkKey, machine: nacl.sign.keyPair() },
    accept: () => (accepted++, { message() {}, close: () => void closed++ }),
    onRefused: (address: string, error: AppError, suppressed: number) => refusals.push({ address, code: error.code, message: error.message, suppressed }),
    admission: { ...DEFAULT_ADMISSION_LIMITS, ...limits },
    ...(sockets ? { sockets } : {}),
  });
  endpoints.push(endpoint);
  const loopback = host === "::" ? "[::1]" : "127.0.0.1";
  return { endpoint, refusals, accepted: () => accepted, closed: () => closed, url: `ws://${loopback}:${endpoint.port}/hub`, address: `${loopback}:${endpoint.port}` };
}

/** A key holder's upgrade headers for `endpoint` (a fresh, valid proof unless altered). */
function proofFor(endpoint: PeerEndpoint, path = "/hub"): Record<string, string> {
  return new HandshakeInitiator({ networkKey, machine: nacl.sign.keyPair(), peerAddress: "listener", path, challenge: endpoint.challenges.challenge() }).headers;
}

/** A raw socket with `headers`: whether it opened, how it closed. */
function rawSocket(url: string, headers: Record<string, string>) {
  const ws = new WebSocket(url, { headers } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  const state = { opened: false, closed: null as { code: number; reason: string } | null, failed: false, received: [] as Uint8Array[] };
  ws.onopen = () => (state.opened = true);
  ws.onerror = () => (state.failed = true);
  ws.onclose = (e) => (state.closed = { code: e.code, reason: e.reason });
  ws.onmessage = (e) => state.received.push(new Uint8Array(e.data as ArrayBuffer));
  return { ws, state };
}

test("without a valid proof there is no WebSocket at all: nothing is buffered, the refusal is logged once", async () => {
  const { endpoint, refusals, url, accepted } = listen();
  const guessed = { [PROOF_HEADER]: Buffer.from(nacl.randomBytes(176)).toString("base64url"), [FINGERPRINT_HEADER]: fingerprint(networkKey) };
  const strangers = [rawSocket(url, {}), rawSocket(url, guessed), rawSocket(url, {})];
  await waitFor("all refused", () => strangers.every((s) => s.state.closed));
  expect(strangers.some((s) => s.state.opened)).toBe(false);
  expect(accepted()).toBe(0);
  expect(refusals.map((r) => [r.code, r.suppressed])).toEqual([["HANDSHAKE_FAILED", 0]]);
  expect(endpoint.port).toBeGreaterThan(0);
});

test("a key holder's replayed, stale, other-machine or other-path proof gets no socket; the first use of a good one does", async () => {
  const { endpoint, refusals, url } = listen();
  const other = listen();
  const headers = proofFor(endpoint);
  const first = rawSocket(url, headers);
  await waitFor("first open", () => first.state.opened);
  const tries = [rawSocket(url, headers), rawSocket(url, proofFor(other.endpoint)), rawSocket(url, proofFor(endpoint, "/files"))];
  await waitFor("all refused", () => tries.every((s) => s.state.closed));
  expect(tries.map((s) => s.state.opened)).toEqual([false, false, false]);
  expect(refusals.map((r) => r.message)).toEqual([expect.stringContaining("reused an upgrade proof")]);
  first.ws.close();
});

test("a key holder with a valid proof gets a socket whose first frame is the listener's proof, then only sealed frames count", async () => {
  const { endpoint, url, refusals } = listen();
  const s = rawSocket(url, proofFor(endpoint));
  await waitFor("the listener's proof", () => s.state.received.length === 1);
  expect(s.state.received[0]!.length).toBe(162);
  s.ws.send(new Uint8Array(64 * 1024));
  await waitFor("closed as a bad frame", () => s.state.closed);
  expect(s.state.closed!.code).toBe(4002);
  expect(refusals.map((r) => r.code)).toEqual(["WIRE_VERSION"]);
});

test("a machine on another network key is refused at the upgrade, and both sides name both fingerprints", async () => {
  const { refusals, address } = listen();
  const otherKey = nacl.randomBytes(32);
  const error = await connectSecure(address, "/hub", { networkKey: otherKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} })).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NetworkKeyMismatch);
  expect([(error as NetworkKeyMismatch).peerFingerprint, (error as NetworkKeyMismatch).localFingerprint]).toEqual([fingerprint(networkKey), fingerprint(otherKey)]);
  expect((error as Error).message).toBe(`Peer ${address} has a different network key (fingerprint ${fingerprint(networkKey)} vs ${fingerprint(otherKey)} here). Install the same network key on every machine.`);
  expect(refusals.map((r) => r.code)).toEqual(["NETWORK_KEY_MISMATCH"]);
});

test("handshakes with the key beyond the bucket are refused cheaply; the dialer backs off (a refusal, with what to check); the refusals are logged once with a count", async () => {
  const { refusals, address } = listen({ handshakes: { perSource: { burst: 2, perSecond: 0.001 }, total: { burst: 100, perSecond: 100 }, maxSources: 16 } });
  const results: string[] = [];
  for (let i = 0; i < 6; i++) {
    await connectSecure(address, "/hub", { networkKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} })).then(
      (c) => {
        results.push("ok");
        c.close();
      },
      (error: AppError) => results.push(error instanceof PeerRefused && error.message.includes("refused the connection (busy") ? "busy" : error.message),
    );
  }
  expect(results).toEqual(["ok", "ok", "busy", "busy", "busy", "busy"]);
  expect(refusals.map((r) => [r.code, r.suppressed])).toEqual([["HANDSHAKE_BUSY", 0]]);
});

test("source addresses: limits count per address, not per port", () => {
  expect(sourceAddress("10.0.0.2:51234")).toBe("10.0.0.2");
  expect(sourceAddress("[::1]:7401")).toBe("::1");
  expect(sourceAddress("unknown")).toBe("unknown");
});

test("per-source caps first: while one address has spent its handshakes, a machine at another address (IPv6) still gets in, twice", async () => {
  const { endpoint, refusals } = listen({ handshakes: { perSource: { burst: 3, perSecond: 0.001 }, total: { burst: 100, perSecond: 100 }, maxSources: 16 } }, "::");
  const hog = Array.from({ length: 6 }, () => rawSocket(`ws://127.0.0.1:${endpoint.port}/hub`, proofFor(endpoint)));
  await waitFor("the hog answered", () => hog.every((s) => s.state.opened || s.state.closed));
  expect(hog.filter((s) => s.state.opened)).toHaveLength(3);
  for (let round = 0; round < 2; round++) {
    const peer = await connectSecure(`[::1]:${endpoint.port}`, "/hub", { networkKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} }));
    expect(peer.open).toBe(true);
    peer.close();
  }
  expect(refusals.map((r) => [sourceAddress(r.address), r.code])).toEqual([["::ffff:127.0.0.1", "HANDSHAKE_BUSY"]]);
  for (const s of hog) s.ws.close();
});

test("sockets per source are capped: one more is refused before any signature work, and taken again once one closes", async () => {
  const { endpoint, url, refusals, accepted, closed } = listen({}, "127.0.0.1", { perSource: 2, total: 100 });
  const held = [rawSocket(url, proofFor(endpoint)), rawSocket(url, proofFor(endpoint))];
  await waitFor("two open", () => held.every((s) => s.state.opened));
  const third = rawSocket(url, proofFor(endpoint));
  await waitFor("the third refused", () => third.state.closed);
  expect(third.state.opened).toBe(false);
  expect(accepted()).toBe(2);
  expect(refusals.map((r) => r.code)).toEqual(["PEER_SOCKETS_FULL"]);
  held[0]!.ws.close();
  await waitFor("the listener saw it close", () => closed() === 1);
  const fourth = rawSocket(url, proofFor(endpoint));
  await waitFor("the fourth open", () => fourth.state.opened);
  for (const s of [held[1]!, fourth]) s.ws.close();
});
