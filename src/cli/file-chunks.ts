/**
 * A local file as the show file sees it: its size and the SHA-256 of each 1 MiB
 * chunk, read a chunk at a time (a file of gigabytes is never in memory).
 */
import { closeSync, openSync, readSync } from "node:fs";
import { ASSET_CHUNK_BYTES } from "../store/asset-tables.ts";
import { fileHashOfChunks, sha256Hex } from "../store/content-hash.ts";

export { ASSET_CHUNK_BYTES as CHUNK_BYTES } from "../store/asset-tables.ts";

/** A file's content by reference; `hash` is fileHashOfChunks(chunks). */
export type ChunkedFile = { readonly size: number; readonly chunks: readonly string[]; readonly hash: string };

/** Reads `path` chunk by chunk and hashes each. */
export function chunkFile(path: string): ChunkedFile {
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(ASSET_CHUNK_BYTES);
    const chunks: string[] = [];
    let size = 0;
    for (;;) {
      const got = readFully(fd, buffer, size);
      if (got === 0) break;
      chunks.push(sha256Hex(buffer.subarray(0, got)));
      size += got;
      if (got < ASSET_CHUNK_BYTES) break;
    }
    return { size, chunks, hash: fileHashOfChunks(chunks) };
  } finally {
    closeSync(fd);
  }
}

/** Chunk `idx` of the open file `fd` (a fresh buffer: it may be in flight while the next is read). */
export function readChunkAt(fd: number, idx: number, size: number): Uint8Array {
  const length = Math.min(ASSET_CHUNK_BYTES, size - idx * ASSET_CHUNK_BYTES);
  const buffer = Buffer.allocUnsafe(Math.max(0, length));
  const got = readFully(fd, buffer, idx * ASSET_CHUNK_BYTES);
  return buffer.subarray(0, got);
}

/** Reads until `buffer` is full or the file ends; returns how many bytes. */
function readFully(fd: number, buffer: Buffer, position: number): number {
  let got = 0;
  while (got < buffer.length) {
    const n = readSync(fd, buffer, got, buffer.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
