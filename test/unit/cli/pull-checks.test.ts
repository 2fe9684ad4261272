/** `understudy pull` believes no answer it could not have had from a real main, and never waits on one silently. */
import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileCommand } from "../../../src/cli/file-commands.ts";
import { AppError } from "../../../src/core/errors.ts";
import { ShowFolder, STATE_DIR, STATE_FILE } from "../../../src/services/show-folder/show-folder.ts";
import { startFilesServer } from "./files-server.ts";
import { startLyingMain } from "./lying-main.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "understudy-pull-checks-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const run = async (flags: string[], ...argv: string[]) => {
  let printed = "";
  const code = await fileCommand("pull", [...argv, ...flags], (text) => (printed += text));
  return { code, printed };
};
const failure = (flags: string[], ...argv: string[]) => run(flags, ...argv).then(() => null, (error: unknown) => error as AppError);

test("a key holder answering as the main with a terabyte in no chunks gets nothing written", async () => {
  const liar = startLyingMain({ pull: () => ({ head: 1, changes: [{ path: "huge.bin", size: 2 ** 40, chunks: [] }] }) });
  cleanups.push(liar.stop);
  const dir = join(tempDir(), "show");
  const error = await failure(liar.flags, dir);
  expect(error?.code).toBe("PULL_LIST_REFUSED");
  expect(error?.message).toContain('"huge.bin" says it holds 1099511627776 bytes');
  expect(existsSync(join(dir, "huge.bin"))).toBe(false);
});

test("an answer over the frame limit ends the pull at once with a message, instead of waiting on it", async () => {
  const many = Array.from({ length: 70_000 }, (_, i) => ({ path: `${"f".repeat(200)}/${i}.txt`, size: 0, chunks: [] }));
  const liar = startLyingMain({ pull: () => ({ head: 1, changes: many }) });
  cleanups.push(liar.stop);
  const error = await failure(liar.flags, join(tempDir(), "show"));
  expect(error?.code).toBe("CONNECTION_LOST");
  expect(error?.message).toContain("is more than the 16777216 allowed");
});

test("a base the server does not know (2^53 - 1) is healed by a full pull, keeping files changed here", async () => {
  const main = startFilesServer();
  cleanups.push(main.stop);
  const source = tempDir();
  writeFileSync(join(source, "cues.json"), "cue 1");
  writeFileSync(join(source, "notes.txt"), "notes");
  expect((await fileCommand("push", [source, ...main.flags], () => {})) as number).toBe(0);
  const dir = join(tempDir(), "booth");
  expect((await run(main.flags, dir)).code).toBe(0);
  const stateFile = join(dir, STATE_DIR, STATE_FILE);
  const state = JSON.parse(readFileSync(stateFile, "utf8"));
  writeFileSync(stateFile, JSON.stringify({ ...state, base: Number.MAX_SAFE_INTEGER }));
  writeFileSync(join(dir, "mine.txt"), "an addition of mine");

  expect(await run(main.flags, dir)).toEqual({ code: 0, printed: `${dir} is at revision 1 (0 files changed)\n` });
  const healed = ShowFolder.open(dir);
  expect(healed.base).toBe(1);
  expect((await healed.changes()).map((c) => `${c.kind} ${c.path}`)).toEqual(["added mine.txt"]);
  expect(readdirSync(dir).sort()).toEqual([".understudy", "cues.json", "mine.txt", "notes.txt"]);
});
