/**
 * A pull never replaces what the operator changed, also while it downloads (services/show-folder/pull-placement.ts):
 * the operator's save lands at set moments of a real pull into a real folder, through the fetcher, the progress
 * and the placement hook (no sleeps).
 */
import { afterEach, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHUNK_BYTES } from "../../../../src/services/show-folder/file-chunks.ts";
import { LocalChangesInTheWay, PullListRefused, ShowFolder, STATE_DIR } from "../../../../src/services/show-folder/show-folder.ts";
import type { PullResult } from "../../../../src/services/show-file-protocol.ts";
import { sha256Hex } from "../../../../src/store/content-hash.ts";

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "understudy-race-"));
  temps.push(dir);
  return dir;
}

/** A pretend server holding `files` (path → bytes) as revision `head`, serving chunks by hash. */
function revision(head: number, files: Record<string, Uint8Array | null>) {
  const chunks = new Map<string, Uint8Array>();
  const result: PullResult = { head, changes: [] };
  for (const [path, bytes] of Object.entries(files)) {
    if (bytes === null) {
      result.changes.push({ path, deleted: true });
      continue;
    }
    const hashes: string[] = [];
    for (let at = 0; at < bytes.length; at += CHUNK_BYTES) {
      const piece = bytes.subarray(at, at + CHUNK_BYTES);
      hashes.push(sha256Hex(piece));
      chunks.set(hashes.at(-1)!, piece);
    }
    result.changes.push({ path, size: bytes.length, chunks: hashes });
  }
  let fetched = 0;
  const hooks: { onFetch?: (n: number) => void } = {};
  const fetch = async (hash: string) => {
    hooks.onFetch?.(++fetched);
    return chunks.get(hash)!;
  };
  return { result, fetch, hooks };
}

const text = (s: string) => new TextEncoder().encode(s);
const read = (dir: string, path: string) => readFileSync(join(dir, path));

/** A folder at revision 9 with note.txt and other.txt; revision 10 changes both, note.txt to three chunks. */
async function folderAt9() {
  const dir = tempDir();
  const rev9 = revision(9, { "note.txt": text("v9 notes"), "other.txt": text("v9 other") });
  await ShowFolder.open(dir).applyPull(rev9.result, rev9.fetch);
  const note10 = randomFillSync(new Uint8Array(2 * CHUNK_BYTES + 5));
  const rev10 = revision(10, { "note.txt": note10, "other.txt": text("v10 other") });
  return { dir, note10, rev10 };
}

const moments = ["before the first chunk arrives", "between two chunks", "just before the rename"] as const;

for (const moment of moments) {
  test(`an edit saved ${moment} is kept; revision 10's version is saved beside it; the base stays`, async () => {
    const { dir, note10, rev10 } = await folderAt9();
    const edit = () => writeFileSync(join(dir, "note.txt"), "the operator's edit");
    let chunksWritten = 0;
    if (moment === "before the first chunk arrives") rev10.hooks.onFetch = (n) => n === 1 && edit();
    const progressFor = () => ({ skip() {}, advance: () => ++chunksWritten === 1 && moment === "between two chunks" && edit(), finish() {}, abandon() {} });
    const beforePlace = (path: string) => void (path === "note.txt" && moment === "just before the rename" && edit());

    const applied = await ShowFolder.open(dir).applyPull(rev10.result, rev10.fetch, { progressFor, beforePlace });

    expect(applied).toEqual({ base: 9, written: ["other.txt"], deleted: [], kept: [{ path: "note.txt", savedAs: "note.txt.from-revision-10" }] });
    expect(read(dir, "note.txt").toString()).toBe("the operator's edit");
    expect(read(dir, "note.txt.from-revision-10").equals(Buffer.from(note10))).toBe(true);
    expect(read(dir, "other.txt").toString()).toBe("v10 other");
    const folder = ShowFolder.open(dir);
    expect(folder.base).toBe(9);
    // The placed file is the server's, not the operator's; the edit and the saved version are.
    expect((await folder.changes()).map((c) => `${c.kind} ${c.path}`)).toEqual(["changed note.txt", "added note.txt.from-revision-10"]);
    // Pulling again names the edit instead of writing over it.
    expect(folder.applyPull(rev10.result, rev10.fetch)).rejects.toBeInstanceOf(LocalChangesInTheWay);
    expect(read(dir, "note.txt").toString()).toBe("the operator's edit");
  });
}

