/**
 * Auto-Pull (FolderSync, the node's Synced storage panel) against a real `/files` server and a real folder: an edit
 * the operator saves while a revision is being pulled is kept, the page's outcome names it and the file saved beside
 * it, the base stays, and Auto-Pull does not try the same revision again and again.
 */
import { parseHostPort } from "../../../../src/core/config.ts";
import { secureDialer } from "../../../../src/net/peer-net.ts";
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { ShowFolder, STATE_DIR, STATE_FILE } from "../../../../src/services/show-folder/show-folder.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { fileCommand } from "../../../../src/cli/file-commands.ts";
import { createLogger } from "../../../../src/log.ts";
import { FolderSync } from "../../../../src/services/show-folder/folder-sync.ts";
import { startFilesServer } from "../../cli/files-server.ts";
import { waitFor } from "../../../support/wait-for.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "understudy-auto-pull-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("an edit saved while Auto-Pull places a revision is kept, and the outcome names it once", async () => {
  const main = startFilesServer();
  cleanups.push(main.stop);
  const stage = tempDir();
  const booth = tempDir();
  const quiet = () => {};
  writeFileSync(join(stage, "note.txt"), "revision 1");
  expect(await fileCommand("push", [stage, ...main.flags], quiet)).toBe(0);
  expect(await fileCommand("pull", [booth, ...main.flags], quiet)).toBe(0);
  writeFileSync(join(stage, "note.txt"), "revision 2");
  writeFileSync(join(stage, "cues.json"), "cue 2");
  expect(await fileCommand("push", [stage, ...main.flags], quiet)).toBe(0);

  const logged: string[] = [];
  let edits = 0;
  const sync = new FolderSync({
    dataDir: tempDir(),
    settings: () => ({ folder: booth, autoPull: true }),
    node: () => ({ at: parseHostPort(main.flags[1]!)!, net: secureDialer({ networkKey: main.networkKey, machine: nacl.sign.keyPair() }), keyFingerprint: "k" }),
    readOnly: () => false,
    author: () => "booth",
    log: createLogger(() => "json", (line) => logged.push(line)),
    beforePlace: (path) => void (path === "note.txt" && ++edits && writeFileSync(join(booth, "note.txt"), "the operator's edit")),
  });
  cleanups.push(() => sync.stop());
  await sync.tick();
  await waitFor("Auto-Pull ends", () => sync.view().outcome !== null && sync.view().job === null, 10_000);
  await waitFor("the folder is scanned after the pull", () => sync.view().toPush?.length === 2, 10_000);
  const view = sync.view();
  expect(view.outcome!.ok).toBe(false);
  expect(view.outcome!.message).toContain('Kept 1 file changed here during the pull: "note.txt" (revision 2\'s version is saved as "note.txt.from-revision-2")');
  expect(view.outcome!.message).toContain("The folder stays at revision 1");
  expect(readFileSync(join(booth, "note.txt"), "utf8")).toBe("the operator's edit");
  expect(readFileSync(join(booth, "note.txt.from-revision-2"), "utf8")).toBe("revision 2");
  expect(readFileSync(join(booth, "cues.json"), "utf8")).toBe("cue 2");
  expect(view.base).toBe(1);
  expect(view.toPush?.map((c) => `${c.kind} ${c.path}`)).toEqual(["changed note.txt", "added note.txt.from-revision-2"]);
  // The same head is not pulled again on every tick.
  await sync.tick();
  await sync.tick();
  expect(edits).toBe(1);
  expect(logged.filter((line) => line.includes("show folder pull")).length).toBe(1);
}, 20_000);

test("a base the server does not know (2^53 - 1) is healed by Auto-Pull with a full pull, not left waiting", async () => {
  const main = startFilesServer();
  cleanups.push(main.stop);
  const stage = tempDir();
  const booth = tempDir();
  writeFileSync(join(stage, "cues.json"), "cue 1");
  expect(await fileCommand("push", [stage, ...main.flags], () => {})).toBe(0);
  const stateFile = join(booth, STATE_DIR, STATE_FILE);
  expect(await fileCommand("pull", [booth, ...main.flags], () => {})).toBe(0);
  writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(readFileSync(stateFile, "utf8")), base: Number.MAX_SAFE_INTEGER }));
  const sync = new FolderSync({
    dataDir: tempDir(),
    settings: () => ({ folder: booth, autoPull: true }),
    node: () => ({ at: parseHostPort(main.flags[1]!)!, net: secureDialer({ networkKey: main.networkKey, machine: nacl.sign.keyPair() }), keyFingerprint: "k" }),
    readOnly: () => false,
    author: () => "booth",
    log: createLogger(() => "json", () => {}),
  });
  cleanups.push(() => sync.stop());
  await sync.tick();
  await waitFor("Auto-Pull heals the folder", () => sync.view().outcome !== null && sync.view().job === null, 10_000);
  expect(sync.view().outcome).toEqual({ ok: true, message: "Pulled revision 1: 0 files changed." });
  expect(ShowFolder.open(booth).base).toBe(1);
}, 20_000);
