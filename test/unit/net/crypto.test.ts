import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import {
  LABELS,
  deriveBroadcastKey,
  deriveHeartbeatKey,
  deriveKey,
  hmacSha512,
  readUint64,
  seededRandom,
  uint64,
} from "../../../src/net/crypto.ts";

const networkKey = seededRandom("network key")(32);

describe("hmacSha512", () => {
  test.each([
    ["short key", 16, 10],
    ["block-size key", 128, 300],
    ["long key (hashed first)", 200, 0],
  ])("matches node:crypto for a %s", (_name, keyLength, messageLength) => {
    const random = seededRandom(`hmac ${keyLength}`);
    const key = random(keyLength);
    const message = random(messageLength);
    const expected = createHmac("sha512", key).update(message).digest();
    expect(Buffer.from(hmacSha512(key, message))).toEqual(expected);
  });
});

describe("key derivation", () => {
  test("labels and context keep keys apart", () => {
    const keys = [
      deriveKey(networkKey, LABELS.heartbeat),
      deriveKey(networkKey, LABELS.broadcast, uint64(1)),
      deriveKey(networkKey, LABELS.broadcast, uint64(2)),
      deriveKey(networkKey, LABELS.bulk),
    ].map((k) => Buffer.from(k).toString("hex"));
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.every((k) => k.length === 64)).toBe(true);
  });

  test("deriveBroadcastKey is per epoch, deterministic, and refuses a bad epoch", () => {
    expect(deriveBroadcastKey(networkKey, 7).key).toEqual(deriveBroadcastKey(networkKey, 7).key);
    expect(deriveBroadcastKey(networkKey, 7).key).not.toEqual(deriveBroadcastKey(networkKey, 8).key);
    expect(deriveBroadcastKey(networkKey, 7).epoch).toBe(7);
    expect(() => deriveBroadcastKey(networkKey, -1)).toThrow(/epoch/);
    expect(() => deriveBroadcastKey(networkKey, 1.5)).toThrow(/epoch/);
  });

  test("a network key of the wrong length is refused with its length", () => {
    expect(() => deriveHeartbeatKey(new Uint8Array(16))).toThrow("A network key has 32 bytes, this one has 16.");
  });
});

describe("seededRandom", () => {
  test("same seed, same bytes, across any read sizes", () => {
    const a = seededRandom("x");
    const b = seededRandom("x");
    const fromA = Buffer.concat([a(5), a(100), a(3)]);
    expect(Buffer.from(b(108))).toEqual(fromA);
    expect(Buffer.from(seededRandom("y")(108))).not.toEqual(fromA);
  });
});

describe("uint64", () => {
  test("round trips and refuses to alias values beyond 2^53", () => {
    expect(readUint64(uint64(2 ** 40 + 3), 0)).toBe(2 ** 40 + 3);
    expect(readUint64(new Uint8Array(8).fill(0xff), 0)).toBe(Number.POSITIVE_INFINITY);
  });
});
