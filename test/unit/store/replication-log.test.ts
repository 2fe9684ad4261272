/**
 * The replication log (store/replication-log.ts): a main and a backup, each a real
 * database in its own temp dir, with entries handed across by hand.
 */
import { describe, expect, test } from "bun:test";
import type { Database } from "bun:sqlite";
import { randomFillSync } from "node:crypto";
import { ASSET_CHUNK_BYTES } from "../../../src/store/asset-store.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";
import type { ReplicationEntry } from "../../../src/store/replication-entries.ts";
import { planCatchUp, type CatchUp } from "../../../src/store/replication-plan.ts";
import type { LogPosition } from "../../../src/store/replication-log.ts";
import { bytes, pushFiles, uploadAsset, useStoreMachines, type Machine } from "./store-machines.ts";
import { caughtAppError } from "../../support/caught.ts";

const { machine, restart } = useStoreMachines("understudy-replication-");
/** A new backup takes the main's (empty) history first, as the runner would: an empty snapshot. */
function pairedBackup(main: Machine): Machine {
  const backup = machine("backup");
  backup.log.beginSnapshot(main.log.snapshotStart());
  const start = backup.log.snapshotProgress()!;
  backup.log.applySnapshotPage(main.log.snapshotPage({ logId: start.logId, throughSeq: start.throughSeq, after: 0 }));
  return backup;
}
/** The chunk lane, by hand: fetch what the entries need from the main. */
function fetchChunks(main: Machine, backup: Machine, entries: ReplicationEntry[]) {
  for (const hash of backup.log.missingChunksFor(entries)) backup.assets.putChunkByHash(hash, main.assets.chunk(hash));
}
/** What a machine holds, for "the backup has everything the main has, byte for byte". */
function contents(m: Machine) {
  return {
    head: m.showFile.head(),
    log: m.showFile.log(1000),
    files: m.showFile.files().map((f) => ({ ...f, content: Buffer.from(m.showFile.read(f.path)).toString("base64") })),
    assets: m.assets.list().map((a) => ({ ...m.assets.manifest(a.id), sha: sha256Hex(Buffer.concat([...m.assets.read(a.id)])) })),
    lastSeq: m.log.lastApplied(),
    logRows: m.db.query("SELECT seq, kind, payload, created FROM replication_log ORDER BY seq").all(),
  };
}
const caught = caughtAppError;
const tableCounts = (db: Database) =>
  ["revisions", "files", "blobs", "assets", "asset_chunks", "replication_log"].map((t) => (db.query(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n);

describe("main → backup through the log", () => {
  test("every push and asset reaches the backup in order, byte for byte, and the backup keeps the main's log", async () => {
    const main = machine("main");
    const backup = pairedBackup(main);
    pushFiles(main, { "scene.json": "one", "gfx/a.json": "a" });
    await uploadAsset(main, "intro.mov", randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES + 5)));
    pushFiles(main, { "scene.json": "two", "gfx/a.json": null });
    const entries = main.log.entriesSince(backup.log.lastApplied());
    expect(entries.map((e) => [e.seq, e.kind])).toEqual([[1, "show.revision"], [2, "asset.manifest"], [3, "show.revision"]]);
    fetchChunks(main, backup, entries);
    for (const entry of entries) expect(backup.log.applyEntry(entry)).toEqual({ applied: true, seq: entry.seq });
    expect(contents(backup)).toEqual(contents(main));
    expect(main.log.entriesSince(3)).toEqual([]);
    expect(planCatchUp(main.log.position(), backup.log.position())).toEqual({ action: "in-sync" });
  });

  test("applying an entry again is a no-op; skipping one is a gap; both write nothing", () => {
    const main = machine("main");
    const backup = pairedBackup(main);
    for (const v of ["1", "2", "3"]) pushFiles(main, { "a.json": v });
    const [first, second, third] = main.log.entriesSince(0);
    fetchChunks(main, backup, [first!, second!, third!]);
    backup.log.applyEntry(first!);
    const before = tableCounts(backup.db);
    expect(backup.log.applyEntry(first!)).toEqual({ applied: false, seq: 1 });
    const gap = caught(() => backup.log.applyEntry(third!));
    expect(gap.code).toBe("REPLICATION_GAP");
    expect(gap.message).toContain("Ask the main again from 2");
    expect(tableCounts(backup.db)).toEqual(before);
    expect(backup.log.lastApplied()).toBe(1);
    backup.log.applyEntry(second!);
    backup.log.applyEntry(third!);
    expect(new TextDecoder().decode(backup.showFile.read("a.json"))).toBe("3");
  });

  test("the backup resumes from its last applied entry after a restart", () => {
    const main = machine("main");
    let backup = pairedBackup(main);
    pushFiles(main, { "a.json": "1" });
    pushFiles(main, { "b.json": "2" });
    fetchChunks(main, backup, main.log.entriesSince(0));
    backup.log.applyEntry(main.log.entriesSince(0)[0]!);
    backup = restart(backup);
    expect(planCatchUp(main.log.position(), backup.log.position())).toEqual({ action: "log", fromSeq: 1, behind: 1 });
    for (const entry of main.log.entriesSince(backup.log.lastApplied())) backup.log.applyEntry(entry);
    expect(contents(backup)).toEqual(contents(main));
  });

  test("a manifest waits for its chunks, which travel by hash in their own lane", async () => {
    const main = machine("main");
    const backup = pairedBackup(main);
    const data = randomFillSync(new Uint8Array(2 * ASSET_CHUNK_BYTES + 1));
    const { asset } = await uploadAsset(main, "clip.mxf", data);
    const [entry] = main.log.entriesSince(0);
    expect(entry!.kind).toBe("asset.manifest");
    const missing = backup.log.missingChunksFor(entry!);
    expect(missing).toEqual(main.assets.manifest(asset.id).chunks.slice());
    const refused = caught(() => backup.log.applyEntry(entry!));
    expect(refused.code).toBe("CHUNKS_MISSING");
    expect(backup.assets.list()).toEqual([]);
    expect(backup.log.lastApplied()).toBe(0);
    backup.assets.putChunkByHash(missing[0]!, main.assets.chunk(missing[0]!));
    expect(backup.log.missingChunksFor([entry!])).toEqual(missing.slice(1));
    fetchChunks(main, backup, [entry!]);
    backup.log.applyEntry(entry!);
    expect(Buffer.concat([...backup.assets.read(asset.id)]).equals(data)).toBe(true);
  });

  test("a removed asset is removed on the backup too, whether the backup had it yet or not", async () => {
    const main = machine("main");
    const backup = pairedBackup(main);
    const { asset: early } = await uploadAsset(main, "early.mov", randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES + 1)));
    const first = main.log.entriesSince(0);
    fetchChunks(main, backup, first);
    for (const entry of first) backup.log.applyEntry(entry);
    const { asset: late } = await uploadAsset(main, "late.mov", randomFillSync(new Uint8Array(10)));
    main.assets.removeAsset(early.id);
    main.assets.removeAsset(late.id);
    const rest = main.log.entriesSince(backup.log.lastApplied());
    // The late manifest is rebuilt as its removal: its asset is gone, there is nothing to copy.
    expect(rest.map((e) => e.kind)).toEqual(["asset.removed", "asset.removed", "asset.removed"]);
    for (const entry of rest) backup.log.applyEntry(entry);
    expect(backup.assets.list()).toEqual([]);
    expect(backup.log.lastApplied()).toBe(main.log.lastApplied());
  });

  test("entries are checked before anything is applied", () => {
    const main = machine("main");
    const backup = pairedBackup(main);
    pushFiles(main, { "a.json": "real" });
    pushFiles(main, { "b.json": "next" });
    const [entry, next] = main.log.entriesSince(0) as [ReplicationEntry & { kind: "show.revision" }, ReplicationEntry];
    fetchChunks(main, backup, [entry, next]);
    const broken: [string, unknown][] = [
      ["tampered blob", { ...entry, blobs: [{ hash: entry.blobs[0]!.hash, size: 4, chunks: [sha256Hex(bytes("fake"))] }] }],
      ["blob size that its chunks don't hold", { ...entry, blobs: [{ ...entry.blobs[0]!, size: 5 }], files: [{ ...entry.files[0]!, size: 5 }] }],
      ["missing blob", { ...entry, blobs: [] }],
      ["escaping path", { ...entry, files: [{ ...entry.files[0]!, path: "../a.json" }] }],
      ["wrong revision", { ...entry, revision: { ...entry.revision, rev: 5, parent: 4 } }],
      ["malformed", { seq: 1, kind: "show.revision" }],
      ["unknown kind", { ...entry, kind: "mystery" }],
    ];
    for (const [name, bad] of broken) {
      const error = caught(() => backup.log.applyEntry(bad as ReplicationEntry));
      expect([name, error.code]).toEqual([name, "REPLICATION_ENTRY_INVALID"]);
    }
    expect(tableCounts(backup.db)).toEqual([0, 0, 0, 0, 0, 0]);
    // The real entries still apply afterwards.
    backup.log.applyEntry(entry);
    expect(backup.log.applyEntry(next)).toEqual({ applied: true, seq: 2 });
  });

  test("an apply that fails mid-transaction leaves neither the data, the log row nor the applied seq", () => {
    const main = machine("main");
    const backup = pairedBackup(main);
    pushFiles(main, { "a.json": "1" });
    const [entry] = main.log.entriesSince(0);
    fetchChunks(main, backup, [entry!]);
    backup.db.run("CREATE TEMP TRIGGER fail_log BEFORE INSERT ON replication_log BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    expect(() => backup.log.applyEntry(entry!)).toThrow("injected failure");
    expect(tableCounts(backup.db)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(backup.log.lastApplied()).toBe(0);
    backup.db.run("DROP TRIGGER fail_log");
    expect(backup.log.applyEntry(entry!).applied).toBe(true);
  });

  test("damage on the main is never replicated: building the entry checks the blob", () => {
    const main = machine("main");
    pushFiles(main, { "a.json": "content" });
    main.db.run("DELETE FROM blob_chunks");
    expect(caught(() => main.log.entriesSince(0)).code).toBe("CORRUPT_BLOB");
  });

  test("append only runs inside the transaction of the write it describes", () => {
    const main = machine("main");
    expect(() => main.log.append("show.revision", "{}", 0)).toThrow("inside the transaction");
  });
});

