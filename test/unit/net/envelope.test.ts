import { describe, expect, test } from "bun:test";
import { MIN_BROADCAST_FRAME_BYTES, broadcastEpoch, openBroadcast, sealBroadcast } from "../../../src/net/broadcast.ts";
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

  test("a secretbox peer frame or broadcast of an older understudy is refused before crypto, saying to update it", () => {
    for (const retired of [0x01, 0x02]) {
      const frame = sealed();
      frame[1] = retired;
      const error = caught(() => frameKind(frame, from)) as MalformedFrame;
      expect(error).toBeInstanceOf(MalformedFrame);
      expect(error.message).toContain("an older understudy does; update that machine");
    }
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

  test("layout: header, epoch, sealer id, counter nonce, AES-GCM body and tag; counters go up", () => {
    const key = deriveBroadcastKey(networkKey, 6);
    const first = sealBroadcast(key, payload, random);
    const second = sealBroadcast(key, payload, random);
    expect([first[0], first[1]]).toEqual([1, FrameKind.broadcast]);
    expect(first.length).toBe(2 + 8 + 16 + 12 + payload.length + 16);
    expect(first.subarray(10, 26)).toEqual(second.subarray(10, 26));
    expect([first[37], second[37]]).toEqual([0, 1]);
  });

  test("two sealers of one epoch (the hub, a node's app gateway) never share a key, so their equal counters never share a nonce", () => {
    const hub = deriveBroadcastKey(networkKey, 6);
    const gateway = deriveBroadcastKey(networkKey, 6);
    const a = sealBroadcast(hub, payload, seededRandom("hub"));
    const b = sealBroadcast(gateway, payload, seededRandom("gateway"));
    expect(a.subarray(26, 38)).toEqual(b.subarray(26, 38));
    expect(a.subarray(10, 26)).not.toEqual(b.subarray(10, 26));
    expect(a.subarray(38)).not.toEqual(b.subarray(38));
    expect(openBroadcast(hub, b, from)).toEqual(payload);
    expect(openBroadcast(gateway, a, from)).toEqual(payload);
  });

  test("a changed sealer id or counter does not open (both are authenticated)", () => {
    const key = deriveBroadcastKey(networkKey, 6);
    for (const at of [12, 37]) {
      const frame = sealBroadcast(key, payload, random);
      frame[at]! ^= 0x01;
      expect(caught(() => openBroadcast(key, frame, from))).toBeInstanceOf(UnsealFailed);
    }
  });

  test("a short broadcast is refused before crypto", () => {
    const frame = sealBroadcast(deriveBroadcastKey(networkKey, 6), new Uint8Array(0), random);
    expect(frame.length).toBe(MIN_BROADCAST_FRAME_BYTES);
    expect(caught(() => openBroadcast(deriveBroadcastKey(networkKey, 6), frame.subarray(0, frame.length - 1), from))).toBeInstanceOf(MalformedFrame);
  });

  test("a forged epoch does not open (the epoch is in the authenticated nonce)", () => {
    const frame = sealBroadcast(deriveBroadcastKey(networkKey, 5), payload, random);
    frame[2 + 7] = 4;
    expect(caught(() => openBroadcast(deriveBroadcastKey(networkKey, 4), frame, from))).toBeInstanceOf(UnsealFailed);
  });
});
