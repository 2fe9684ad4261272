import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AppError } from "../../../../src/core/errors.ts";
import { InvalidShowPath } from "../../../../src/core/show-paths.ts";
import { LocalChangesInTheWay, PullTargetBlocked, ShowFolder, ShowFolderStateDamaged, STATE_DIR, STATE_FILE } from "../../../../src/services/show-folder/show-folder.ts";
import type { PullResult } from "../../../../src/services/show-file-protocol.ts";
import { sha256Hex } from "../../../../src/store/content-hash.ts";

const temps: string[] = [];
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "understudy-folder-"));
  temps.push(dir);
  return dir;
}

/** What the pretend server holds, by chunk hash: fetchServed hands these out. */
const served = new Map<string, Uint8Array>();
const fetchServed = async (hash: string) => served.get(hash)!;
const pulled = (head: number, files: Record<string, string | null>): PullResult => ({
  head,
  changes: Object.entries(files).map(([path, text]) => {
    if (text === null) return { path, deleted: true as const };
    const bytes = new TextEncoder().encode(text);
    const chunks = bytes.length === 0 ? [] : [sha256Hex(bytes)];
    if (bytes.length > 0) served.set(chunks[0]!, bytes);
    return { path, size: bytes.length, chunks };
  }),
});
const read = (dir: string, path: string) => readFileSync(join(dir, path), "utf8");
/** Every file under `dir` except the bookkeeping, as path → text. */
function contents(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name).slice(dir.length + 1).split("\\").join("/");
    if (!path.startsWith(`${STATE_DIR}/`)) out[path] = readFileSync(join(dir, path), "utf8");
  }
  return out;
}
const summary = async (folder: ShowFolder) => (await folder.changes()).map((c) => `${c.kind} ${c.path}${c.file ? ` ${read(folder.dir, c.path)}` : ""}`);

/** A folder at revision 2 holding a.txt and sub/b.txt. */
async function pulledFolder() {
  const dir = tempDir();
  const folder = ShowFolder.open(dir);
  await folder.applyPull(pulled(2, { "a.txt": "alpha", "sub/b.txt": "beta" }), fetchServed);
  return { dir, folder };
}

