/** A pull cut short goes on where it stopped (services/show-folder/pull-download.ts through ShowFolder.applyPull). */
import { afterEach, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHUNK_BYTES } from "../../../../src/services/show-folder/file-chunks.ts";
import { ShowFolder, STATE_DIR } from "../../../../src/services/show-folder/show-folder.ts";
import type { PullResult } from "../../../../src/services/show-file-protocol.ts";
import { sha256Hex } from "../../../../src/store/content-hash.ts";

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A pretend server: files of random bytes, served by chunk hash, counting what it hands out. */
function server(files: Record<string, number>) {
  const chunks = new Map<string, Uint8Array>();
  const contents: Record<string, Buffer> = {};
  const result: PullResult = { head: 1, changes: [] };
  for (const [path, size] of Object.entries(files)) {
    const bytes = randomFillSync(Buffer.alloc(size));
    contents[path] = bytes;
    const hashes: string[] = [];
    for (let at = 0; at < size; at += CHUNK_BYTES) {
      const piece = bytes.subarray(at, at + CHUNK_BYTES);
      hashes.push(sha256Hex(piece));
      chunks.set(hashes.at(-1)!, piece);
    }
    result.changes.push({ path, size, chunks: hashes });
  }
  let served = 0;
  let failAfter = Infinity;
  const fetch = async (hash: string) => {
    if (served >= failAfter) throw new Error("the link dropped");
    served++;
    return chunks.get(hash)!;
  };
  return { result, contents, fetch, served: () => served, failAfter: (n: number) => (failAfter = served + n) };
}

test("a pull cut short keeps what it wrote and fetches only the rest when run again", async () => {
  const dir = mkdtempSync(join(tmpdir(), "understudy-resume-"));
  temps.push(dir);
  // 1 + 5 + 2 chunks, in path order.
  const show = server({ "a/first.bin": 1000, "b/big.bin": 4 * CHUNK_BYTES + 10, "c/last.bin": CHUNK_BYTES + 1 });
  show.failAfter(3); // first.bin whole, then two chunks of big.bin
  await expect(ShowFolder.open(dir).applyPull(show.result, show.fetch)).rejects.toThrow("the link dropped");
  expect(ShowFolder.open(dir).base).toBe(0);
  expect(readFileSync(join(dir, "a/first.bin")).equals(show.contents["a/first.bin"]!)).toBe(true);
  expect(existsSync(join(dir, "b/big.bin"))).toBe(false);
  expect(readdirSync(join(dir, STATE_DIR, "incoming")).length).toBe(1);

  const before = show.served();
  show.failAfter(Infinity);
  const applied = await ShowFolder.open(dir).applyPull(show.result, show.fetch);
  expect(show.served() - before).toBe(3 + 2);
  expect(applied.written).toEqual(["b/big.bin", "c/last.bin"]);
  for (const path of Object.keys(show.contents)) expect(readFileSync(join(dir, path)).equals(show.contents[path]!)).toBe(true);
  expect(ShowFolder.open(dir).base).toBe(1);
  expect(readdirSync(join(dir, STATE_DIR, "incoming"))).toEqual([]);
});

test("chunks that arrive together are written one event-loop turn apart, so the node's timers (its heartbeats) run in between", async () => {
  const dir = mkdtempSync(join(tmpdir(), "understudy-turns-"));
  temps.push(dir);
  // More chunks than the window: once it is full, every fetch is already answered (a burst off the wire).
  const show = server({ "clip.bin": 40 * CHUNK_BYTES });
  const order: string[] = [];
  const timer = setInterval(() => order.push("timer"), 0);
  try {
    await ShowFolder.open(dir).applyPull(show.result, show.fetch, { progressFor: () => ({ skip() {}, advance: () => order.push("chunk"), finish() {}, abandon() {} }) });
  } finally {
    clearInterval(timer);
  }
  const chunks = order.map((what, i) => (what === "chunk" ? i : -1)).filter((i) => i >= 0);
  expect(chunks).toHaveLength(40);
  // Between the first and the last chunk written, the timer got its turn again and again.
  const timerTurns = order.slice(chunks[0], chunks.at(-1)).filter((what) => what === "timer").length;
  expect(timerTurns).toBeGreaterThan(10);
});
