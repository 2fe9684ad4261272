/**
 * Snapshots (store/replication-snapshot.ts through ReplicationLog): a backup that is
 * new or too far behind copies everything in pages, with progress, resumes after a
 * restart, and then follows the log.
 */
import { describe, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import { ASSET_CHUNK_BYTES } from "../../../src/store/asset-store.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";
import { planCatchUp } from "../../../src/store/replication-plan.ts";
import type { ReplicationEntry } from "../../../src/store/replication-entries.ts";
import type { SnapshotPage } from "../../../src/store/replication-snapshot.ts";
import { pushFiles, uploadAsset, useStoreMachines, type Machine } from "./store-machines.ts";
import { caughtAppError } from "../../support/caught.ts";

const { machine, restart } = useStoreMachines("understudy-snapshot-");
/** A main with history: 6 revisions and 2 assets, interleaved. */
async function busyMain(): Promise<Machine> {
  const main = machine("main");
  pushFiles(main, { "scene.json": "1", "gfx/a.json": "a", "gfx/b.json": "b" });
  await uploadAsset(main, "intro.mov", randomFillSync(new Uint8Array(ASSET_CHUNK_BYTES + 10)));
  pushFiles(main, { "scene.json": "2" });
  pushFiles(main, { "gfx/a.json": null, "same.json": "b" });
  await uploadAsset(main, "logo.png", randomFillSync(new Uint8Array(500)));
  pushFiles(main, { "scene.json": "3" });
  pushFiles(main, { "Scene-notes.txt": "n" });
  pushFiles(main, { "gfx/b.json": "b2" });
  return main;
}
function contents(m: Machine) {
  return {
    head: m.showFile.head(),
    log: m.showFile.log(1000),
    files: m.showFile.files().map((f) => ({ ...f, content: Buffer.from(m.showFile.read(f.path)).toString("base64") })),
    oldFiles: m.showFile.files(2),
    assets: m.assets.list().map((a) => ({ ...m.assets.manifest(a.id), sha: sha256Hex(Buffer.concat([...m.assets.read(a.id)])) })),
    lastSeq: m.log.lastApplied(),
    logId: m.log.logId(),
  };
}
function fetchChunks(main: Machine, backup: Machine, page: SnapshotPage) {
  for (const hash of backup.log.missingChunksFor(page.entries)) backup.assets.putChunkByHash(hash, main.assets.chunk(hash));
}
/** The chunk lane and the log, by hand: fetch what the entry needs, then apply it. */
function applyWithChunks(main: Machine, backup: Machine, entry: ReplicationEntry) {
  for (const hash of backup.log.missingChunksFor(entry)) backup.assets.putChunkByHash(hash, main.assets.chunk(hash));
  backup.log.applyEntry(entry);
}
/** Runs the snapshot in pages of `limit` items until done (or `stopAfter` pages); returns the fractions seen. */
function copyPages(main: Machine, backup: Machine, limit: number, stopAfter = Infinity): number[] {
  const fractions: number[] = [];
  for (let progress = backup.log.snapshotProgress(); progress && fractions.length < stopAfter; progress = backup.log.snapshotProgress()) {
    const page = main.log.snapshotPage({ logId: progress.logId, throughSeq: progress.throughSeq, after: progress.cursor, limit });
    fetchChunks(main, backup, page);
    backup.log.applySnapshotPage(page);
    fractions.push(page.fraction);
  }
  return fractions;
}
const caught = caughtAppError;

describe("snapshot", () => {
  test("a new backup gets every revision, blob and manifest in pages with rising progress, then follows the log", async () => {
    const main = await busyMain();
    const backup = machine("backup");
    expect(planCatchUp(main.log.position(), backup.log.position()).action).toBe("snapshot");
    const start = main.log.snapshotStart();
    expect(start).toEqual({ logId: main.log.logId(), throughSeq: 8, totalItems: 8 });
    backup.log.beginSnapshot(start);
    expect(backup.log.snapshotProgress()).toMatchObject({ cursor: 0, fraction: 0 });
    const fractions = copyPages(main, backup, 3);
    expect(fractions).toEqual([3 / 8, 6 / 8, 1]);
    expect(backup.log.snapshotProgress()).toBeNull();
    expect(contents(backup)).toEqual(contents(main));
    // Afterwards the log carries on from the snapshot's end.
    pushFiles(main, { "scene.json": "4" });
    expect(planCatchUp(main.log.position(), backup.log.position())).toEqual({ action: "log", fromSeq: 8, behind: 1 });
    for (const entry of main.log.entriesSince(backup.log.lastApplied())) applyWithChunks(main, backup, entry);
    expect(contents(backup)).toEqual(contents(main));
  });

  test("pages are bounded by bytes too, always holding at least one item", async () => {
    const main = await busyMain();
    const start = main.log.snapshotStart();
    const page = main.log.snapshotPage({ ...start, after: 0, maxBytes: 1 });
    expect(page.entries.map((e) => e.seq)).toEqual([1]);
    expect(page).toMatchObject({ cursor: 1, done: false });
  });

  test("a snapshot resumes after the backup restarts; a page applied twice changes nothing", async () => {
    const main = await busyMain();
    let backup = machine("backup");
    backup.log.beginSnapshot(main.log.snapshotStart());
    copyPages(main, backup, 3, 1);
    const firstPage = main.log.snapshotPage({ logId: main.log.logId(), throughSeq: 8, after: 0, limit: 3 });
    backup = restart(backup);
    const progress = backup.log.snapshotProgress();
    expect(progress).toMatchObject({ logId: main.log.logId(), throughSeq: 8, cursor: 3, totalItems: 8 });
    expect(planCatchUp(main.log.position(), backup.log.position())).toEqual({ action: "resume-snapshot", after: 3 });
    expect(backup.log.applySnapshotPage(firstPage)).toMatchObject({ cursor: 3 });
    expect(backup.showFile.head()).toBe(2);
    copyPages(main, backup, 3);
    expect(contents(backup)).toEqual(contents(main));
  });

  test("the snapshot is of the moment it started; what the main writes meanwhile comes through the log", async () => {
    const main = await busyMain();
    const backup = machine("backup");
    backup.log.beginSnapshot(main.log.snapshotStart());
    copyPages(main, backup, 2, 1);
    pushFiles(main, { "during.json": "written during the snapshot" });
    copyPages(main, backup, 2);
    expect(backup.showFile.head()).toBe(6);
    expect(backup.log.lastApplied()).toBe(8);
    for (const entry of main.log.entriesSince(8)) applyWithChunks(main, backup, entry);
    expect(contents(backup)).toEqual(contents(main));
  });

  test("a backup behind a trimmed log, or holding another history, is replaced; its chunks are kept", async () => {
    const main = await busyMain();
    const backup = machine("backup");
    pushFiles(backup, { "stale.json": "from an old pairing" });
    const kept = randomFillSync(new Uint8Array(100));
    backup.assets.putChunkByHash(sha256Hex(kept), kept);
    main.log.trimBefore(8);
    expect(planCatchUp(main.log.position(), backup.log.position()).action).toBe("snapshot");
    backup.log.beginSnapshot(main.log.snapshotStart());
    copyPages(main, backup, 100);
    expect(contents(backup)).toEqual(contents(main));
    expect(backup.assets.hasChunk(sha256Hex(kept))).toBe(true);
  });

  test("a page whose manifest lacks chunks is refused whole, and the cursor stays", async () => {
    const main = await busyMain();
    const backup = machine("backup");
    backup.log.beginSnapshot(main.log.snapshotStart());
    const page = main.log.snapshotPage({ logId: main.log.logId(), throughSeq: 8, after: 0, limit: 3 });
    const error = caught(() => backup.log.applySnapshotPage(page));
    expect(error.code).toBe("CHUNKS_MISSING");
    expect(backup.showFile.head()).toBe(0);
    expect(backup.log.snapshotProgress()).toMatchObject({ cursor: 0 });
  });

  test("snapshot calls that don't fit the snapshot state are refused", async () => {
    const main = await busyMain();
    const backup = machine("backup");
    const page = main.log.snapshotPage({ logId: main.log.logId(), throughSeq: 8, after: 0, limit: 1 });
    expect(caught(() => backup.log.applySnapshotPage(page)).code).toBe("SNAPSHOT_MISMATCH");
    expect(caught(() => main.log.snapshotPage({ logId: "another-log", throughSeq: 8, after: 0 })).code).toBe("SNAPSHOT_MISMATCH");
    backup.log.beginSnapshot({ ...main.log.snapshotStart(), throughSeq: 7 });
    expect(caught(() => backup.log.applySnapshotPage(page)).code).toBe("SNAPSHOT_MISMATCH");
    const [entry] = main.log.entriesSince(0);
    expect(caught(() => backup.log.applyEntry(entry!)).code).toBe("SNAPSHOT_MISMATCH");
  });

  test("an empty main gives a one-page snapshot that just adopts its log", () => {
    const main = machine("main");
    const backup = machine("backup");
    backup.log.beginSnapshot(main.log.snapshotStart());
    expect(copyPages(main, backup, 10)).toEqual([1]);
    expect(backup.log.position()).toMatchObject({ logId: main.log.logId(), lastSeq: 0, snapshot: null });
    expect(planCatchUp(main.log.position(), backup.log.position())).toEqual({ action: "in-sync" });
  });
});
