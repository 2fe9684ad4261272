import { describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fingerprint } from "../../../src/core/keys.ts";
import { MIN_CHANNEL_FRAME_BYTES, type SecureChannel } from "../../../src/net/channel.ts";
import { seededRandom, type RandomBytes } from "../../../src/net/crypto.ts";
import { FrameKind } from "../../../src/net/envelope.ts";
import { HandshakeFailed, MalformedFrame, NetworkKeyMismatch, ReplayedFrame, UnsealFailed } from "../../../src/net/errors.ts";
import {
  AUTH_BYTES,
  HELLO_BYTES,
  HandshakeInitiator,
  HandshakeResponder,
  type HandshakeAdmit,
  type HandshakeOptions,
  type HandshakeStep,
} from "../../../src/net/handshake.ts";
import { caught } from "../../support/caught.ts";

const seed = seededRandom("handshake test");
const networkKey = seed(32);
const otherNetworkKey = seed(32);
const initiatorMachine = nacl.sign.keyPair.fromSeed(seed(32));
const responderMachine = nacl.sign.keyPair.fromSeed(seed(32));
const INITIATOR_ADDRESS = "10.0.0.1:50000";
const RESPONDER_ADDRESS = "10.0.0.2:7401";

type Options = Partial<HandshakeOptions>;
/** Rewrites a message in flight; `index` counts messages in that direction. */
type Tamper = (message: Uint8Array, index: number) => Uint8Array;

function parties(initiator: Options = {}, responder: Options & { admit?: HandshakeAdmit } = {}, random: RandomBytes = seededRandom("nonces")) {
  return {
    initiator: new HandshakeInitiator({ networkKey, machine: initiatorMachine, peerAddress: RESPONDER_ADDRESS, random, ...initiator }),
    responder: new HandshakeResponder({ networkKey, machine: responderMachine, peerAddress: INITIATOR_ADDRESS, random, ...responder }),
  };
}

