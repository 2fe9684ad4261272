/**
 * The show file, the asset cache and the replication log over one database,
 * wired so every write appends its log entry in the same transaction.
 */
import type { Database } from "bun:sqlite";
import { AssetStore } from "./asset-store.ts";
import { ChunkIntake } from "./chunk-intake.ts";
import { ReplicationLog } from "./replication-log.ts";
import { ShowFileStore } from "./show-file-store.ts";

export type Stores = {
  readonly log: ReplicationLog;
  readonly showFile: ShowFileStore;
  readonly assets: AssetStore;
  /** Chunks of show-file pushes on their way in (written off the main thread, indexed when the push commits). */
  readonly chunkIntake: ChunkIntake;
};

/** `wallClock` gives the `created` times people see (revisions, assets); tests pass a fixed one. */
export function createStores(db: Database, wallClock: () => number = Date.now): Stores {
  const log = new ReplicationLog(db);
  return { log, showFile: new ShowFileStore(db, log, wallClock), assets: new AssetStore(db, log, wallClock), chunkIntake: new ChunkIntake(db) };
}
