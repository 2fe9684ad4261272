/**
 * A networked machine's status, assembled in one place from the parts that
 * hold it (the failover runner, the app gateway, the stores, the replication
 * loops), in the wire shape of core/status.ts.
 */
import { laneLag, type LaneLag } from "../core/lane-lag.ts";
import type { MachineStatus, PeerRefusal } from "../core/status.ts";
import { storageStatus, type StorageStatus } from "../core/storage-check.ts";
import type { AppGateway } from "../services/app-gateway.ts";
import type { HubService } from "../services/hub-service.ts";
import type { BackupSync, LogReplicationSink, LogReplicationSource } from "../services/show-file-log-replication.ts";
import { diskUsage } from "../store/disk-usage.ts";
import type { PairingFile } from "../store/pairing-file.ts";
import type { Stores } from "../store/stores.ts";
import type { Database } from "bun:sqlite";
import type { FailoverRunner } from "./failover-runner.ts";

export type FailoverStatus = NonNullable<MachineStatus["failover"]> & { chip: string; refusal: PeerRefusal | null };

/** Everything the status of a networked machine adds to its identity and settings. */
export type PeerStatus = {
  failover: FailoverStatus;
  showFile: MachineStatus["showFile"];
  storage: StorageStatus | null;
  replication: LaneLag | null;
  hub: MachineStatus["hub"];
};

export type StatusSources = {
  runner: FailoverRunner;
  gateway: AppGateway;
  hub: HubService | null;
  db: Database | null;
  stores: Stores | null;
  pairingFile: PairingFile | null;
  source: LogReplicationSource | null;
  sink: LogReplicationSink | null;
  /** The one read-only rule (core/routing.ts showFileReadOnly), as it stands now. */
  showFileReadOnly: boolean;
};

export function peerStatus(p: StatusSources): PeerStatus {
  const s = p.runner.status();
  return {
    failover: {
      state: s.state,
      epoch: s.epoch,
      activeEpoch: s.activeEpoch,
      chip: s.chip.text,
      chipProgress: s.chip.progress,
      localApps: p.gateway.appCount,
      activeServer: p.gateway.following?.role ?? null,
      hubConnected: p.gateway.connected,
      queued: p.gateway.uplink.queuedFrames,
      kept: p.gateway.uplink.ackedKept,
      keptDroppedEarly: p.gateway.uplink.ackedDroppedEarly,
      peers: s.peers,
      pairing: p.pairingFile?.details() ?? null,
      refusal: p.gateway.refusals.current(),
      showFileReadOnly: p.showFileReadOnly,
    },
    showFile: showFileStatus(p),
    storage: storageOf(p),
    replication: replicationLag(p),
    hub: p.hub?.counters() ?? null,
  };
}

/** The show file's head and the backup's copy, for the status chip and the Machines panel. */
function showFileStatus(p: StatusSources): { head: number; backup: BackupSync } | null {
  if (!p.stores) return null;
  const head = p.stores.showFile.head();
  if (p.source) return { head, backup: p.source.status() };
  if (p.sink) {
    const progress = p.sink.progress;
    return { head, backup: { state: progress === null ? "in-sync" : "syncing", behindBy: 0, progress } };
  }
  return { head, backup: { state: "none", behindBy: 0, progress: null } };
}

/** The Asset Hub cache and free disk here and on the other server, with the backup's space warning. */
function storageOf(p: StatusSources): StorageStatus | null {
  if (!p.db) return null;
  const here = diskUsage(p.db);
  return p.sink ? storageStatus(p.sink.mainUsage, here) : storageStatus(here, p.source?.backupUsage ?? null);
}

/** Paired servers: how far the backup's copy is behind per lane, from the lanes both announce. */
function replicationLag(p: StatusSources): LaneLag | null {
  const s = p.runner.current;
  if (!s || s.role === "client" || !p.pairingFile?.read()) return null;
  const other = s.other.beat?.lanes ?? null;
  return s.role === "main" ? laneLag(s.lanes, other) : laneLag(other, s.lanes);
}