test("a file the server deletes is kept when the operator saves it just before the deletion", async () => {
  const dir = tempDir();
  const rev1 = revision(1, { "gone.txt": text("old"), "stays.txt": text("old") });
  await ShowFolder.open(dir).applyPull(rev1.result, rev1.fetch);
  const rev2 = revision(2, { "gone.txt": null, "stays.txt": text("new") });
  const beforePlace = (path: string) => void (path === "gone.txt" && writeFileSync(join(dir, "gone.txt"), "the operator's edit"));
  const applied = await ShowFolder.open(dir).applyPull(rev2.result, rev2.fetch, { beforePlace });
  expect(applied).toEqual({ base: 1, written: ["stays.txt"], deleted: [], kept: [{ path: "gone.txt", savedAs: null }] });
  expect(read(dir, "gone.txt").toString()).toBe("the operator's edit");
});

test("two files of identical content, and two empty files, pull like any other; nothing is listed as the operator's", async () => {
  const dir = tempDir();
  const rev = revision(1, { "empty1.txt": new Uint8Array(0), "empty2.txt": new Uint8Array(0), "a/same.txt": text("same"), "b/same.txt": text("same") });
  const applied = await ShowFolder.open(dir).applyPull(rev.result, rev.fetch);
  expect(applied.written.sort()).toEqual(["a/same.txt", "b/same.txt", "empty1.txt", "empty2.txt"]);
  expect(applied.base).toBe(1);
  expect(read(dir, "b/same.txt").toString()).toBe("same");
  expect(read(dir, "empty2.txt").length).toBe(0);
  expect(await ShowFolder.open(dir).changes()).toEqual([]);
  expect(readdirSync(join(dir, STATE_DIR, "incoming"))).toEqual([]);
});

test("a pull cut short records what it placed: a rerun places nothing twice and nothing shows as the operator's addition", async () => {
  const dir = tempDir();
  const big = randomFillSync(new Uint8Array(CHUNK_BYTES + 3));
  const rev = revision(1, { "a.txt": text("same"), "b.txt": text("same"), "c.bin": big });
  rev.hooks.onFetch = (n) => {
    if (n === 3) throw new Error("the link dropped");
  };
  await expect(ShowFolder.open(dir).applyPull(rev.result, rev.fetch)).rejects.toThrow("the link dropped");
  const cut = ShowFolder.open(dir);
  expect(cut.base).toBe(0);
  expect(existsSync(join(dir, "a.txt")) && existsSync(join(dir, "b.txt"))).toBe(true);
  expect(await cut.changes()).toEqual([]);

  rev.hooks.onFetch = undefined;
  const applied = await cut.applyPull(rev.result, rev.fetch);
  expect(applied).toEqual({ base: 1, written: ["c.bin"], deleted: [], kept: [] });
  expect(read(dir, "c.bin").equals(Buffer.from(big))).toBe(true);
});

test("a list no main would send is refused before a byte is written: a terabyte in no chunks, a name twice", async () => {
  const dir = tempDir();
  const huge: PullResult = { head: 1, changes: [{ path: "huge.bin", size: 2 ** 40, chunks: [] }] };
  const error = await ShowFolder.open(dir)
    .applyPull(huge, async () => new Uint8Array(0))
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(PullListRefused);
  expect((error as Error).message).toContain(`"huge.bin" says it holds ${2 ** 40} bytes, which take 1048576 pieces of 1048576 bytes, but it names 0`);
  const twice: PullResult = { head: 1, changes: [{ path: "a.txt", deleted: true }, { path: "a.txt", size: 0, chunks: [] }] };
  expect(ShowFolder.open(dir).applyPull(twice, async () => new Uint8Array(0))).rejects.toThrow('"a.txt" appears twice in one pull');
  expect(readdirSync(dir)).toEqual([]);
});

test("a chunk shorter than its place in the file is refused, though its hash matches", async () => {
  const dir = tempDir();
  const piece = text("short");
  // Two chunks of 1 MiB + 5 bytes, but the first is 5 bytes: the file would hold a hole its hash never covered.
  const lying: PullResult = { head: 1, changes: [{ path: "clip.bin", size: CHUNK_BYTES + 5, chunks: [sha256Hex(piece), sha256Hex(piece)] }] };
  expect(ShowFolder.open(dir).applyPull(lying, async () => piece)).rejects.toThrow("arrived damaged");
  expect(existsSync(join(dir, "clip.bin"))).toBe(false);
});
