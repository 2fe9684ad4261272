/**
 * "Your changes to push": what the node lists for a show folder against its
 * base revision, honouring .understudyignore, hashing again only files whose
 * stamp moved (file-hash-cache.ts), and refusing a folder that cannot be one.
 */
import type { Clock } from "../../../../src/core/clock.ts";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../../../src/log.ts";
import { FileHashCache, RACY_MS } from "../../../../src/services/show-folder/file-hash-cache.ts";
import { FolderSync, NoShowFolder } from "../../../../src/services/show-folder/folder-sync.ts";
import { ShowFolder } from "../../../../src/services/show-folder/show-folder.ts";
import type { PullResult } from "../../../../src/services/show-file-protocol.ts";
import { fileHashOfChunks, sha256Hex } from "../../../../src/store/content-hash.ts";
import { tempDir } from "../../../support/machine-process.ts";

const served = new Map<string, Uint8Array>();
const pulled = (head: number, files: Record<string, string>): PullResult => ({
  head,
  changes: Object.entries(files).map(([path, text]) => {
    const bytes = new TextEncoder().encode(text);
    served.set(sha256Hex(bytes), bytes);
    return { path, size: bytes.length, chunks: [sha256Hex(bytes)] };
  }),
});

/** A folder at revision 4 holding the given files. */
async function folderAt4(files: Record<string, string>): Promise<string> {
  const dir = tempDir();
  await ShowFolder.open(dir).applyPull(pulled(4, files), async (hash) => served.get(hash)!);
  return dir;
}

const syncs: FolderSync[] = [];
afterEach(() => {
  for (const s of syncs.splice(0)) s.stop();
});

/** A FolderSync with no node (nothing to ask the server): only the folder's own side runs. */
function folderSync(folder: string | null, dataDir = tempDir(), wallClock: Clock = { now: () => Date.now() }): FolderSync {
  const sync = new FolderSync({
    dataDir,
    settings: () => ({ folder, autoPull: false }),
    node: () => null,
    readOnly: () => false,
    author: () => "booth",
    wallClock,
    log: createLogger(() => "json", () => {}),
  });
  syncs.push(sync);
  return sync;
}

describe("Your changes to push", () => {
  test("added, changed and deleted against the base, by path; .understudyignore's files are neither pushed nor taken as deleted", async () => {
    const dir = await folderAt4({ "rundown.txt": "news", "lower-thirds/a.txt": "anchor", "cache/old.tmp": "x", "gone.txt": "bye" });
    writeFileSync(join(dir, "rundown.txt"), "news at ten");
    writeFileSync(join(dir, "lower-thirds/b.txt"), "guest");
    rmSync(join(dir, "gone.txt"));
    rmSync(join(dir, "cache/old.tmp"));
    mkdirSync(join(dir, "render"));
    writeFileSync(join(dir, "render/frame.exr"), "pixels");
    writeFileSync(join(dir, ".understudyignore"), "render/\ncache/\n");

    const sync = folderSync(dir);
    await sync.tick();
    const view = sync.view();
    expect(view.base).toBe(4);
    expect(view.problem).toBeNull();
    expect(view.toPush).toEqual([
      { path: ".understudyignore", kind: "added" },
      { path: "gone.txt", kind: "deleted" },
      { path: "lower-thirds/b.txt", kind: "added" },
      { path: "rundown.txt", kind: "changed" },
    ]);
    expect(view.toPushCount).toBe(4);
  });

  test("a folder that cannot be one says why instead of listing, and push and pull are refused with that reason", async () => {
    const data = tempDir();
    mkdirSync(join(data, "shows"));
    const sync = folderSync(join(data, "shows"), data);
    await sync.tick();
    expect(sync.view().problem).toContain("is inside understudy's own data folder");
    expect(sync.view().toPush).toBeNull();
    expect(() => sync.startPull()).toThrow(NoShowFolder);

    const none = folderSync(null);
    await none.tick();
    expect(none.view().toPush).toBeNull();
    expect(() => none.startPush("x")).toThrow("Set the show folder first.");
  });

  test("a damaged bookkeeping file is the folder's problem, in the words the command line uses", async () => {
    const dir = await folderAt4({ "a.txt": "a" });
    writeFileSync(join(dir, ".understudy", "state.json"), "{half");
    const sync = folderSync(dir);
    await sync.tick();
    expect(sync.view().problem).toContain("Delete that file and pull again");
  });
});

describe("hashes remembered between scans", () => {
  test("listing a large folder from remembered hashes still gives the event loop (the node's heartbeats) turns", async () => {
    const dir = tempDir();
    for (let i = 0; i < 1024; i++) writeFileSync(join(dir, `cue-${i}.json`), String(i));
    const sync = folderSync(dir, tempDir(), { now: () => Date.now() + 2 * RACY_MS });
    await sync.tick();
    expect(sync.view().toPushCount).toBe(1024);
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    try {
      await sync.tick(); // every hash remembered: no file is read
    } finally {
      clearInterval(timer);
    }
    expect(sync.view().toPushCount).toBe(1024);
    expect(turns).toBeGreaterThanOrEqual(2);
  });

  const hashOf = (text: string) => fileHashOfChunks([sha256Hex(new TextEncoder().encode(text))]);

  test("a file rewritten with its size and modification time put back is hashed again (its change time moved)", async () => {
    const path = join(tempDir(), "cues.json");
    writeFileSync(path, "first");
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const cache = new FileHashCache({ now: () => Date.now() + 2 * RACY_MS });
    expect((await cache.chunk(path)).hash).toBe(hashOf("first"));
    expect(cache.size).toBe(1);
    writeFileSync(path, "FIRST");
    utimesSync(path, old, old);
    expect((await cache.chunk(path)).hash).toBe(hashOf("FIRST"));
  });

  test("a file modified within RACY_MS is not remembered; later it is, and a file no longer seen is forgotten", async () => {
    const path = join(tempDir(), "rundown.txt");
    writeFileSync(path, "news");
    let now = Date.now();
    const cache = new FileHashCache({ now: () => now });
    expect((await cache.chunk(path)).hash).toBe(hashOf("news"));
    expect(cache.size).toBe(0);
    now += 2 * RACY_MS;
    expect((await cache.chunk(path)).hash).toBe(hashOf("news"));
    expect(cache.size).toBe(1);
    cache.keepOnly(new Set());
    expect(cache.size).toBe(0);
  });
});
