import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { secretbox, secretboxOpen } from "../../../src/net/secretbox.ts";

test("the same boxes as tweetnacl's secretbox, both ways: the wire does not change", () => {
  for (const size of [0, 1, 200, 70_000]) {
    const key = nacl.randomBytes(32);
    const nonce = nacl.randomBytes(24);
    const payload = nacl.randomBytes(size);
    const box = secretbox(payload, nonce, key);
    expect(box).toEqual(nacl.secretbox(payload, nonce, key));
    expect(nacl.secretbox.open(box, nonce, key)).toEqual(payload);
    expect(secretboxOpen(nacl.secretbox(payload, nonce, key), nonce, key)).toEqual(payload);
  }
});

test("a tampered box, another key or another nonce opens to null", () => {
  const key = nacl.randomBytes(32);
  const nonce = nacl.randomBytes(24);
  const box = secretbox(new TextEncoder().encode("tally cam 1"), nonce, key);
  const tampered = box.slice();
  tampered[20]! ^= 1;
  expect(secretboxOpen(tampered, nonce, key)).toBeNull();
  expect(secretboxOpen(box, nonce, nacl.randomBytes(32))).toBeNull();
  expect(secretboxOpen(box, nacl.randomBytes(24), key)).toBeNull();
  expect(secretboxOpen(box.subarray(0, 10), nonce, key)).toBeNull();
});
