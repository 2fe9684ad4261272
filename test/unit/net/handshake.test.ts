/**
 * The peer handshake (handshake.ts): the dialer's proof in the upgrade request,
 * checked completely before any socket, and the listener's proof as the
 * socket's first frame.
 */
import { describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fingerprint } from "../../../src/core/keys.ts";
import { MIN_CHANNEL_FRAME_BYTES, type SecureChannel } from "../../../src/net/channel.ts";
import { seededRandom, type RandomBytes } from "../../../src/net/crypto.ts";
import { FrameKind } from "../../../src/net/envelope.ts";
import { MalformedFrame, NetworkKeyMismatch, ReplayedFrame, UnsealFailed } from "../../../src/net/errors.ts";
import {
  DIALER_PROOF_BYTES,
  FINGERPRINT_HEADER,
  HandshakeInitiator,
  LISTENER_PROOF_BYTES,
  PROOF_HEADER,
  answerUpgrade,
  type HandshakeAdmit,
  type HandshakeStep,
  type UpgradeVerdict,
} from "../../../src/net/handshake.ts";
import { CHALLENGE_WINDOW_MS, UpgradeChallenges } from "../../../src/net/upgrade-challenge.ts";
import { caught } from "../../support/caught.ts";

const seed = seededRandom("handshake test");
const networkKey = seed(32);
const otherNetworkKey = seed(32);
const initiatorMachine = nacl.sign.keyPair.fromSeed(seed(32));
const responderMachine = nacl.sign.keyPair.fromSeed(seed(32));
const INITIATOR_ADDRESS = "10.0.0.1:50000";
const RESPONDER_ADDRESS = "10.0.0.2:7401";

type Side = { networkKey?: Uint8Array; machine?: nacl.SignKeyPair };
type Listener = ReturnType<typeof listener>;

function listener(side: Side & { admit?: HandshakeAdmit } = {}, random: RandomBytes = seededRandom("listener")) {
  const clock = { t: 10 * CHALLENGE_WINDOW_MS, now: () => clock.t };
  const machine = side.machine ?? responderMachine;
  const challenges = new UpgradeChallenges(fingerprint(machine.publicKey), clock, random);
  const answer = (headers: Record<string, string>, path = "/hub"): UpgradeVerdict =>
    answerUpgrade({ networkKey: side.networkKey ?? networkKey, machine, peerAddress: INITIATOR_ADDRESS, random, challenges, headers: new Headers(headers), path, admit: side.admit });
  return { clock, challenges, answer };
}

function dialer(at: Listener, side: Side = {}, random: RandomBytes = seededRandom("dialer"), path = "/hub") {
  return new HandshakeInitiator({ networkKey: side.networkKey ?? networkKey, machine: side.machine ?? initiatorMachine, peerAddress: RESPONDER_ADDRESS, random, path, challenge: at.challenges.challenge() });
}

function accepted(verdict: UpgradeVerdict) {
  if (!verdict.ok) throw new Error(`expected accepted, got ${verdict.error.message}`);
  return verdict;
}

function refused(verdict: UpgradeVerdict) {
  if (verdict.ok) throw new Error("expected refused");
  return verdict;
}

function established(step: HandshakeStep | undefined): SecureChannel {
  if (step?.status !== "established") throw new Error(`expected established, got ${step?.status}: ${step?.status === "failed" ? step.error.message : ""}`);
  return step.channel;
}

function failed(step: HandshakeStep | undefined) {
  if (step?.status !== "failed") throw new Error(`expected failed, got ${step?.status}`);
  return step.error;
}

function connected() {
  const at = listener();
  const initiator = dialer(at);
  const answer = accepted(at.answer(initiator.headers));
  return { a: established(initiator.receive(answer.reply)), b: answer.channel };
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);
/** The proof header with byte `at` (of the decoded proof) flipped. */
function flipProof(headers: Record<string, string>, at: number): Record<string, string> {
  const proof = Buffer.from(headers[PROOF_HEADER]!, "base64url");
  proof[at]! ^= 0x40;
  return { ...headers, [PROOF_HEADER]: proof.toString("base64url") };
}

