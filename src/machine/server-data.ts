/**
 * What only servers hold (docs/design.md §Lanes and replication): the Data
 * Hub with its SQLite state, the show file and asset cache, the chunk
 * reclaimer and the pairing record, opened from the data dir.
 */
import type { Database } from "bun:sqlite";
import type { Lanes } from "../core/failover/index.ts";
import { HubCore } from "../hub/hub-core.ts";
import type { Logger } from "../log.ts";
import { HubService } from "../services/hub-service.ts";
import { startChunkReclaim, type ReclaimLoop } from "../store/chunk-reclaim-loop.ts";
import { databasePath, openDatabase } from "../store/database.ts";
import { EpochFile } from "../store/epoch-file.ts";
import { HubStateStore } from "../store/hub-state-store.ts";
import { PairingFile } from "../store/pairing-file.ts";
import { createStores, type Stores } from "../store/stores.ts";

export type ServerData = { db: Database; hub: HubService; stores: Stores; reclaim: ReclaimLoop; pairingFile: PairingFile };

/** A server's Data Hub state, show file, asset cache and pairing record, opened from its data dir. */
export function openServerData(dataDir: string, networkKey: Uint8Array, chunkGraceMs: number, log: Logger): ServerData {
  const db = openDatabase(databasePath(dataDir));
  const hub = new HubService(new HubCore({ epoch: new EpochFile(dataDir).read(), persistence: new HubStateStore(db) }), networkKey, log);
  const stores = createStores(db);
  return { db, hub, stores, reclaim: startChunkReclaim(stores, chunkGraceMs, log), pairingFile: new PairingFile(dataDir) };
}

/** The replication lanes this server holds (core/failover/lanes.ts). */
export function serverLanes(data: ServerData): Lanes {
  const version = data.hub.core.lastVersion;
  const log = data.stores.log.position();
  return { hubEpoch: version.epoch, hubSeq: version.seq, logId: log.logId, logSeq: log.lastSeq };
}
