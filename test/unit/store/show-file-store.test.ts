/** The show file (store/show-file-store.ts): every operation and every refusal, against a real database in a temp dir. */
import { describe, expect, spyOn, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { randomFillSync } from "node:crypto";
import fs, { writeFileSync } from "node:fs";
import { chunkDirFor, chunkFilePath } from "../../../src/store/chunk-files.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";
import type { PushRequest } from "../../../src/store/show-file-store.ts";
import { caughtAppError } from "../../support/caught.ts";
import { STORE_NOW, storesPerTest } from "../../support/store-fixture.ts";

const stores = storesPerTest("understudy-show-file-");
const { openStores, reopen } = stores;
const NOW = STORE_NOW;
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);
const push = (base: number, files: Record<string, string | null>, extra: Partial<PushRequest> = {}): PushRequest => ({
  base,
  changes: Object.entries(files).map(([path, content]) => ({ path, content: content === null ? null : bytes(content) })),
  message: "edit",
  author: "ctrl-1",
  ...extra,
});
const caught = caughtAppError;
/** Row counts of every show-file and log table: "nothing was written" means these did not change. */
const counts = (db: Database) =>
  Object.fromEntries(
    ["revisions", "files", "head_files", "blobs", "replication_log"].map((t) => [t, (db.query(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n]),
  );

describe("push, read, files, log", () => {
  test("a new show file is revision 0 with nothing in it", () => {
    const { showFile } = openStores();
    expect(showFile.head()).toBe(0);
    expect(showFile.files()).toEqual([]);
    expect(showFile.log()).toEqual([]);
    expect(showFile.pull(0)).toEqual({ since: 0, head: 0, changes: [] });
  });

  test("a push becomes the next revision with its log entry, and reads back", () => {
    const { db, showFile, log } = openStores();
    const result = showFile.push(push(0, { "scene.json": '{"title":"News"}', "gfx/logo.txt": "logo" }, { message: "first", author: "ctrl-1" }));
    expect(result).toEqual({ rev: 1, seq: 1, duplicate: false, unchanged: false });
    expect(showFile.head()).toBe(1);
    expect(text(showFile.read("scene.json"))).toBe('{"title":"News"}');
    expect(showFile.files()).toEqual([
      { path: "gfx/logo.txt", hash: sha256Hex(bytes("logo")), size: 4, rev: 1 },
      { path: "scene.json", hash: sha256Hex(bytes('{"title":"News"}')), size: 16, rev: 1 },
    ]);
    expect(showFile.log()).toEqual([{ rev: 1, parent: 0, base: 0, message: "first", author: "ctrl-1", created: NOW, pushId: null, changes: 2 }]);
    expect(log.lastApplied()).toBe(1);
    expect(db.query("SELECT seq, kind, payload FROM replication_log").all()).toEqual([{ seq: 1, kind: "show.revision", payload: '{"rev":1}' }]);
  });

  test("identical contents are stored once", () => {
    const { db, showFile } = openStores();
    showFile.push(push(0, { "a.json": "same", "b/c.json": "same" }));
    showFile.push(push(1, { "d.json": "same" }));
    expect(counts(db).blobs).toBe(1);
    expect(text(showFile.read("d.json"))).toBe("same");
  });

  test("older revisions stay readable; log is newest first and limited", () => {
    const { showFile } = openStores();
    showFile.push(push(0, { "a.json": "v1", "b.json": "b" }, { message: "one" }));
    showFile.push(push(1, { "a.json": "v2" }, { message: "two" }));
    showFile.push(push(2, { "b.json": null }, { message: "three" }));
    expect(text(showFile.read("a.json", 1))).toBe("v1");
    expect(text(showFile.read("a.json"))).toBe("v2");
    expect(showFile.files(1).map((f) => [f.path, f.rev])).toEqual([["a.json", 1], ["b.json", 1]]);
    expect(showFile.files(2).map((f) => [f.path, f.rev])).toEqual([["a.json", 2], ["b.json", 1]]);
    expect(showFile.files(3).map((f) => f.path)).toEqual(["a.json"]);
    expect(showFile.files(0)).toEqual([]);
    expect(showFile.log(2).map((r) => [r.rev, r.message, r.changes])).toEqual([[3, "three", 1], [2, "two", 1]]);
  });

  test("everything survives closing and reopening the database", () => {
    const first = openStores();
    first.showFile.push(push(0, { "a.json": "kept" }));
    const second = reopen(first.db);
    expect(second.showFile.head()).toBe(1);
    expect(text(second.showFile.read("a.json"))).toBe("kept");
    expect(second.showFile.push(push(1, { "a.json": "next" })).rev).toBe(2);
  });
});

describe("conflicts and stale bases", () => {
  test("a path changed after the base is a 409 naming it, and nothing is written", () => {
    const { db, showFile } = openStores();
    showFile.push(push(0, { "x.json": "1", "y.json": "1", "z.json": "1" }));
    showFile.push(push(1, { "x.json": "other machine", "z.json": "other machine" }));
    const before = counts(db);
    const error = caught(() => showFile.push(push(1, { "z.json": "mine", "x.json": "mine", "new.json": "brand new" })));
    expect(error.code).toBe("PUSH_CONFLICT");
    expect(error.status).toBe(409);
    expect(error).toMatchObject({ paths: ["x.json", "z.json"], base: 1, head: 2 });
    expect(error.message).toContain('"x.json", "z.json"');
    expect(counts(db)).toEqual(before);
    expect(showFile.head()).toBe(2);
    expect(text(showFile.read("x.json"))).toBe("other machine");
  });

  test("a path changed in any revision after the base conflicts, not only the last one", () => {
    const { showFile } = openStores();
    showFile.push(push(0, { "x.json": "1", "y.json": "1" }));
    showFile.push(push(1, { "x.json": "2" }));
    showFile.push(push(2, { "y.json": "2" }));
    expect(caught(() => showFile.push(push(1, { "x.json": "mine" }))).code).toBe("PUSH_CONFLICT");
  });

  test("a path deleted after the base conflicts with a change to it", () => {
    const { showFile } = openStores();
    showFile.push(push(0, { "x.json": "1" }));
    showFile.push(push(1, { "x.json": null }));
    expect(caught(() => showFile.push(push(1, { "x.json": "mine" }))).code).toBe("PUSH_CONFLICT");
  });

  test("a stale base is accepted when no path overlaps, like a rebase", () => {
    const { showFile } = openStores();
    showFile.push(push(0, { "x.json": "1", "y.json": "1" }));
    showFile.push(push(1, { "x.json": "2" }));
    const result = showFile.push(push(1, { "y.json": "2", "new.json": "n" }));
    expect(result.rev).toBe(3);
    expect(showFile.log(1)[0]).toMatchObject({ rev: 3, parent: 2, base: 1 });
    expect(showFile.files().map((f) => [f.path, text(showFile.read(f.path))])).toEqual([
      ["new.json", "n"],
      ["x.json", "2"],
      ["y.json", "2"],
    ]);
  });

  test("an unknown base, or revision to read, is UNKNOWN_REVISION", () => {
    const { db, showFile } = openStores();
    showFile.push(push(0, { "a.json": "1" }));
    const before = counts(db);
    for (const base of [2, -1, 1.5, Number.NaN]) {
      const error = caught(() => showFile.push(push(base, { "a.json": "x" })));
      expect(error.code).toBe("UNKNOWN_REVISION");
      expect(error.status).toBe(404);
    }
    expect(counts(db)).toEqual(before);
    expect(caught(() => showFile.pull(7)).code).toBe("UNKNOWN_REVISION");
    expect(caught(() => showFile.files(9)).code).toBe("UNKNOWN_REVISION");
    expect(caught(() => showFile.read("a.json", 3)).code).toBe("UNKNOWN_REVISION");
  });

  test("a retried push (same push id) is recognised, not refused as a conflict with itself", () => {
    const { db, showFile } = openStores();
    const first = showFile.push(push(0, { "a.json": "1" }, { pushId: "ctrl-1/42" }));
    const before = counts(db);
    expect(showFile.push(push(0, { "a.json": "1" }, { pushId: "ctrl-1/42" }))).toEqual({ ...first, duplicate: true });
    expect(counts(db)).toEqual(before);
  });

  test("a change sent again in a new push (its answer was lost in a failover) is no conflict: held changes are left out, the rest written", () => {
    const { showFile } = openStores();
    showFile.push(push(0, { "x.json": "1", "gone.json": "g" }));
    // The lost push: it landed as revision 2, but its pusher never heard, so its base stays 1.
    showFile.push(push(1, { "mine.json": "m", "x.json": "2", "gone.json": null }));
    const result = showFile.push(push(1, { "mine.json": "m", "x.json": "2", "gone.json": null, "next.json": "n" }));
    expect(result).toMatchObject({ rev: 3, duplicate: false, unchanged: false });
    expect(showFile.log(1)[0]).toMatchObject({ rev: 3, changes: 1 });
    expect(showFile.pull(2).changes.map((c) => c.path)).toEqual(["next.json"]);
  });

  test("a push of nothing but changes head holds writes no revision and answers head, unchanged", () => {
    const { db, showFile } = openStores();
    showFile.push(push(0, { "a.json": "1" }));
    const lost = showFile.push(push(1, { "a.json": "2", "b.json": "b" }));
    showFile.push(push(2, { "c.json": "someone else" }));
    const before = counts(db);
    expect(showFile.push(push(1, { "a.json": "2", "b.json": "b" }))).toEqual({ rev: 3, seq: 3, duplicate: true, unchanged: true });
    expect(counts(db)).toEqual(before);
    expect(lost.rev).toBe(2);
  });

  test("held means the same bytes: one byte different still conflicts, and so does deleting a file gone before the base", () => {
    const { db, showFile } = openStores();
    showFile.push(push(0, { "a.json": "1", "b.json": "b" }));
    showFile.push(push(1, { "a.json": "2", "b.json": null }));
    const before = counts(db);
    expect(caught(() => showFile.push(push(1, { "a.json": "3" }))).code).toBe("PUSH_CONFLICT");
    expect(caught(() => showFile.push(push(2, { "b.json": null }))).code).toBe("INVALID_INPUT");
    expect(caught(() => showFile.push(push(2, { "never.json": null }))).code).toBe("INVALID_INPUT");
    expect(counts(db)).toEqual(before);
  });

  test("a file over 1 MiB sent again is recognised as held (its hash is the chunk list's)", () => {
    const { db, showFile } = openStores();
    const big = new Uint8Array(2 * 1024 * 1024 + 5);
    randomFillSync(big);
    showFile.push({ base: 0, changes: [{ path: "big.bin", content: big }], message: "big", author: "ctrl-1" });
    showFile.push(push(1, { "other.json": "o" }));
    const before = counts(db);
    expect(showFile.push({ base: 0, changes: [{ path: "big.bin", content: big }], message: "again", author: "ctrl-1" })).toMatchObject({ rev: 2, unchanged: true });
    expect(counts(db)).toEqual(before);
  });
});

describe("pull", () => {
  test("returns each path changed since a revision: its content at head, or a deletion", () => {
    const { showFile } = openStores();
    showFile.push(push(0, { "keep.json": "k", "edit.json": "1", "gone.json": "g" }));
    showFile.push(push(1, { "edit.json": "2", "gone.json": null, "temp.json": "t" }));
    showFile.push(push(2, { "edit.json": "3", "temp.json": null, "added.json": "a" }));
    const pulled = showFile.pull(1);
    expect(pulled.since).toBe(1);
    expect(pulled.head).toBe(3);
    expect(pulled.changes.map((c) => [c.path, c.deleted ? null : text(showFile.read(c.path))])).toEqual([
      ["added.json", "a"],
      ["edit.json", "3"],
      ["gone.json", null],
      // temp.json was made and deleted after revision 1: the puller never had it.
    ]);
    expect(showFile.pull(3).changes).toEqual([]);
    expect(showFile.pull(0).changes.map((c) => c.path)).toEqual(["added.json", "edit.json", "keep.json"]);
  });
});

describe("refused pushes write nothing", () => {
  const cases: [name: string, request: PushRequest, code: string, mentions: string][] = [
    ["a path escaping the folder", push(1, { "../x": "evil" }), "INVALID_SHOW_PATH", '"../x"'],
    ["an absolute path", push(1, { "/etc/passwd": "evil" }), "INVALID_SHOW_PATH", '"/etc/passwd"'],
    ["an empty folder name", push(1, { "a//b": "x" }), "INVALID_SHOW_PATH", '"a//b"'],
    ["a Windows drive path", push(1, { "C:\\x": "x" }), "INVALID_SHOW_PATH", "C:"],
    ["no changes", push(1, {}), "INVALID_INPUT", "nothing to push"],
    ["deleting a file that is not there", push(1, { "never.json": null }), "INVALID_INPUT", '"never.json"'],
    ["the same path twice", { ...push(1, { "a.json": "1" }), changes: [{ path: "a.json", content: bytes("1") }, { path: "a.json", content: null }] }, "INVALID_INPUT", "twice"],
    ["no author", push(1, { "a.json": "1" }, { author: "" }), "INVALID_INPUT", "author"],
    ["a case-only twin of a file", push(1, { "scene.json": "twin" }), "SHOW_PATH_COLLISION", '"Scene.json" and "scene.json"'],
    ["a file inside a file", push(1, { "logo/inner.png": "x" }), "SHOW_PATH_COLLISION", '"logo" is a file'],
    ["a file named like a folder", push(1, { "GFX": "x" }), "SHOW_PATH_COLLISION", '"GFX" is a file but "gfx/a.json"'],
    ["two new twins in one push", push(1, { "New.json": "1", "new.json": "2" }), "SHOW_PATH_COLLISION", "same file"],
  ];
  for (const [name, request, code, mentions] of cases) {
    test(name, () => {
      const { db, showFile } = openStores();
      showFile.push(push(0, { "Scene.json": "s", logo: "l", "gfx/a.json": "a" }));
      const before = counts(db);
      const error = caught(() => showFile.push(request));
      expect(error.code).toBe(code);
      expect(error.message).toContain(mentions);
      expect(counts(db)).toEqual(before);
    });
  }

  test("a push naming chunks that are not stored, or whose sizes don't add up, is refused", () => {
    const { db, showFile, chunkIntake } = openStores();
    const absent = sha256Hex(bytes("never sent"));
    const missing = caught(() => showFile.push({ base: 0, changes: [{ path: "a.bin", size: 10, chunks: [absent] }], message: "", author: "a" }));
    expect(missing.code).toBe("CHUNKS_MISSING");
    expect(missing).toMatchObject({ missing: [absent] });
    const stored = sha256Hex(bytes("four"));
    db.run("INSERT INTO chunks (hash, size, data, in_file) VALUES (?, 4, ?, 0)", [stored, bytes("four")]);
    const wrong = caught(() => showFile.push({ base: 0, changes: [{ path: "a.bin", size: 5, chunks: [stored] }], message: "", author: "a" }));
    expect(wrong.code).toBe("INVALID_INPUT");
    const notWhole = caught(() => showFile.push({ base: 0, changes: [{ path: "a.bin", size: 1024 * 1024 + 4, chunks: [stored, stored] }], message: "", author: "a" }));
    expect(notWhole.message).toContain("not 1 MiB each");
    // A size its chunks could never hold is refused before the database is asked, as a puller refuses it (core/show-manifest.ts).
    const misshapen = caught(() => showFile.push({ base: 0, changes: [{ path: "a.bin", size: 2 ** 40, chunks: [] }], message: "", author: "a" }));
    expect(misshapen.code).toBe("INVALID_INPUT");
    expect(misshapen.message).toBe(`"a.bin" says it holds ${2 ** 40} bytes, which take 1048576 pieces of 1048576 bytes, but it names 0. Nothing was written.`);
    expect(counts(db).revisions).toBe(0);
    expect(chunkIntake.batch().missing([stored, absent, absent])).toEqual([absent]);
  });

  test("a file of several megabytes is stored in chunks, shared with any file that has the same ones", () => {
    const { db, showFile } = openStores();
    const big = randomFillSync(new Uint8Array(3 * 1024 * 1024 + 7));
    showFile.push({ base: 0, changes: [{ path: "show.bin", content: big }], message: "", author: "a" });
    showFile.push({ base: 1, changes: [{ path: "copy.bin", content: big }], message: "", author: "a" });
    expect(Buffer.from(showFile.read("copy.bin")).equals(Buffer.from(big))).toBe(true);
    const pulled = showFile.pull(0).changes.find((c) => c.path === "show.bin");
    expect(pulled).toMatchObject({ deleted: false, size: big.length });
    expect(pulled && !pulled.deleted ? pulled.chunks.length : 0).toBe(4);
    expect((db.query("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n).toBe(4);
  });

  test("renaming by letter case in one push (delete + add) is allowed", () => {
    const { showFile } = openStores();
    showFile.push(push(0, { "Scene.json": "s" }));
    showFile.push(push(1, { "Scene.json": null, "scene.json": "s" }));
    expect(showFile.files().map((f) => f.path)).toEqual(["scene.json"]);
  });
});

describe("damage and failures", () => {
  test("a blob changed on disk is detected on every read, naming the path and hash", () => {
    const { db, showFile } = openStores();
    showFile.push(push(0, { "scene.json": "original content" }));
    const hash = sha256Hex(bytes("original content"));
    writeFileSync(chunkFilePath(db.filename, hash), "original cONtent");
    expect(caught(() => showFile.read("scene.json")).code).toBe("CORRUPT_BLOB");
    db.run("DELETE FROM blob_chunks WHERE hash = ?", [hash]);
    for (const read of [() => showFile.read("scene.json"), () => showFile.pull(0)]) {
      const error = caught(read);
      expect(error.code).toBe("CORRUPT_BLOB");
      expect(error).toMatchObject({ path: "scene.json", hash });
      expect(error.message).toContain(hash);
    }
  });

  test("a full disk refuses the push with DISK_FULL, writes nothing, and the store keeps working", () => {
    const { db, showFile } = openStores();
    showFile.push(push(0, { "a.json": "small" }));
    const before = counts(db);
    const full = spyOn(fs, "writeSync").mockImplementation(() => {
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    });
    const error = caught(() => showFile.push({ base: 1, changes: [{ path: "big.bin", content: new Uint8Array(256 * 1024).fill(7) }], message: "", author: "a" }));
    full.mockRestore();
    expect(error.code).toBe("DISK_FULL");
    expect(error.status).toBe(507);
    expect(error.message).toContain("Free space");
    expect(error.message).toContain("nothing of it was written");
    // The chunk folder filled the disk, not the database: the message names what filled it, in a sentence that reads.
    expect(error.message).toStartWith(`The disk holding ${chunkDirFor(db.filename)} is full, so the push of 1 file could not be saved`);
    expect(counts(db)).toEqual(before);
    expect(showFile.head()).toBe(1);
    expect(showFile.push(push(1, { "b.json": "after space was freed" })).rev).toBe(2);
  });

  test("a push that fails mid-transaction leaves neither the revision nor its log entry", () => {
    const { db, showFile, log } = openStores();
    showFile.push(push(0, { "a.json": "1" }));
    const before = counts(db);
    db.run("CREATE TEMP TRIGGER fail_head BEFORE INSERT ON head_files BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    expect(() => showFile.push(push(1, { "b.json": "2" }))).toThrow("injected failure");
    expect(counts(db)).toEqual(before);
    expect(log.lastApplied()).toBe(1);
    db.run("DROP TRIGGER fail_head");
    expect(showFile.push(push(1, { "b.json": "2" }))).toEqual({ rev: 2, seq: 2, duplicate: false, unchanged: false });
  });
});
