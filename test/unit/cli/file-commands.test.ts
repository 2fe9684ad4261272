import { afterEach, describe, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../../src/cli/args.ts";
import { fileCommand, type FileCommandName } from "../../../src/cli/file-commands.ts";
import { ShowFolder } from "../../../src/services/show-folder/show-folder.ts";
import { AppError } from "../../../src/core/errors.ts";
import { READ_ONLY_MESSAGE } from "../../../src/services/show-file-protocol.ts";
import { waitFor } from "../../support/wait-for.ts";
import { startFilesServer, startForwardingNode } from "./files-server.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "understudy-cmd-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fake() {
  const started = startFilesServer();
  cleanups.push(started.stop);
  const root = tempDir();
  /** Runs a command against the fake; resolves with its exit code and what it printed. */
  const run = async (name: FileCommandName, ...argv: string[]) => {
    let printed = "";
    const code = await fileCommand(name, [...argv, ...started.flags], (text) => (printed += text));
    return { code, printed };
  };
  const failure = (name: FileCommandName, ...argv: string[]) =>
    run(name, ...argv).then(
      () => {
        throw new Error(`understudy ${name} succeeded`);
      },
      (error: unknown) => error as AppError,
    );
  return { ...started, run, failure, folder: (name: string) => join(root, name) };
}

const write = (dir: string, path: string, text: string) => {
  mkdirSync(join(dir, path, ".."), { recursive: true });
  writeFileSync(join(dir, path), text);
};
const read = (dir: string, path: string) => readFileSync(join(dir, path), "utf8");

test("a push from one folder arrives in another by pull, both ways", async () => {
  const { run, show, folder } = fake();
  const stage = folder("stage");
  const booth = folder("booth");
  mkdirSync(stage);
  write(stage, "cues.json", '{"cue":1}');
  write(stage, "scenes/opening.txt", "lights up");

  expect(await run("push", stage, "-m", "first cues", "--name", "stage-pc")).toEqual({ code: 0, printed: "Pushed revision 1 (2 files); no backup\n" });
  expect(show.stores.showFile.log()[0]).toMatchObject({ rev: 1, message: "first cues", author: "stage-pc", changes: 2 });

  expect(await run("pull", booth)).toEqual({ code: 0, printed: `${booth} is at revision 1 (2 files changed)\n` });
  expect(read(booth, "scenes/opening.txt")).toBe("lights up");

  write(booth, "cues.json", '{"cue":2}');
  rmSync(join(booth, "scenes/opening.txt"));
  show.replicated = "backup";
  expect((await run("push", booth, "--name", "booth-pc")).printed).toBe("Pushed revision 2 (2 files); the backup has it\n");

  expect((await run("pull", stage)).printed).toBe(`${stage} is at revision 2 (2 files changed)\n`);
  expect(read(stage, "cues.json")).toBe('{"cue":2}');
  expect(existsSync(join(stage, "scenes"))).toBe(false);
  expect((await run("push", stage)).printed).toBe(`Nothing to push: no file in ${stage} changed since revision 2.\n`);
  expect((await run("pull", stage)).printed).toBe(`${stage} is at revision 2 (0 files changed)\n`);
});

test("push and pull through a node that forwards talk to the main itself; log and pull --watch stay with the node", async () => {
  const main = startFilesServer();
  cleanups.push(main.stop);
  const node = startForwardingNode(main);
  cleanups.push(node.stop);
  const viaNode = (name: FileCommandName, ...argv: string[]) => fileCommand(name, [...argv, ...node.flags], () => {});
  const stage = tempDir();
  const booth = join(tempDir(), "booth");
  writeFileSync(join(stage, "clip.bin"), randomFillSync(Buffer.alloc(3 * 1024 * 1024 + 5)));
  expect(await viaNode("push", stage, "-m", "clip")).toBe(0);
  expect(await viaNode("pull", booth)).toBe(0);
  expect(readFileSync(join(booth, "clip.bin"))).toEqual(readFileSync(join(stage, "clip.bin")));
  // The node answered where the main is, once per command; every chunk went to the main straight.
  expect(node.calls.count).toBe(2);
  expect(main.show.head).toBe(1);
  expect(await viaNode("log")).toBe(0);
  expect(node.calls.count).toBe(3);
});

test("a push that says the backup is behind says so", async () => {
  const { run, show, folder } = fake();
  const dir = folder("f");
  mkdirSync(dir);
  write(dir, "a.txt", "a");
  show.replicated = "behind";
  expect((await run("push", dir, "--name", "pc")).printed).toBe("Pushed revision 1 (1 file); the backup is behind\n");
});

test("a push over someone else's change is refused naming the paths, and says to pull first", async () => {
  const { run, failure, show, folder } = fake();
  const stage = folder("stage");
  const booth = folder("booth");
  mkdirSync(stage);
  write(stage, "cues.json", "v1");
  write(stage, "notes.txt", "n1");
  await run("push", stage, "--name", "stage-pc");
  await run("pull", booth);

  write(stage, "cues.json", "stage v2");
  await run("push", stage, "--name", "stage-pc");
  write(booth, "cues.json", "booth v2");
  write(booth, "notes.txt", "booth n2");
  const error = await failure("push", booth, "--name", "booth-pc");
  expect(error.code).toBe("PUSH_CONFLICT");
  expect(error.message).toContain('"cues.json"');
  expect(error.message).not.toContain('"notes.txt"');
  // One piece of advice, the one that works for a folder (not the server's general "Pull, merge …" as well).
  expect(error.message).toContain("To go on: move your copies of those files out of the folder");
  expect(error.message).not.toContain("Pull, merge");
  expect(show.head).toBe(2);
  expect(ShowFolder.open(booth).base).toBe(1);
  expect((await ShowFolder.open(booth).changes()).map((c) => c.path)).toEqual(["cues.json", "notes.txt"]);

  // The pull names the same file as in the way and writes nothing.
  const blocked = await failure("pull", booth);
  expect(blocked.code).toBe("LOCAL_CHANGES_IN_THE_WAY");
  expect(blocked.message).toContain('"cues.json"');
  expect(read(booth, "cues.json")).toBe("booth v2");
});

test("a push on a stale base that conflicts with nothing brings the others' changes in", async () => {
  const { run, folder } = fake();
  const stage = folder("stage");
  const booth = folder("booth");
  mkdirSync(stage);
  write(stage, "a.txt", "a1");
  write(stage, "b.txt", "b1");
  await run("push", stage, "--name", "stage-pc");
  await run("pull", booth);

  write(stage, "a.txt", "a2 from stage");
  await run("push", stage, "--name", "stage-pc");
  write(booth, "b.txt", "b2 from booth");
  expect((await run("push", booth, "--name", "booth-pc")).printed).toBe(
    `Pushed revision 3 (1 file); no backup\nAlso pulled 1 file changed by others since revision 1; ${booth} is at revision 3\n`,
  );
  expect(read(booth, "a.txt")).toBe("a2 from stage");
  expect(ShowFolder.open(booth).base).toBe(3);
  expect((await run("push", booth)).printed).toContain("Nothing to push");
});

test("a push whose answer was lost (the main killed after writing it) is no conflict with itself when pushed again with more", async () => {
  const { run, show, folder } = fake();
  const stage = folder("stage");
  mkdirSync(stage);
  write(stage, "cues.json", "v1");
  await run("push", stage, "--name", "stage-pc");
  const stateFile = join(stage, ".understudy", "state.json");
  const beforeLost = readFileSync(stateFile);
  write(stage, "cues.json", "v2");
  write(stage, "gone.txt", "g");
  await run("push", stage, "--name", "stage-pc");
  // The server wrote revision 2, but this folder never heard: its record is as before that push.
  writeFileSync(stateFile, beforeLost);
  expect((await run("push", stage, "--name", "stage-pc")).printed).toBe(
    `The server already had these 2 changes (a push whose answer was lost, or the same edit made twice): nothing new written; the server is at revision 2; no backup\n${stage} is at revision 2\n`,
  );
  expect(show.head).toBe(2);
  expect(ShowFolder.open(stage).base).toBe(2);

  writeFileSync(stateFile, beforeLost);
  write(stage, "cues.json", "v3");
  rmSync(join(stage, "gone.txt"));
  write(stage, "new.txt", "n");
  // cues.json changed again (a real conflict with revision 2) is still refused; new.txt alone goes through.
  expect((await run("push", stage, "--name", "stage-pc").catch((error: AppError) => error)).code).toBe("PUSH_CONFLICT");
  write(stage, "cues.json", "v2");
  expect((await run("push", stage, "--name", "stage-pc")).printed).toStartWith("Pushed revision 3 (2 files); no backup\n");
  expect(show.stores.showFile.log(1)[0]).toMatchObject({ rev: 3, changes: 1 });
  expect(ShowFolder.open(stage).base).toBe(3);
  expect((await run("push", stage)).printed).toContain("Nothing to push");
});

test("while the backup serves, the read-only message comes through as it is", async () => {
  const { run, failure, show, folder } = fake();
  const dir = folder("f");
  mkdirSync(dir);
  write(dir, "a.txt", "a");
  await run("push", dir, "--name", "pc");
  write(dir, "a.txt", "changed");
  show.readOnly = true;
  for (const [name, args] of [
    ["push", [dir, "--name", "pc"]],
    ["pull", [dir]],
  ] as const) {
    const error = await failure(name, ...args);
    expect(error.code).toBe("READ_ONLY");
    expect(error.message).toBe(READ_ONLY_MESSAGE);
  }
  expect(ShowFolder.open(dir).base).toBe(1);
  expect(read(dir, "a.txt")).toBe("changed");
});

test("log prints one line per revision, newest first", async () => {
  const { run, folder } = fake();
  expect((await run("log")).printed).toBe("No revisions yet.\n");
  const dir = folder("f");
  mkdirSync(dir);
  write(dir, "a.txt", "1");
  await run("push", dir, "-m", "first\nsecond line", "--name", "stage-pc");
  write(dir, "b.txt", "2");
  write(dir, "a.txt", "2");
  await run("push", dir, "--name", "booth-pc");
  expect((await run("log")).printed).toBe(
    ["r2  2030-01-02T00:00:00.000Z  booth-pc  2 files", "r1  2030-01-01T00:00:00.000Z  stage-pc  1 file  first second line", ""].join("\n"),
  );
  expect((await run("log", "--limit", "1")).printed.split("\n")[0]).toStartWith("r2 ");
});

test("a file that is not a valid show-file path is refused before anything is sent", async () => {
  const { failure, show, folder } = fake();
  const dir = folder("f");
  mkdirSync(dir);
  write(dir, "what?.txt", "windows would refuse this name");
  const error = await failure("push", dir, "--name", "pc");
  expect(error.code).toBe("INVALID_SHOW_PATH");
  expect(error.message).toContain('"what?.txt"');
  expect(show.head).toBe(0);
});

test("only chunks the main lacks travel: an unchanged or renamed file is not sent again", async () => {
  const { run, show, folder } = fake();
  const dir = folder("f");
  mkdirSync(dir);
  const big = randomFillSync(new Uint8Array(2 * 1024 * 1024 + 100));
  writeFileSync(join(dir, "movie.bin"), big);
  write(dir, "cues.json", "1");
  await run("push", dir, "--name", "pc");
  expect(show.offered.length).toBe(4);
  renameSync(join(dir, "movie.bin"), join(dir, "renamed.bin"));
  write(dir, "cues.json", "2");
  expect((await run("push", dir, "--name", "pc")).printed).toBe("Pushed revision 2 (3 files); no backup\n");
  expect(show.offered.length).toBe(5);
  const copy = folder("copy");
  await run("pull", copy);
  expect(readFileSync(join(copy, "renamed.bin")).equals(Buffer.from(big))).toBe(true);
  expect(existsSync(join(copy, "movie.bin"))).toBe(false);
});

test(".understudyignore keeps matching files out of a push, and they are never seen as deleted", async () => {
  const { run, show, folder } = fake();
  const dir = folder("f");
  mkdirSync(dir);
  write(dir, "scene.json", "s");
  write(dir, "render/cache.tmp", "scratch");
  write(dir, "notes.bak", "old");
  write(dir, ".understudyignore", "render/\n*.bak\n");
  expect((await run("push", dir, "--name", "pc")).printed).toBe("Pushed revision 1 (2 files); no backup\n");
  expect(show.stores.showFile.files().map((f) => f.path)).toEqual([".understudyignore", "scene.json"]);
  write(dir, ".understudyignore", "render/\n*.bak\nscene.json\n");
  rmSync(join(dir, "scene.json"));
  expect((await run("push", dir, "--name", "pc")).printed).toBe("Pushed revision 2 (1 file); no backup\n");
  expect(show.stores.showFile.files().map((f) => f.path)).toEqual([".understudyignore", "scene.json"]);
});

test("pull --watch applies each new revision as it arrives, and stops when told", async () => {
  const { run, folder, flags } = fake();
  const stage = folder("stage");
  const booth = folder("booth");
  mkdirSync(stage);
  write(stage, "cue.txt", "1");
  await run("push", stage, "--name", "pc");
  const stop = new AbortController();
  let printed = "";
  const watching = fileCommand("pull", [booth, "--watch", "--interval-ms", "50", ...flags], (text) => (printed += text), stop.signal);
  await waitFor("the first pull", () => existsSync(join(booth, "cue.txt")));
  write(stage, "cue.txt", "2");
  await run("push", stage, "--name", "pc");
  await waitFor("revision 2 in the watched folder", () => read(booth, "cue.txt") === "2");
  stop.abort();
  expect(await watching).toBe(0);
  expect(printed).toBe(`${booth} is at revision 1 (1 file changed)\n${booth} is at revision 2 (1 file changed)\n`);
});

describe("command lines", () => {
  const usage: [string, FileCommandName, string[], string][] = [
    ["push without a folder", "push", [], "missing argument"],
    ["pull with two folders", "pull", ["a", "b"], 'unexpected argument "b"'],
    ["an unknown flag", "log", ["--nope"], "unknown flag --nope"],
    ["a limit of zero", "log", ["--limit", "0"], "--limit must be a whole number from 1 to 1000"],
    ["a bad node address", "log", ["--node", "nowhere"], "--node nowhere: expected HOST:PORT"],
    ["a missing key file", "log", ["--key", "/no/such/network.key"], "/no/such/network.key does not exist"],
    ["-m without a message", "push", ["dir", "-m"], "needs a value"],
  ];
  for (const [name, command, argv, message] of usage) {
    test(`${name} is a usage error`, async () => {
      const error = await fileCommand(command, argv, () => {}).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).message).toContain(message);
      expect((error as UsageError).message).not.toContain("\n");
    });
  }

  test("push into a folder that does not exist says to pull first", async () => {
    const { failure, folder } = fake();
    const error = await failure("push", folder("missing"));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toContain("pull into it first");
  });

  for (const command of ["pull", "push", "log"] as const) {
    test(`${command} --help`, async () => {
      let printed = "";
      expect(await fileCommand(command, ["--help"], (text) => (printed += text))).toBe(0);
      expect(printed).toStartWith(`Usage: understudy ${command}`);
      expect(printed).toContain("--node HOST:PORT");
    });
  }
});
