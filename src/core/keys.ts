/**
 * Network keys and fingerprints. The network key is 32 random bytes shared by
 * every machine of a studio network; its fingerprint (first 8 bytes of its
 * SHA-512, hex) is what people compare on screens and in DNS-SD.
 * Randomness comes in from the caller so this module stays pure.
 */
import nacl from "tweetnacl";
import { InvalidInput } from "./errors.ts";

export const NETWORK_KEY_BYTES = 32;
const FILE_HEADER = "understudy-network-key-v1";

export function fingerprint(bytes: Uint8Array): string {
  return Buffer.from(nacl.hash(bytes).subarray(0, 8)).toString("hex");
}

/** Whether two network keys are the same bytes (a key saved again unchanged). */
export function sameNetworkKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** The text written to a key file: a header line, then the key in base64. */
export function formatNetworkKey(key: Uint8Array): string {
  if (key.length !== NETWORK_KEY_BYTES) throw new InvalidInput(`A network key has ${NETWORK_KEY_BYTES} bytes, this one has ${key.length}.`);
  return `${FILE_HEADER}\n${Buffer.from(key).toString("base64")}\n`;
}

/**
 * Reads a key from a key file's text or from what someone pasted: the file
 * format, bare base64 or 64 hex digits. `source` names where it came from.
 */
export function parseNetworkKey(text: string, source: string): Uint8Array {
  const body = text.replace(FILE_HEADER, "").replace(/\s+/g, "");
  let bytes: Uint8Array | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(body)) bytes = Buffer.from(body, "hex");
  else if (/^[A-Za-z0-9+/]{43}=$/.test(body)) bytes = Buffer.from(body, "base64");
  if (!bytes || bytes.length !== NETWORK_KEY_BYTES) {
    throw new InvalidInput(
      `${source} is not a network key: expected ${NETWORK_KEY_BYTES} bytes as base64 or hex (make one with "understudy keys generate").`,
      "key",
    );
  }
  return new Uint8Array(bytes);
}
