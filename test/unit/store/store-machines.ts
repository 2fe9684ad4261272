/**
 * Test fixture for replication: "machines", each a real database in its own
 * folder under a temp dir made before each test and removed after it.
 */
import { afterEach, beforeEach } from "bun:test";
import type { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ASSET_CHUNK_BYTES } from "../../../src/store/asset-store.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";
import { databasePath, openDatabase } from "../../../src/store/database.ts";
import { createStores, type Stores } from "../../../src/store/stores.ts";

export type Machine = Stores & { db: Database; name: string };

/** Registers the temp dir hooks; `machine` opens (or reopens) one, `restart` closes and reopens it. */
export function useStoreMachines(prefix: string) {
  let root = "";
  const open: Database[] = [];
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), prefix));
  });
  afterEach(() => {
    for (const db of open.splice(0)) db.close();
    rmSync(root, { recursive: true, force: true });
  });
  const machine = (name: string): Machine => {
    const db = openDatabase(databasePath(join(root, name)));
    open.push(db);
    return { db, name, ...createStores(db, { now: () => 1_700_000_000_000 }) };
  };
  const restart = (m: Machine): Machine => {
    m.db.close();
    open.splice(open.indexOf(m.db), 1);
    return machine(m.name);
  };
  return { machine, restart };
}

export const bytes = (text: string) => new TextEncoder().encode(text);

/** One push on top of the machine's head: a path with text, or null to delete it. */
export const pushFiles = (m: Machine, files: Record<string, string | null>) =>
  m.showFile.push({
    base: m.showFile.head(),
    changes: Object.entries(files).map(([path, content]) => ({ path, content: content === null ? null : bytes(content) })),
    message: `edit by ${m.name}`,
    author: m.name,
  });

/** Uploads `data` chunk by chunk and commits it. */
export async function uploadAsset(m: Machine, name: string, data: Uint8Array) {
  const handle = m.assets.beginUpload(name, data.length);
  for (let idx = 0; idx < handle.chunkCount; idx++) m.assets.putChunk(handle.id, idx, data.subarray(idx * ASSET_CHUNK_BYTES, (idx + 1) * ASSET_CHUNK_BYTES));
  return m.assets.commit(handle.id, sha256Hex(data));
}
