/**
 * The show file, the asset cache and the replication log over one database,
 * wired so every write appends its log entry in the same transaction.
 */
import type { Database } from "bun:sqlite";
import { AssetStore } from "./asset-store.ts";
import { ChunkIntake } from "./chunk-intake.ts";
import { ReplicationLog } from "./replication-log.ts";
import { ShowFileStore } from "./show-file-store.ts";
import type { Clock } from "../core/clock.ts";
import { wallClock } from "../net/system-time.ts";

export type Stores = {
  readonly log: ReplicationLog;
  readonly showFile: ShowFileStore;
  readonly assets: AssetStore;
  /** Chunks of show-file pushes on their way in (written off the main thread, indexed when the push commits). */
  readonly chunkIntake: ChunkIntake;
};

/** `clock` (wall-clock time) gives the `created` times people see (revisions, assets); tests pass a fixed one. */
export function createStores(db: Database, clock: Clock = wallClock): Stores {
  const log = new ReplicationLog(db);
  return { log, showFile: new ShowFileStore(db, log, clock), assets: new AssetStore(db, log, clock), chunkIntake: new ChunkIntake(db) };
}