/** Runs a handshake over an in-memory ordered pipe; a side that finished stops receiving, like a closed socket. */
function run(
  initiator: HandshakeInitiator,
  responder: HandshakeResponder,
  tamper: { toResponder?: Tamper; toInitiator?: Tamper } = {},
) {
  const toResponder = [initiator.start()];
  const toInitiator: Uint8Array[] = [];
  const sent = { toResponder: [] as Uint8Array[], toInitiator: [] as Uint8Array[] };
  let initiatorEnd: HandshakeStep | undefined;
  let responderEnd: HandshakeStep | undefined;
  while (toResponder.length > 0 || toInitiator.length > 0) {
    for (const message of toResponder.splice(0)) {
      const delivered = tamper.toResponder?.(message.slice(), sent.toResponder.length) ?? message;
      sent.toResponder.push(delivered);
      if (responder.finished) continue;
      const step = responder.receive(delivered);
      toInitiator.push(...step.send);
      if (step.status !== "continue") responderEnd = step;
    }
    for (const message of toInitiator.splice(0)) {
      const delivered = tamper.toInitiator?.(message.slice(), sent.toInitiator.length) ?? message;
      sent.toInitiator.push(delivered);
      if (initiator.finished) continue;
      const step = initiator.receive(delivered);
      toResponder.push(...step.send);
      if (step.status !== "continue") initiatorEnd = step;
    }
  }
  return { initiatorEnd, responderEnd, sent };
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
  const { initiator, responder } = parties();
  const result = run(initiator, responder);
  return { a: established(result.initiatorEnd), b: established(result.responderEnd) };
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe("handshake", () => {
  test("establishes a channel; each side learns the other's machine id", () => {
    const { initiator, responder } = parties();
    const { initiatorEnd, responderEnd, sent } = run(initiator, responder);
    const a = established(initiatorEnd);
    const b = established(responderEnd);
    expect(a.peer.machineId).toBe(fingerprint(responderMachine.publicKey));
    expect(b.peer.machineId).toBe(fingerprint(initiatorMachine.publicKey));
    expect(a.peer.address).toBe(RESPONDER_ADDRESS);
    expect(sent.toResponder.map((m) => [m[1], m.length])).toEqual([
      [FrameKind.hello, HELLO_BYTES],
      [FrameKind.auth, AUTH_BYTES],
    ]);
    expect(sent.toInitiator.map((m) => [m[1], m.length])).toEqual([
      [FrameKind.hello, HELLO_BYTES],
      [FrameKind.auth, AUTH_BYTES],
    ]);
  });

  test("is deterministic under injected randomness, and fresh per connection otherwise", () => {
    const runSeeded = (seedText: string) => {
      const { initiator, responder } = parties({}, {}, seededRandom(seedText));
      return run(initiator, responder);
    };
    const first = runSeeded("same");
    const again = runSeeded("same");
    const other = runSeeded("other");
    expect(again.sent).toEqual(first.sent);
    const frame = (r: typeof first) => established(r.initiatorEnd).seal(bytes("same payload"));
    expect(frame(again)).toEqual(frame(first));
    expect(frame(other)).not.toEqual(frame(first));
  });

  test("a different network key is refused on both sides, naming both fingerprints", () => {
    const { initiator, responder } = parties({}, { networkKey: otherNetworkKey });
    const { initiatorEnd, responderEnd } = run(initiator, responder);
    const ours = fingerprint(networkKey);
    const theirs = fingerprint(otherNetworkKey);
    const atInitiator = failed(initiatorEnd) as NetworkKeyMismatch;
    const atResponder = failed(responderEnd) as NetworkKeyMismatch;
    expect(atInitiator).toBeInstanceOf(NetworkKeyMismatch);
    expect(atInitiator.code).toBe("NETWORK_KEY_MISMATCH");
    expect(atInitiator.message).toBe(
      `Peer 10.0.0.2:7401 has a different network key (fingerprint ${theirs} vs ${ours} here). Install the same network key on every machine.`,
    );
    expect([atResponder.peerFingerprint, atResponder.localFingerprint]).toEqual([ours, theirs]);
    expect(atResponder.message).toContain(`Peer 10.0.0.1:50000 has a different network key (fingerprint ${ours} vs ${theirs} here)`);
  });

  test("an impostor that copies our fingerprint but lacks the key is refused, and never made the responder sign", () => {
    const { initiator, responder } = parties({ networkKey: otherNetworkKey });
    const setFingerprint = (key: Uint8Array) => (message: Uint8Array) => {
      if (message[1] === FrameKind.hello) message.set(Buffer.from(fingerprint(key), "hex"), HELLO_BYTES - 8);
      return message;
    };
    const { responderEnd, sent } = run(initiator, responder, {
      toResponder: setFingerprint(networkKey),
      toInitiator: setFingerprint(otherNetworkKey),
    });
    const error = failed(responderEnd);
    expect(error).toBeInstanceOf(HandshakeFailed);
    expect(error.message).toBe("10.0.0.1:50000 showed our network key fingerprint but could not prove it holds the key; refused.");
    // The responder's only answer was its hello: no Ed25519 signature for a stranger (a flood of those stalled the main).
    expect(sent.toInitiator.map((m) => m[1])).toEqual([FrameKind.hello]);
  });

  test("a responder that is not admitted (too busy) refuses after the MAC, before any signature work", () => {
    let asked = 0;
    const { initiator, responder } = parties({}, { admit: () => (++asked, false) });
    const { responderEnd, sent } = run(initiator, responder);
    expect(failed(responderEnd).code).toBe("HANDSHAKE_BUSY");
    expect(asked).toBe(1);
    expect(sent.toInitiator.map((m) => m[1])).toEqual([FrameKind.hello]);
  });

  test.each([
    ["a hello nonce altered in flight (transcripts differ)", "toInitiator", 0, 5, "responder"],
    ["the responder's MAC", "toInitiator", 1, 2, "initiator"],
    ["the initiator's MAC", "toResponder", 1, 2, "responder"],
  ] as const)("%s is refused", (_name, direction, index, offset, refuser) => {
    const { initiator, responder } = parties();
    const flip: Tamper = (message, i) => {
      if (i === index) message[offset]! ^= 0x40;
      return message;
    };
    const result = run(initiator, responder, { [direction]: flip });
    const end = refuser === "initiator" ? result.initiatorEnd : result.responderEnd;
    expect(failed(end).message).toContain("could not prove it holds the key");
  });

  test("a bad machine signature is refused", () => {
    const { initiator, responder } = parties();
    const result = run(initiator, responder, {
      toInitiator: (message, i) => {
        if (i === 1) message[AUTH_BYTES - 1]! ^= 0x01;
        return message;
      },
    });
    expect(failed(result.initiatorEnd).message).toBe("10.0.0.2:7401 holds the network key but its machine signature is invalid; refused.");
  });

  test("an initiator's proof reflected back to it is refused (per-role labels)", () => {
    const { initiator, responder } = parties();
    const [helloR] = responder.receive(initiator.start()).send;
    const [authI] = initiator.receive(helloR!).send;
    expect(failed(initiator.receive(authI!)).message).toContain("could not prove");
  });

  test("connecting to ourselves is refused", () => {
    const { initiator, responder } = parties({}, { machine: initiatorMachine });
    const error = failed(run(initiator, responder).responderEnd);
    expect(error.message).toBe("10.0.0.1:50000 is this machine itself (same machine key); connect to another machine.");
  });

  test.each([
    ["garbage", new Uint8Array([0xde, 0xad]), "WIRE_VERSION"],
    ["a short hello", new Uint8Array([1, FrameKind.hello, 0, 0]), "WIRE_MALFORMED"],
    ["a long hello", new Uint8Array(HELLO_BYTES + 1).fill(1), "WIRE_MALFORMED"],
    ["a proof before the hello", new Uint8Array(AUTH_BYTES).fill(1).fill(FrameKind.auth, 1, 2), "WIRE_MALFORMED"],
  ])("%s is refused with the wire error as cause", (_name, message, causeCode) => {
    const { responder } = parties();
    const error = failed(responder.receive(message));
    expect(error.code).toBe("HANDSHAKE_FAILED");
    expect((error.cause as { code: string }).code).toBe(causeCode);
    expect(error.message).toStartWith("The handshake with 10.0.0.1:50000 failed: ");
  });

  test("a message after the handshake finished is refused, and start() cannot be skipped", () => {
    const { initiator, responder } = parties();
    const { sent } = run(initiator, responder);
    expect(failed(responder.receive(sent.toResponder[0]!)).message).toContain("after the handshake");
    expect(() => new HandshakeInitiator({ networkKey, machine: initiatorMachine, peerAddress: "x" }).receive(new Uint8Array(2))).toThrow(
      "before start()",
    );
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