describe("the main's log: paging and trimming", () => {
  test("entriesSince stops at the limit or the byte budget, but always returns one entry", () => {
    const main = machine("main");
    for (let i = 0; i < 5; i++) pushFiles(main, { [`f${i}.bin`]: "x".repeat(10_000) });
    expect(main.log.entriesSince(0, { limit: 2 }).map((e) => e.seq)).toEqual([1, 2]);
    expect(main.log.entriesSince(1, { maxBytes: 1_100 }).map((e) => e.seq)).toEqual([2, 3]);
    expect(main.log.entriesSince(0, { maxBytes: 1 }).map((e) => e.seq)).toEqual([1]);
    expect(main.log.entriesSince(5)).toEqual([]);
  });

  test("after trimming, a backup behind the trimmed entries is told to take a snapshot; the data stays", () => {
    const main = machine("main");
    for (let i = 0; i < 4; i++) pushFiles(main, { "a.json": String(i) });
    expect(main.log.trimBefore(3)).toBe(2);
    expect(main.log.position()).toMatchObject({ firstSeq: 3, lastSeq: 4 });
    expect(main.log.entriesSince(2).map((e) => e.seq)).toEqual([3, 4]);
    const error = caught(() => main.log.entriesSince(1));
    expect(error.code).toBe("LOG_TRIMMED");
    expect(main.showFile.log().length).toBe(4);
    expect(new TextDecoder().decode(main.showFile.read("a.json", 1))).toBe("0");
  });
});

