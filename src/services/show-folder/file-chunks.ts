/**
 * A local file as the show file sees it: its size and the SHA-256 of each 1 MiB
 * chunk, read a chunk at a time (a file of gigabytes is never in memory).
 *
 * Reads are asynchronous on purpose: the node hashes show folders in the same
 * process that sends heartbeats, and each awaited read hands the event loop
 * back between chunks, so hashing a large folder delays a heartbeat by about
 * one chunk's hash (≈ 1 ms), never by the whole folder.
 */
import { open, type FileHandle } from "node:fs/promises";
import { ASSET_CHUNK_BYTES } from "../../store/asset-tables.ts";
import { fileHashOfChunks, sha256Hex } from "../../store/content-hash.ts";

export { ASSET_CHUNK_BYTES as CHUNK_BYTES } from "../../store/asset-tables.ts";

/** A file's content by reference; `hash` is fileHashOfChunks(chunks). */
export type ChunkedFile = { readonly size: number; readonly chunks: readonly string[]; readonly hash: string };

/** Reads `path` chunk by chunk and hashes each. */
export async function chunkFile(path: string): Promise<ChunkedFile> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(ASSET_CHUNK_BYTES);
    const chunks: string[] = [];
    let size = 0;
    for (;;) {
      const got = await readFully(handle, buffer, size);
      if (got === 0) break;
      chunks.push(sha256Hex(buffer.subarray(0, got)));
      size += got;
      if (got < ASSET_CHUNK_BYTES) break;
    }
    return { size, chunks, hash: fileHashOfChunks(chunks) };
  } finally {
    await handle.close();
  }
}

/** Chunk `idx` of the open file (a fresh buffer: it may be in flight while the next is read). */
export async function readChunkAt(handle: FileHandle, idx: number, size: number): Promise<Uint8Array> {
  const length = Math.min(ASSET_CHUNK_BYTES, size - idx * ASSET_CHUNK_BYTES);
  const buffer = Buffer.allocUnsafe(Math.max(0, length));
  const got = await readFully(handle, buffer, idx * ASSET_CHUNK_BYTES);
  return buffer.subarray(0, got);
}

/** Reads until `buffer` is full or the file ends; returns how many bytes. */
async function readFully(handle: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buffer.length) {
    const { bytesRead } = await handle.read(buffer, got, buffer.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}
