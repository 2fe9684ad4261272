/**
 * Finding 1 and 2 of the hostile-network issue: what a stranger can make the
 * peer port do before it proves the network key.
 */
import { afterEach, expect, test } from "bun:test";
import nacl from "tweetnacl";
import type { AppError } from "../../../src/core/errors.ts";
import { fingerprint } from "../../../src/core/keys.ts";
import { FrameKind, WIRE_VERSION } from "../../../src/net/envelope.ts";
import { DEFAULT_ADMISSION_LIMITS, sourceAddress } from "../../../src/net/handshake-admission.ts";
import { AUTH_BYTES, HELLO_BYTES } from "../../../src/net/handshake.ts";
import { PeerEndpoint } from "../../../src/net/peer-endpoint.ts";
import { connectSecure } from "../../../src/net/secure-socket.ts";
import { NetworkKeyMismatch } from "../../../src/net/errors.ts";
import { TICKET_HEADER, upgradeHeaders } from "../../../src/net/upgrade-ticket.ts";
import { waitFor } from "../../support/wait-for.ts";

const networkKey = nacl.randomBytes(32);
const endpoints: PeerEndpoint[] = [];
/** The endpoint the last `listen` opened: default tickets are made from its challenge. */
let latest: PeerEndpoint | null = null;
afterEach(() => {
  for (const e of endpoints.splice(0)) e.stop();
});

type Refusal = { address: string; code: string; suppressed: number };

function listen(limits: Partial<typeof DEFAULT_ADMISSION_LIMITS> = {}) {
  const refusals: Refusal[] = [];
  const endpoint = PeerEndpoint.listen({
    at: { host: "127.0.0.1", port: 0 },
    identity: () => ({ id: "x", name: "main", role: "main", version: "test", networkKeyFingerprint: fingerprint(networkKey) }),
    secure: { networkKey, machine: nacl.sign.keyPair() },
    accept: () => ({ message() {}, close() {} }),
    onRefused: (address: string, error: AppError, suppressed: number) => refusals.push({ address, code: error.code, suppressed }),
    admission: { ...DEFAULT_ADMISSION_LIMITS, ...limits },
  });
  endpoints.push(endpoint);
  latest = endpoint;
  return { endpoint, refusals, url: `ws://127.0.0.1:${endpoint.port}/hub`, address: `127.0.0.1:${endpoint.port}` };
}

/** A socket that connected (or failed to), and how it closed; by default with a valid upgrade ticket (a key holder that misbehaves). */
function rawSocket(url: string, headers: Record<string, string> = upgradeHeaders(networkKey, "/hub", latest!.tickets.challenge())) {
  const ws = new WebSocket(url, { headers } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  const state = { opened: false, closed: null as { code: number; reason: string } | null, failed: false, received: [] as Uint8Array[] };
  ws.onopen = () => (state.opened = true);
  ws.onerror = () => (state.failed = true);
  ws.onclose = (e) => (state.closed = { code: e.code, reason: e.reason });
  ws.onmessage = (e) => state.received.push(new Uint8Array(e.data as ArrayBuffer));
  return { ws, state };
}

test("without proof of the network key there is no WebSocket at all: nothing is buffered, the refusal is logged once", async () => {
  const { endpoint, refusals, url } = listen();
  const strangers = [rawSocket(url, {}), rawSocket(url, { [TICKET_HEADER]: `${"0".repeat(32)}.${"1".repeat(32)}.${"2".repeat(32)}` }), rawSocket(url, {})];
  await waitFor("all refused", () => strangers.every((s) => s.state.closed));
  expect(strangers.some((s) => s.state.opened)).toBe(false);
  expect(endpoint.admission.pendingConnections).toBe(0);
  expect(refusals.map((r) => [r.code, r.suppressed])).toEqual([["HANDSHAKE_FAILED", 0]]);
});

test("a replayed upgrade ticket is refused", async () => {
  const { url, endpoint } = listen();
  const headers = upgradeHeaders(networkKey, "/hub", endpoint.tickets.challenge());
  const first = rawSocket(url, headers);
  await waitFor("first open", () => first.state.opened);
  const again = rawSocket(url, headers);
  await waitFor("replay refused", () => again.state.closed);
  expect(again.state.opened).toBe(false);
  first.ws.close();
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
  expect(refusals.map((r) => r.code)).toEqual(["NETWORK_KEY_MISMATCH"]);
});

test("unauthenticated connections are capped per source; a finished handshake frees its slot", async () => {
  const { endpoint, refusals, url, address } = listen({ pendingPerSource: 2, pendingTotal: 10 });
  const a = rawSocket(url);
  const b = rawSocket(url);
  await waitFor("two pending", () => a.state.opened && b.state.opened);
  const c = rawSocket(url);
  await waitFor("third refused", () => c.state.failed || c.state.closed);
  expect(c.state.opened).toBe(false);
  expect(endpoint.admission.pendingConnections).toBe(2);
  expect(refusals.map((r) => r.code)).toEqual(["HANDSHAKE_BUSY"]);
  a.ws.close();
  await waitFor("slot freed", () => endpoint.admission.pendingConnections === 1);
  const peer = await connectSecure(address, "/hub", { networkKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} }));
  await waitFor("authenticated connection holds no slot", () => endpoint.admission.pendingConnections === 1);
  peer.close();
  b.ws.close();
});

