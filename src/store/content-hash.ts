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

/** SHA-256 of no bytes: the content address of an empty show file. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * A show file's content address from its 1 MiB chunks' hashes: the chunk's own hash for a file of
 * one chunk (so it equals SHA-256 of the content, as it always did for small files), SHA-256 of
 * no bytes for an empty file, and a hash over the chunk hashes otherwise. Any machine holding the
 * chunk list can check it without reading a byte of content.
 */
export function fileHashOfChunks(chunks: readonly string[]): string {
  if (chunks.length === 0) return EMPTY_SHA256;
  if (chunks.length === 1) return chunks[0]!;
  return createHash("sha256").update(`understudy.chunks.v1\n${chunks.join("\n")}`).digest("hex");
}
