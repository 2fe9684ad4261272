/**
 * What only servers hold (docs/design.md §Lanes and replication): the Data
 * Hub with its SQLite state, the show file and asset cache, the chunk
 * reclaimer, the pairing record and the main's removed backups, opened from the data dir.
 */
import type { Database } from "bun:sqlite";
import type { Lanes } from "../core/failover/index.ts";
import type { HubCore } from "../hub/hub-core.ts";
import type { Logger } from "../log.ts";
import { startChunkReclaim, type ReclaimLoop } from "../store/chunk-reclaim-loop.ts";
import { databasePath, openDatabase } from "../store/database.ts";
import { EpochFile } from "../store/epoch-file.ts";
import { HubStateStore } from "../store/hub-state-store.ts";
import { PairingFile } from "../store/pairing-file.ts";
import { FormerPartnersFile } from "../store/former-partners-file.ts";
import { CopyMarkFile } from "../store/copy-mark-file.ts";
import { createStores, type Stores } from "../store/stores.ts";

/** The Data Hub itself runs from `hubState`, `epoch` and `copyMark` in machine/data-hub-parts.ts. */
export type ServerData = { db: Database; hubState: HubStateStore; epoch: number; stores: Stores; reclaim: ReclaimLoop; pairingFile: PairingFile; formerPartners: FormerPartnersFile; copyMark: CopyMarkFile };

/** A server's Data Hub state, show file, asset cache and pairing record, opened from its data dir. */
export function openServerData(dataDir: string, chunkGraceMs: number, log: Logger): ServerData {
  const db = openDatabase(databasePath(dataDir));
  const stores = createStores(db);
  return {
    db,
    hubState: new HubStateStore(db),
    epoch: new EpochFile(dataDir).read(),
    stores,
    reclaim: startChunkReclaim(stores, chunkGraceMs, log),
    pairingFile: new PairingFile(dataDir),
    formerPartners: new FormerPartnersFile(dataDir, (message) => log.warn(message)),
    copyMark: new CopyMarkFile(dataDir),
  };
}

/** The replication lanes this server holds (core/failover/lanes.ts). */
export function serverLanes(hub: HubCore, stores: Stores): Lanes {
  const version = hub.lastVersion;
  const log = stores.log.position();
  return { hubEpoch: version.epoch, hubSeq: version.seq, logId: log.logId, logSeq: log.lastSeq };
}