describe("handshake", () => {
  test("the dialer's proof is one header in the upgrade, the listener's one 162-byte frame; each side learns the other's machine id", () => {
    const at = listener();
    const initiator = dialer(at);
    expect(Buffer.from(initiator.headers[PROOF_HEADER]!, "base64url").length).toBe(DIALER_PROOF_BYTES);
    expect(initiator.headers[PROOF_HEADER]!.length).toBeLessThan(250);
    expect(initiator.headers[FINGERPRINT_HEADER]).toBe(fingerprint(networkKey));
    const answer = accepted(at.answer(initiator.headers));
    expect([answer.reply[1], answer.reply.length]).toEqual([FrameKind.auth, LISTENER_PROOF_BYTES]);
    expect(answer.channel.peer.machineId).toBe(fingerprint(initiatorMachine.publicKey));
    const a = established(initiator.receive(answer.reply));
    expect(a.peer.machineId).toBe(fingerprint(responderMachine.publicKey));
    expect(a.peer.address).toBe(RESPONDER_ADDRESS);
    expect(text(answer.channel.open(a.seal(bytes("go"))))).toBe("go");
  });

  test("is deterministic under injected randomness, and fresh per connection otherwise", () => {
    const runSeeded = (seedText: string) => {
      const at = listener({}, seededRandom(seedText));
      const initiator = dialer(at, {}, seededRandom(seedText));
      const answer = accepted(at.answer(initiator.headers));
      return { headers: initiator.headers, reply: answer.reply, frame: established(initiator.receive(answer.reply)).seal(bytes("same payload")) };
    };
    const first = runSeeded("same");
    expect(runSeeded("same")).toEqual(first);
    expect(runSeeded("other").frame).not.toEqual(first.frame);
  });

  test("a dialer on another network key is refused before any socket, naming both fingerprints", () => {
    const at = listener();
    const verdict = refused(at.answer(dialer(at, { networkKey: otherNetworkKey }).headers));
    const error = verdict.error as NetworkKeyMismatch;
    expect(error).toBeInstanceOf(NetworkKeyMismatch);
    expect([error.peerFingerprint, error.localFingerprint]).toEqual([fingerprint(otherNetworkKey), fingerprint(networkKey)]);
    expect(error.message).toContain(`Peer 10.0.0.1:50000 has a different network key (fingerprint ${fingerprint(otherNetworkKey)} vs ${fingerprint(networkKey)} here)`);
  });

  test("an impostor that copies our fingerprint but lacks the key costs one HMAC: no token, no signature, no remembered nonce", () => {
    let asked = 0;
    const at = listener({ admit: () => (++asked, true) });
    const headers = { ...dialer(at, { networkKey: otherNetworkKey }).headers, [FINGERPRINT_HEADER]: fingerprint(networkKey) };
    const verdict = refused(at.answer(headers));
    expect([verdict.status, verdict.error.code]).toEqual([403, "HANDSHAKE_FAILED"]);
    expect(verdict.error.message).toBe("10.0.0.1:50000 did not prove it holds the network key for this machine; refused before any WebSocket.");
    expect(asked).toBe(0);
  });

  test.each([
    ["no header", {}],
    ["not base64url", { [PROOF_HEADER]: "!".repeat(235) }],
    ["too short", { [PROOF_HEADER]: "A".repeat(234) }],
    ["too long", { [PROOF_HEADER]: "A".repeat(236) }],
    ["a megabyte", { [PROOF_HEADER]: "A".repeat(1 << 20) }],
  ])("a malformed proof (%s) is refused as no proof", (_name, headers) => {
    expect(refused(listener().answer(headers)).error.message).toContain("did not prove it holds the network key");
  });

  test("an understudy from before the proof (an upgrade ticket) is told to update", () => {
    const verdict = refused(listener().answer({ "x-understudy-ticket": `${"0".repeat(32)}.${"1".repeat(32)}.${"2".repeat(32)}` }));
    expect(verdict.error.message).toContain("runs an older understudy");
  });

  test("a replayed proof is refused before any token is spent; the first opened", () => {
    let asked = 0;
    const at = listener({ admit: () => (++asked, true) });
    const headers = dialer(at).headers;
    accepted(at.answer(headers));
    expect(refused(at.answer(headers)).error.message).toBe("10.0.0.1:50000 reused an upgrade proof; refused.");
    expect(asked).toBe(1);
  });

  test("a proof refused as busy is not remembered: a key holder past its share cannot fill the window for everyone", () => {
    let admit = false;
    const at = listener({ admit: () => admit });
    const headers = dialer(at).headers;
    expect(refused(at.answer(headers)).error.code).toBe("HANDSHAKE_BUSY");
    admit = true;
    accepted(at.answer(headers));
  });

  test("a proof made for another machine (sniffed on its way to the backup) opens nothing here", () => {
    const main = listener();
    const backup = listener({ machine: nacl.sign.keyPair.fromSeed(seed(32)) });
    const toBackup = dialer(backup).headers;
    expect(refused(main.answer(toBackup)).error.message).toContain("did not prove it holds the network key for this machine");
    accepted(backup.answer(toBackup));
  });

  test("a proof for another path opens nothing", () => {
    const at = listener();
    expect(refused(at.answer(dialer(at, {}, seededRandom("p"), "/files").headers, "/hub")).error.message).toContain("did not prove");
  });

  test("a proof is taken for two challenge windows at most, and never after a restart", () => {
    const at = listener();
    const early = dialer(at, {}, seededRandom("early")).headers;
    const later = dialer(at, {}, seededRandom("later")).headers;
    at.clock.t += CHALLENGE_WINDOW_MS;
    accepted(at.answer(early));
    at.clock.t += CHALLENGE_WINDOW_MS;
    expect(refused(at.answer(later)).error.message).toContain("made for an earlier run of this machine, or too old");
    const before = listener();
    const restarted = listener({}, seededRandom("next run"));
    expect(refused(restarted.answer(dialer(before).headers)).error.message).toContain("earlier run");
  });

  test("a listener that is not admitted (too busy) refuses with 503 after the MAC, before any signature work", () => {
    let asked = 0;
    const at = listener({ admit: () => (++asked, false) });
    const verdict = refused(at.answer(dialer(at).headers));
    expect([verdict.status, verdict.error.code, asked]).toEqual([503, "HANDSHAKE_BUSY", 1]);
  });

  test.each([
    ["the challenge", 0, "did not prove"],
    ["the dialer's nonce", 20, "did not prove"],
    ["the dialer's public key", 50, "did not prove"],
    ["the dialer's MAC", 90, "did not prove"],
    ["the dialer's signature", DIALER_PROOF_BYTES - 1, "its machine signature is invalid"],
  ])("the dialer's proof altered in %s is refused", (_name, offset, why) => {
    const at = listener();
    expect(refused(at.answer(flipProof(dialer(at).headers, offset))).error.message).toContain(why);
  });

  test.each([
    ["the listener's nonce", 5, "could not prove it holds the network key"],
    ["the listener's MAC", 2 + 64 + 3, "could not prove it holds the network key"],
    ["the listener's signature", LISTENER_PROOF_BYTES - 1, "10.0.0.2:7401 holds the network key but its machine signature is invalid; refused."],
  ])("%s altered in flight is refused by the dialer", (_name, offset, why) => {
    const at = listener();
    const initiator = dialer(at);
    const reply = accepted(at.answer(initiator.headers)).reply.slice();
    reply[offset]! ^= 0x40;
    expect(failed(initiator.receive(reply)).message).toContain(why);
  });

  test("another machine answering in the listener's place (its own valid proof) is refused: the proof names the machine that gave the challenge", () => {
    const at = listener();
    const other = listener({ machine: nacl.sign.keyPair.fromSeed(seed(32)) });
    const initiator = dialer(at);
    const reply = accepted(other.answer(dialer(other).headers)).reply;
    expect(failed(initiator.receive(reply)).message).toContain("answered as machine");
  });

  test("the dialer's proof reflected back to it as a reply does not establish (per-role labels)", () => {
    const at = listener();
    const initiator = dialer(at);
    const reflected = new Uint8Array(LISTENER_PROOF_BYTES);
    reflected.set([1, FrameKind.auth]);
    reflected.set(Buffer.from(initiator.headers[PROOF_HEADER]!, "base64url").subarray(16), 2);
    expect(failed(initiator.receive(reflected)).code).toBe("HANDSHAKE_FAILED");
  });

  test("connecting to ourselves is refused", () => {
    const at = listener();
    expect(refused(at.answer(dialer(at, { machine: responderMachine }).headers)).error.message).toBe(
      "10.0.0.1:50000 is this machine itself (same machine key); connect to another machine.",
    );
  });

  test.each([
    ["garbage", new Uint8Array([0xde, 0xad]), "WIRE_VERSION"],
    ["a short proof", new Uint8Array([1, FrameKind.auth, 0, 0]), "WIRE_MALFORMED"],
    ["a long proof", new Uint8Array(LISTENER_PROOF_BYTES + 1).fill(1).fill(FrameKind.auth, 1, 2), "WIRE_MALFORMED"],
    ["a channel frame instead", new Uint8Array(LISTENER_PROOF_BYTES).fill(1).fill(FrameKind.channel, 1, 2), "WIRE_MALFORMED"],
  ])("a reply that is %s is refused with the wire error", (_name, message, code) => {
    expect(failed(dialer(listener()).receive(message)).code).toBe(code);
  });

  test("a second reply after the handshake is refused", () => {
    const at = listener();
    const initiator = dialer(at);
    const { reply } = accepted(at.answer(initiator.headers));
    established(initiator.receive(reply));
    expect(failed(initiator.receive(reply)).message).toContain("already over");
  });
});