describe("planCatchUp", () => {
  const at = (logId: string, firstSeq: number, lastSeq: number, snapshot: LogPosition["snapshot"] = null): LogPosition => ({ logId, firstSeq, lastSeq, snapshot });
  const snap = (logId: string, throughSeq: number, cursor: number) => ({ logId, throughSeq, cursor, totalItems: 10, fraction: 0.5 });
  const cases: [name: string, main: LogPosition, backup: LogPosition, expected: CatchUp["action"]][] = [
    ["same log, same seq", at("m", 1, 9), at("m", 1, 9), "in-sync"],
    ["same log, behind", at("m", 1, 9), at("m", 1, 4), "log"],
    ["behind to just before the first kept entry", at("m", 5, 9), at("m", 1, 4), "log"],
    ["behind the trimmed entries", at("m", 6, 9), at("m", 1, 4), "snapshot"],
    ["a new backup", at("m", 1, 9), at("b", 1, 0), "snapshot"],
    ["another server's history", at("m", 1, 9), at("b", 1, 12), "snapshot"],
    ["a snapshot of this log in progress", at("m", 1, 9), at("m", 1, 3, snap("m", 8, 3)), "resume-snapshot"],
    ["a snapshot of a replaced log in progress", at("m2", 1, 9), at("m", 1, 3, snap("m", 8, 3)), "snapshot"],
    ["the backup is ahead", at("m", 1, 4), at("m", 1, 9), "ahead"],
  ];
  for (const [name, main, backup, action] of cases) test(name, () => expect(planCatchUp(main, backup).action).toBe(action));
});
