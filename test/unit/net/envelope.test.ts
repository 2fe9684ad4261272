import { describe, expect, test } from "bun:test";
import { broadcastEpoch, openBroadcast, sealBroadcast } from "../../../src/net/broadcast.ts";
import { deriveBroadcastKey, seededRandom } from "../../../src/net/crypto.ts";
import { FrameKind, MIN_ENVELOPE_BYTES, frameKind, openEnvelope, sealEnvelope } from "../../../src/net/envelope.ts";
import { BroadcastEpochMismatch, MalformedFrame, UnsealFailed, UnsupportedWireVersion } from "../../../src/net/errors.ts";
import { caught } from "../../support/caught.ts";

const random = seededRandom("envelope");
const key = random(32);
const otherKey = random(32);
const payload = new TextEncoder().encode("cue 12 go");
const from = "10.0.0.2:7401";

function sealed(): Uint8Array {
  return sealEnvelope(key, FrameKind.heartbeat, random(24), payload);
}

/** A heartbeat-kind frame of `length` bytes: valid header, zero body. */
function headed(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  bytes.set([1, FrameKind.heartbeat]);
  return bytes;
}

describe("envelope", () => {
  test("round trip; layout is version, kind, nonce, box", () => {
    const frame = sealed();
    expect(frame[0]).toBe(1);
    expect(frame[1]).toBe(FrameKind.heartbeat);
    expect(frame.length).toBe(2 + 24 + payload.length + 16);
    expect(openEnvelope(key, FrameKind.heartbeat, frame, from)).toEqual(payload);
  });

  test("an empty payload still round trips", () => {
    const frame = sealEnvelope(key, FrameKind.heartbeat, random(24), new Uint8Array(0));
    expect(frame.length).toBe(MIN_ENVELOPE_BYTES);
    expect(openEnvelope(key, FrameKind.heartbeat, frame, from).length).toBe(0);
  });

  test("every altered byte after the header is refused", () => {
    const frame = sealed();
    for (let i = 2; i < frame.length; i++) {
      const tampered = frame.slice();
      tampered[i]! ^= 0x01;
      const error = caught(() => openEnvelope(key, FrameKind.heartbeat, tampered, from));
      expect(error).toBeInstanceOf(UnsealFailed);
    }
  });

  test("another key is refused with an actionable message", () => {
    const error = caught(() => openEnvelope(otherKey, FrameKind.heartbeat, sealed(), from)) as UnsealFailed;
    expect(error.code).toBe("WIRE_UNSEALED");
    expect(error.message).toBe(
      "A heartbeat from 10.0.0.2:7401 could not be opened: it was altered on the way or sealed with another network key. Check that every machine has the same network key.",
    );
  });

  test.each([
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([1])],
    ["header only", new Uint8Array([1, FrameKind.heartbeat])],
    ["one byte short of a tag", headed(MIN_ENVELOPE_BYTES - 1)],
  ])("a short frame (%s) is refused before crypto", (_name, bytes) => {
    const error = caught(() => openEnvelope(key, FrameKind.heartbeat, bytes, from)) as MalformedFrame;
    expect(error).toBeInstanceOf(MalformedFrame);
    expect(error.code).toBe("WIRE_MALFORMED");
  });

  test("an unknown version is refused before crypto, naming both versions", () => {
    const frame = sealed();
    frame[0] = 2;
    const error = caught(() => openEnvelope(key, FrameKind.heartbeat, frame, from)) as UnsupportedWireVersion;
    expect(error).toBeInstanceOf(UnsupportedWireVersion);
    expect(error.code).toBe("WIRE_VERSION");
    expect(error.message).toContain("speaks wire version 2; this machine speaks version 1");
  });

  test("an unknown kind, or the wrong kind for the lane, is refused", () => {
    const frame = sealed();
    expect(frameKind(frame, from)).toBe(FrameKind.heartbeat);
    expect(caught(() => openEnvelope(key, FrameKind.channel, frame, from))).toBeInstanceOf(MalformedFrame);
    frame[1] = 0x7f;
    expect((caught(() => frameKind(frame, from)) as Error).message).toContain("unknown frame kind 0x7f");
  });
});

describe("broadcast", () => {
  const networkKey = seededRandom("broadcast network")(32);

  test("sealed once, opened by any holder of the epoch key", () => {
    const frame = sealBroadcast(deriveBroadcastKey(networkKey, 4), payload, random);
    expect(broadcastEpoch(frame, from)).toBe(4);
    for (let subscriber = 0; subscriber < 3; subscriber++) {
      expect(openBroadcast(deriveBroadcastKey(networkKey, 4), frame, from)).toEqual(payload);
    }
  });

  test("a frame of another epoch is refused with both epochs", () => {
    const frame = sealBroadcast(deriveBroadcastKey(networkKey, 5), payload, random);
    const error = caught(() => openBroadcast(deriveBroadcastKey(networkKey, 4), frame, from)) as BroadcastEpochMismatch;
    expect(error).toBeInstanceOf(BroadcastEpochMismatch);
    expect([error.frameEpoch, error.keyEpoch]).toEqual([5, 4]);
  });

  test("a forged epoch does not open (the epoch is in the authenticated nonce)", () => {
    const frame = sealBroadcast(deriveBroadcastKey(networkKey, 5), payload, random);
    frame[2 + 7] = 4;
    expect(caught(() => openBroadcast(deriveBroadcastKey(networkKey, 4), frame, from))).toBeInstanceOf(UnsealFailed);
  });
});