test("the total cap holds even while each source is under its own", async () => {
  const { endpoint, url } = listen({ pendingPerSource: 10, pendingTotal: 3 });
  const sockets = [rawSocket(url), rawSocket(url), rawSocket(url)];
  await waitFor("three pending", () => sockets.every((s) => s.state.opened));
  const extra = rawSocket(url);
  await waitFor("fourth refused", () => extra.state.failed || extra.state.closed);
  expect(extra.state.opened).toBe(false);
  expect(endpoint.admission.pendingConnections).toBe(3);
  for (const s of sockets) s.ws.close();
});

test("a frame larger than a handshake message before the handshake closes the socket unread (1009)", async () => {
  const { refusals, url } = listen();
  const s = rawSocket(url);
  await waitFor("open", () => s.state.opened);
  s.ws.send(new Uint8Array(64 * 1024));
  await waitFor("closed", () => s.state.closed);
  expect(s.state.closed!.code).toBe(1009);
  expect(refusals.map((r) => r.code)).toEqual(["WIRE_MALFORMED"]);
});

test("a hello with our fingerprint but no key costs no signature: the answer is a hello alone", async () => {
  const { url } = listen();
  const s = rawSocket(url);
  await waitFor("open", () => s.state.opened);
  const hello = new Uint8Array(HELLO_BYTES);
  hello[0] = WIRE_VERSION;
  hello[1] = FrameKind.hello;
  hello.set(nacl.randomBytes(64), 2);
  hello.set(Buffer.from(fingerprint(networkKey), "hex"), HELLO_BYTES - 8);
  s.ws.send(hello);
  await waitFor("answer", () => s.state.received.length > 0);
  const guessedProof = new Uint8Array(AUTH_BYTES);
  guessedProof.set([WIRE_VERSION, FrameKind.auth]);
  s.ws.send(guessedProof);
  await waitFor("refused", () => s.state.closed);
  expect(s.state.received.map((m) => m[1])).toEqual([FrameKind.hello]);
  expect(s.state.closed!.reason).toContain("could not prove it holds the key");
});

test("handshakes with the key beyond the bucket are refused cheaply; the refusals are logged once with a count", async () => {
  const { refusals, address } = listen({ handshakes: { perSource: { burst: 2, perSecond: 0.001 }, total: { burst: 100, perSecond: 100 }, maxSources: 16 } });
  const results: string[] = [];
  for (let i = 0; i < 6; i++) {
    await connectSecure(address, "/hub", { networkKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} })).then(
      (c) => {
        results.push("ok");
        c.close();
      },
      (error: AppError) => results.push(error.message.includes("too many handshakes") ? "busy" : error.message),
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

test("per-source caps first: while one address fills the total, a machine at another address still gets in", async () => {
  const refusals: Refusal[] = [];
  const endpoint = PeerEndpoint.listen({
    at: { host: "::", port: 0 },
    identity: () => ({ id: "x", name: "main", role: "main", version: "test", networkKeyFingerprint: fingerprint(networkKey) }),
    secure: { networkKey, machine: nacl.sign.keyPair() },
    accept: () => ({ message() {}, close() {} }),
    onRefused: (address: string, error: AppError, suppressed: number) => refusals.push({ address, code: error.code, suppressed }),
    admission: { ...DEFAULT_ADMISSION_LIMITS, pendingPerSource: 10, pendingTotal: 3 },
  });
  endpoints.push(endpoint);
  latest = endpoint;
  const hog = [1, 2, 3].map(() => rawSocket(`ws://127.0.0.1:${endpoint.port}/hub`));
  await waitFor("the total filled from one address", () => hog.every((s) => s.state.opened));
  for (let round = 0; round < 2; round++) {
    const peer = await connectSecure(`[::1]:${endpoint.port}`, "/hub", { networkKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} }));
    expect(peer.open).toBe(true);
    peer.close();
  }
  // The first peer took one of the hog's slots; once it was through, the total had room for the second.
  await waitFor("one of the hog's sockets closed to make room", () => hog.filter((s) => s.state.closed).length === 1);
  expect(endpoint.admission.pendingConnections).toBe(2);
  expect(refusals.map((r) => r.code)).toEqual(["HANDSHAKE_BUSY"]);
  for (const s of hog) s.ws.close();
});