async function refusal(action: () => unknown): Promise<AppError> {
  try {
    await action();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

test("a first pull into an empty folder writes the files and records the revision", async () => {
  const dir = tempDir();
  const folder = ShowFolder.open(dir);
  expect(folder.base).toBe(0);
  const applied = await folder.applyPull(pulled(2, { "a.txt": "alpha", "sub/b.txt": "beta" }), fetchServed);
  expect(applied).toEqual({ base: 2, written: ["a.txt", "sub/b.txt"], deleted: [], kept: [] });
  expect(contents(dir)).toEqual({ "a.txt": "alpha", "sub/b.txt": "beta" });
  expect(folder.base).toBe(2);
  expect(folder.recorded).toEqual({ "a.txt": sha256Hex(Buffer.from("alpha")), "sub/b.txt": sha256Hex(Buffer.from("beta")) });
  expect(await folder.changes()).toEqual([]);
});

test("changes are files added, changed and deleted since the base, sorted, with forward slashes", async () => {
  const { dir, folder } = await pulledFolder();
  writeFileSync(join(dir, "a.txt"), "ALPHA");
  rmSync(join(dir, "sub/b.txt"));
  mkdirSync(join(dir, "new/deeper"), { recursive: true });
  writeFileSync(join(dir, "new/deeper/c.txt"), "gamma");
  writeFileSync(join(dir, STATE_DIR, "notes"), "bookkeeping is never a change");
  expect(await summary(folder)).toEqual(["changed a.txt ALPHA", "added new/deeper/c.txt gamma", "deleted sub/b.txt"]);
});

test("a file written back to its base content is not a change", async () => {
  const { dir, folder } = await pulledFolder();
  writeFileSync(join(dir, "a.txt"), "edited");
  writeFileSync(join(dir, "a.txt"), "alpha");
  expect(await folder.changes()).toEqual([]);
});

test("a pull deletes what the server deleted and removes folders left empty", async () => {
  const { dir, folder } = await pulledFolder();
  const applied = await folder.applyPull(pulled(3, { "sub/b.txt": null, "a.txt": "alpha 2" }), fetchServed);
  expect(applied).toEqual({ base: 3, written: ["a.txt"], deleted: ["sub/b.txt"], kept: [] });
  expect(existsSync(join(dir, "sub"))).toBe(false);
  expect(contents(dir)).toEqual({ "a.txt": "alpha 2" });
  expect(folder.recorded).toEqual({ "a.txt": sha256Hex(Buffer.from("alpha 2")) });
});

test("a file may give way to a folder of the same name in one pull", async () => {
  const { dir, folder } = await pulledFolder();
  await folder.applyPull(pulled(3, { "a.txt": null, "a.txt/inside.txt": "now a folder" }), fetchServed);
  expect(contents(dir)).toEqual({ "a.txt/inside.txt": "now a folder", "sub/b.txt": "beta" });
});

describe("a pulled path that would reach outside the folder is refused before anything is written", () => {
  const cases: [string, string][] = [
    ["../escape.txt", ".."],
    ["sub/../../escape.txt", ".."],
    ["/etc/escape.txt", "absolute"],
    ["C:/escape.txt", "drive letter"],
    ["c:escape.txt", "drive letter"],
    ["sub\\..\\escape.txt", "backslash"],
    [".understudy/state.json", "bookkeeping"],
  ];
  for (const [path, why] of cases) {
    test(`${path} (${why})`, async () => {
      const { dir, folder } = await pulledFolder();
      const before = readFileSync(join(dir, STATE_DIR, STATE_FILE), "utf8");
      const error = await refusal(() => folder.applyPull(pulled(3, { "a.txt": "would be written first", [path]: "x" }), fetchServed));
      expect(error).toBeInstanceOf(InvalidShowPath);
      expect((error as InvalidShowPath).path).toBe(path);
      expect(error.message).toContain(JSON.stringify(path));
      expect(contents(dir)).toEqual({ "a.txt": "alpha", "sub/b.txt": "beta" });
      expect(readFileSync(join(dir, STATE_DIR, STATE_FILE), "utf8")).toBe(before);
      expect(ShowFolder.open(dir).base).toBe(2);
      expect(existsSync(join(dir, "..", "escape.txt"))).toBe(false);
    });
  }
});

test("a pulled path through a link is refused: the link could lead outside", async () => {
  const { dir, folder } = await pulledFolder();
  const outside = tempDir();
  symlinkSync(outside, join(dir, "linked"));
  const error = await refusal(() => folder.applyPull(pulled(3, { "a.txt": "x", "linked/planted.txt": "x" }), fetchServed));
  expect(error).toBeInstanceOf(PullTargetBlocked);
  expect(error.message).toContain('"linked/planted.txt"');
  expect(readdirSync(outside)).toEqual([]);
  expect(read(dir, "a.txt")).toBe("alpha");
});

test("a pull never overwrites a file changed here since the base, and writes nothing", async () => {
  const { dir, folder } = await pulledFolder();
  writeFileSync(join(dir, "a.txt"), "my edit");
  writeFileSync(join(dir, "sub/b.txt"), "my beta");
  writeFileSync(join(dir, "c.txt"), "mine too");
  const error = await refusal(() => folder.applyPull(pulled(4, { "a.txt": "their edit", "sub/b.txt": "their beta", "c.txt": "theirs", "d.txt": "new" }), fetchServed));
  expect(error).toBeInstanceOf(LocalChangesInTheWay);
  expect((error as LocalChangesInTheWay).paths).toEqual(["a.txt", "c.txt", "sub/b.txt"]);
  expect(error.message).toContain('"a.txt", "c.txt", "sub/b.txt"');
  expect(error.message).toContain("Move your copies out of the folder");
  expect(contents(dir)).toEqual({ "a.txt": "my edit", "c.txt": "mine too", "sub/b.txt": "my beta" });
  expect(ShowFolder.open(dir).base).toBe(2);
});

test("the refusal's advice works: copies moved out of the folder are brought back by the pull, and the base moves", async () => {
  const { dir, folder } = await pulledFolder();
  writeFileSync(join(dir, "a.txt"), "my edit");
  const theirs = pulled(4, { "a.txt": "their edit" });
  expect(await refusal(() => folder.applyPull(theirs, fetchServed))).toBeInstanceOf(LocalChangesInTheWay);
  rmSync(join(dir, "a.txt"));
  expect(await folder.applyPull(theirs, fetchServed)).toEqual({ base: 4, written: ["a.txt"], deleted: [], kept: [] });
  expect(read(dir, "a.txt")).toBe("their edit");
});

test("a server deletion of a file changed here is refused too", async () => {
  const { dir, folder } = await pulledFolder();
  writeFileSync(join(dir, "a.txt"), "my edit");
  const error = await refusal(() => folder.applyPull(pulled(3, { "a.txt": null }), fetchServed));
  expect((error as LocalChangesInTheWay).paths).toEqual(["a.txt"]);
  expect(read(dir, "a.txt")).toBe("my edit");
});

test("local changes the pull does not touch stay local changes; identical content is not in the way", async () => {
  const { dir, folder } = await pulledFolder();
  writeFileSync(join(dir, "a.txt"), "my edit");
  writeFileSync(join(dir, "same.txt"), "both made this");
  await folder.applyPull(pulled(3, { "sub/b.txt": "beta 2", "same.txt": "both made this" }), fetchServed);
  expect(contents(dir)).toEqual({ "a.txt": "my edit", "same.txt": "both made this", "sub/b.txt": "beta 2" });
  expect(await summary(folder)).toEqual(["changed a.txt my edit"]);
});

test("the state survives a reopen, and a push moves the base only when no one pushed in between", async () => {
  const { dir, folder } = await pulledFolder();
  writeFileSync(join(dir, "a.txt"), "pushed");
  expect(folder.recordPush(3, await folder.changes())).toBe(true);
  const reopened = ShowFolder.open(dir);
  expect(reopened.base).toBe(3);
  expect(reopened.recorded).toEqual(folder.recorded);
  expect(await reopened.changes()).toEqual([]);

  writeFileSync(join(dir, "c.txt"), "later");
  expect(reopened.recordPush(6, await reopened.changes())).toBe(false);
  expect(ShowFolder.open(dir).base).toBe(3);
  expect(await ShowFolder.open(dir).changes()).toEqual([]);
});

test("a push the server already held (unchanged, rev null) records the files but keeps the base, so a pull catches up", async () => {
  const { dir, folder } = await pulledFolder();
  writeFileSync(join(dir, "a.txt"), "sent twice");
  // The server is at 3, and revision 3 is the same base + 1 another could have made: only a pull may move the base.
  expect(folder.recordPush(null, await folder.changes())).toBe(false);
  expect(folder.base).toBe(2);
  expect(await folder.changes()).toEqual([]);
});

describe("a damaged state file is a clear error", () => {
  const cases: [string, string][] = [
    ["not JSON", "{half"],
    ["wrong shape", JSON.stringify({ version: 1, base: -1, files: {} })],
    ["bad hash", JSON.stringify({ version: 1, base: 2, files: { "a.txt": "nope" } })],
    ["a newer version", JSON.stringify({ version: 2, base: 2, files: {} })],
  ];
  for (const [name, text] of cases) {
    test(name, async () => {
      const { dir } = await pulledFolder();
      const file = join(dir, STATE_DIR, STATE_FILE);
      writeFileSync(file, text);
      const error = await refusal(() => ShowFolder.open(dir));
      expect(error).toBeInstanceOf(ShowFolderStateDamaged);
      expect(error.code).toBe("SHOW_FOLDER_STATE_DAMAGED");
      expect(error.message).toContain(file);
      expect(error.message).toContain("Delete that file and pull again");
    });
  }
});

describe("names the file system allows, and what a push leaves out (hostile-network issue, findings 7 and 8)", () => {
  test("a 255-byte file name round-trips: the pull writes it (its temp name fits too) and nothing shows as changed", async () => {
    const dir = tempDir();
    const longest = `${"é".repeat(125)}.txt1`;
    expect(Buffer.byteLength(longest)).toBe(255);
    const folder = ShowFolder.open(dir);
    expect((await folder.applyPull(pulled(1, { [`sub/${longest}`]: "x" }), fetchServed)).written).toEqual([`sub/${longest}`]);
    expect(read(dir, `sub/${longest}`)).toBe("x");
    expect(await ShowFolder.open(dir).changes()).toEqual([]);
  });

  test("links and special files are left out of a push, named in one warning line", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "real.txt"), "r");
    symlinkSync(join(dir, "real.txt"), join(dir, "sub", "link.txt"));
    symlinkSync("/etc", join(dir, "etc"));
    const warnings: string[] = [];
    const changes = await ShowFolder.open(dir).changes({ warn: (line) => warnings.push(line) });
    expect(changes.map((c) => c.path)).toEqual(["real.txt"]);
    expect(warnings).toEqual(['Skipped 2 entries that are not a regular file or folder (links are never followed): "etc", "sub/link.txt"\n']);
  });

  test("no warning when there is nothing to leave out", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "a.txt"), "a");
    const warnings: string[] = [];
    await ShowFolder.open(dir).changes({ warn: (line) => warnings.push(line) });
    expect(warnings).toEqual([]);
  });
});
