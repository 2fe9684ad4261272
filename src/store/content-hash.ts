/**
 * Content addresses: SHA-256 in lowercase hex, for show-file blobs and asset
 * chunks alike. node:crypto (not Bun.CryptoHasher) so the store stays portable;
 * both hash about 1.5 GB/s here.
 */
import { createHash, type Hash } from "node:crypto";

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** For a whole asset hashed chunk by chunk. */
export function createSha256(): Hash {
  return createHash("sha256");
}

export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value);
}