describe("SecureChannel", () => {
  test("frames round trip in both directions, in order", () => {
    const { a, b } = connected();
    for (let i = 0; i < 5; i++) {
      expect(text(b.open(a.seal(bytes(`a→b ${i}`))))).toBe(`a→b ${i}`);
      expect(text(a.open(b.seal(bytes(`b→a ${i}`))))).toBe(`b→a ${i}`);
    }
    expect(a.counters).toEqual({ sent: 5, received: 5 });
  });

  test("frames are AES-256-GCM under a per-direction key: header, counter nonce, body, tag; the kind byte is authenticated", () => {
    const { a, b } = connected();
    const frame = a.seal(bytes("go"));
    expect([frame[0], frame[1], frame.length]).toEqual([1, FrameKind.channel, 2 + 12 + 2 + 16]);
    // b's first frame to a has the same counter as a's to b; one key per direction keeps their nonces apart.
    expect(b.seal(bytes("go")).subarray(14)).not.toEqual(frame.subarray(14));
    const relabelled = frame.slice();
    relabelled[1] = FrameKind.bulk;
    expect(caught(() => b.open(relabelled))).toBeInstanceOf(MalformedFrame);
    const shortened = frame.subarray(0, MIN_CHANNEL_FRAME_BYTES - 1);
    expect(caught(() => b.open(shortened))).toBeInstanceOf(MalformedFrame);
    expect(text(b.open(frame))).toBe("go");
  });

  test("a tampered frame is refused and does not advance the counter", () => {
    const { a, b } = connected();
    const frame = a.seal(bytes("fade to black"));
    const tampered = frame.slice();
    tampered[tampered.length - 1]! ^= 0x01;
    expect(caught(() => b.open(tampered))).toBeInstanceOf(UnsealFailed);
    expect(text(b.open(frame))).toBe("fade to black");
  });

  test("a replayed frame is refused with its counter", () => {
    const { a, b } = connected();
    const first = a.seal(bytes("one"));
    b.open(first);
    const error = caught(() => b.open(first)) as ReplayedFrame;
    expect(error).toBeInstanceOf(ReplayedFrame);
    expect(error.code).toBe("WIRE_REPLAY");
    expect(error.message).toBe(
      "The connection to 10.0.0.1:50000 delivered a frame it already sent (#0, expected #1); the connection is no longer trustworthy and should be closed.",
    );
  });

  test("a reordered (or dropped) frame is refused", () => {
    const { a, b } = connected();
    const first = a.seal(bytes("one"));
    const second = a.seal(bytes("two"));
    expect(caught(() => b.open(second)).message).toContain("a frame out of order (#1, expected #0)");
    expect(text(b.open(first))).toBe("one");
    expect(text(b.open(second))).toBe("two");
  });

  test("a frame reflected back to its sender does not open (one key per direction)", () => {
    const { a } = connected();
    expect(caught(() => a.open(a.seal(bytes("echo"))))).toBeInstanceOf(UnsealFailed);
  });

  test("a frame of another lane or with a forged counter prefix is refused before crypto", () => {
    const { a, b } = connected();
    const frame = a.seal(bytes("x"));
    const wrongKind = frame.slice();
    wrongKind[1] = FrameKind.heartbeat;
    expect(caught(() => b.open(wrongKind))).toBeInstanceOf(MalformedFrame);
    const forged = frame.slice();
    forged[2] = 1;
    expect(caught(() => b.open(forged))).toBeInstanceOf(MalformedFrame);
  });
});

