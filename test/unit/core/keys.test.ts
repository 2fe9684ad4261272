import { expect, test } from "bun:test";
import { fingerprint, formatNetworkKey, parseNetworkKey } from "../../../src/core/keys.ts";

const key = new Uint8Array(32).map((_, i) => i);

test("a key file round-trips and its fingerprint is 8 bytes of SHA-512 in hex", () => {
  expect(parseNetworkKey(formatNetworkKey(key), "f")).toEqual(key);
  expect(fingerprint(key)).toMatch(/^[0-9a-f]{16}$/);
  expect(fingerprint(key)).not.toBe(fingerprint(new Uint8Array(32)));
});

test("pasted keys may be bare base64 or hex", () => {
  expect(parseNetworkKey(Buffer.from(key).toString("base64"), "paste")).toEqual(key);
  expect(parseNetworkKey(` ${Buffer.from(key).toString("hex")}\n`, "paste")).toEqual(key);
});

test.each(["", "hello", Buffer.from(new Uint8Array(16)).toString("base64"), "zz".repeat(32)])("refuses %p", (text) => {
  expect(() => parseNetworkKey(text, "The pasted network key")).toThrow("The pasted network key is not a network key");
});
