import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { ChunkHasher, OFF_THREAD_MIN_BYTES } from "../../../src/store/chunk-hasher.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";

describe("ChunkHasher", () => {
  test("hashes small and big chunks as sha256Hex does, leaving the caller's bytes intact", async () => {
    const hasher = new ChunkHasher();
    try {
      const chunks = [1, OFF_THREAD_MIN_BYTES - 1, OFF_THREAD_MIN_BYTES, 1024 * 1024].map((n) => new Uint8Array(randomBytes(n)));
      const before = chunks.map((c) => Buffer.from(c));
      const hashes = await Promise.all(chunks.map((c) => hasher.sha256Hex(c)));
      expect(hashes).toEqual(chunks.map((c) => sha256Hex(c)));
      chunks.forEach((c, i) => {
        expect(c.byteLength).toBe(before[i]!.length);
        expect(Buffer.from(c).equals(before[i]!)).toBe(true);
      });
    } finally {
      hasher.close();
    }
  });

  test("a Buffer (whose slice shares memory) stays whole and readable: the worker gets a copy", async () => {
    const hasher = new ChunkHasher();
    try {
      const whole = randomBytes(2 * OFF_THREAD_MIN_BYTES);
      const chunk = whole.subarray(OFF_THREAD_MIN_BYTES);
      const copy = Buffer.from(chunk);
      expect(await hasher.sha256Hex(chunk)).toBe(sha256Hex(copy));
      expect(whole.buffer.byteLength).toBeGreaterThan(0);
      expect(chunk.equals(copy)).toBe(true);
    } finally {
      hasher.close();
    }
  });

  test("answers come in the order asked, a small chunk behind a big one included", async () => {
    const hasher = new ChunkHasher();
    try {
      const sizes = [4 * OFF_THREAD_MIN_BYTES, 10, 2 * OFF_THREAD_MIN_BYTES, 1, 3];
      const order: number[] = [];
      await Promise.all(sizes.map((n, i) => hasher.sha256Hex(new Uint8Array(randomBytes(n))).then(() => order.push(i))));
      expect(order).toEqual([0, 1, 2, 3, 4]);
    } finally {
      hasher.close();
    }
  });

  test("many chunks at once each get their own hash", async () => {
    const hasher = new ChunkHasher();
    try {
      const chunks = Array.from({ length: 24 }, () => new Uint8Array(randomBytes(OFF_THREAD_MIN_BYTES + 17)));
      expect(await Promise.all(chunks.map((c) => hasher.sha256Hex(c)))).toEqual(chunks.map((c) => sha256Hex(c)));
    } finally {
      hasher.close();
    }
  });

  test("a worker that fails or answers nonsense never loses or misnames a chunk", async () => {
    for (const source of ["throw new Error('broken worker');", "self.onmessage = (e) => postMessage({ id: e.data.id, hash: 7 });", "self.onmessage = () => { throw new Error('mid-hash'); };"]) {
      const hasher = new ChunkHasher(source);
      try {
        const chunks = Array.from({ length: 3 }, () => new Uint8Array(randomBytes(OFF_THREAD_MIN_BYTES * 2)));
        expect(await Promise.all(chunks.map((c) => hasher.sha256Hex(c)))).toEqual(chunks.map((c) => sha256Hex(c)));
        // And again, on the worker started after the failure.
        expect(await hasher.sha256Hex(chunks[0]!)).toBe(sha256Hex(chunks[0]!));
      } finally {
        hasher.close();
      }
    }
  });

  test("chunks still held when it closes are hashed here", async () => {
    const hasher = new ChunkHasher("self.onmessage = () => {};");
    const chunk = new Uint8Array(randomBytes(OFF_THREAD_MIN_BYTES));
    const hash = hasher.sha256Hex(chunk);
    hasher.close();
    expect(await hash).toBe(sha256Hex(chunk));
  });
});