describe("bulk lane (AES-256-GCM)", () => {
  const chunk = seededRandom("chunk")(1024 * 1024);

  test("a 1 MiB chunk round trips, both directions", () => {
    const { a, b } = connected();
    const frame = a.bulk.seal(chunk);
    expect(frame.length).toBe(2 + 12 + chunk.length + 16);
    expect(Buffer.from(b.bulk.open(frame)).equals(Buffer.from(chunk))).toBe(true);
    expect(Buffer.from(a.bulk.open(b.bulk.seal(chunk.subarray(0, 10))))).toEqual(Buffer.from(chunk.subarray(0, 10)));
  });

  test("a header sealed before a chunk opens as header and chunk in one, as if joined before sealing", () => {
    const { a, b } = connected();
    const head = Uint8Array.of(1, 0, 0, 0, 7);
    const frame = a.bulk.seal(chunk, head);
    expect(frame.length).toBe(2 + 12 + head.length + chunk.length + 16);
    expect(Buffer.from(b.bulk.open(frame)).equals(Buffer.concat([head, chunk]))).toBe(true);
  });

  test.each([
    ["a body byte", () => 1000, UnsealFailed],
    ["the tag", (length: number) => length - 1, UnsealFailed],
    ["the counter (refused before decrypting)", () => 13, ReplayedFrame],
  ])("altering %s is refused", (_name, position, expected) => {
    const { a, b } = connected();
    const frame = a.bulk.seal(chunk.subarray(0, 4096));
    frame[position(frame.length)]! ^= 0x01;
    expect(caught(() => b.bulk.open(frame))).toBeInstanceOf(expected);
  });

  test("replays are refused; channel and bulk counters are independent", () => {
    const { a, b } = connected();
    const frame = a.bulk.seal(chunk.subarray(0, 100));
    b.bulk.open(frame);
    expect(caught(() => b.bulk.open(frame))).toBeInstanceOf(ReplayedFrame);
    expect(text(b.open(a.seal(bytes("small entry"))))).toBe("small entry");
  });
});
