/**
 * Native AES-256-GCM for the many small frames of the peer channel and the hub
 * fan-out: several times cheaper per 100-byte frame than tweetnacl's secretbox,
 * which cost about a third of each node's CPU in the hub bench (FACTS.md).
 *
 *   prefix (header, then whatever the kind carries, ending in a 12-byte nonce) | ciphertext | tag (16)
 *
 * The whole prefix is authenticated as additional data, so a changed kind,
 * epoch or counter does not open. The caller owns nonce uniqueness per key.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { UnsealFailed } from "./errors.ts";

const CIPHER = "aes-256-gcm";
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;

/** Seals `payload` after `prefix`, whose last 12 bytes are the nonce. */
export function sealAead(key: Uint8Array, prefix: Uint8Array, payload: Uint8Array): Uint8Array {
  const cipher = createCipheriv(CIPHER, key, prefix.subarray(prefix.length - AEAD_NONCE_BYTES));
  cipher.setAAD(prefix);
  const body = cipher.update(payload);
  const tail = cipher.final();
  // Every byte is written below: no need to zero the buffer first.
  const out = Buffer.allocUnsafe(prefix.length + body.length + tail.length + AEAD_TAG_BYTES);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  if (tail.length > 0) out.set(tail, prefix.length + body.length);
  out.set(cipher.getAuthTag(), out.length - AEAD_TAG_BYTES);
  // A plain view, so a caller's `slice()` copies as it does on every other frame (a Buffer's would not).
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Opens a frame sealed by `sealAead` with a prefix of `prefixBytes` (the caller checked the
 * frame is at least prefix + tag long). Throws UnsealFailed naming `what` ("A peer frame").
 */
export function openAead(key: Uint8Array, frame: Uint8Array, prefixBytes: number, from: string, what: string): Uint8Array {
  const decipher = createDecipheriv(CIPHER, key, frame.subarray(prefixBytes - AEAD_NONCE_BYTES, prefixBytes));
  decipher.setAAD(frame.subarray(0, prefixBytes));
  decipher.setAuthTag(frame.subarray(frame.length - AEAD_TAG_BYTES));
  let plain: Buffer;
  try {
    // update() hands out unauthenticated bytes; they are only returned once final() has checked the tag.
    const body = decipher.update(frame.subarray(prefixBytes, frame.length - AEAD_TAG_BYTES));
    const tail = decipher.final();
    plain = tail.length === 0 ? body : Buffer.concat([body, tail]);
  } catch {
    throw new UnsealFailed(from, what);
  }
  return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
}
