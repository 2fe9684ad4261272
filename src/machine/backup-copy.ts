/**
 * The backup's two copy loops (docs/design.md §Lanes and replication): the
 * Data Hub state and the show-file log, from the main the core says to copy
 * from (core/routing.ts replicationSource), at the address heartbeats go to
 * (the setup's, or the one that paired). Both read the source on every step.
 */
import type { Config, HostPort } from "../core/config.ts";
import type { NodeState } from "../core/failover/index.ts";
import { pairedPeer, replicationSource } from "../core/routing.ts";
import type { Logger } from "../log.ts";
import type { PeerRefusals } from "../net/peer-refusals.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import { HubStateReplication } from "../services/hub-state-replication.ts";
import { LogReplicationSink } from "../services/show-file-log-replication.ts";
import { copyMark, type ServerData } from "./server-data.ts";

export type BackupCopyOptions = {
  net: PeerDialer;
  data: ServerData;
  config: Config;
  log: Logger;
  refusals: PeerRefusals;
  /** The core's state now (null before the runner runs). */
  current: () => NodeState | null;
  /** Where the main is now, as heartbeats go to it. */
  mainAt: () => HostPort | null;
  synced: () => void;
  broken: () => void;
};

export function startBackupCopy(o: BackupCopyOptions): { replication: HubStateReplication; sink: LogReplicationSink } {
  const source = () => (replicationSource(o.current()) === "main" ? o.mainAt() : null);
  const replication = new HubStateReplication({
    net: o.net,
    source,
    hub: o.data.hub,
    periodMs: o.config.heartbeatMs,
    refusals: o.refusals,
    mark: copyMark(o.data, () => pairedPeer(o.current())),
    signals: { synced: o.synced, broken: o.broken },
  });
  const sink = new LogReplicationSink({ net: o.net, source, stores: o.data.stores, retryMs: o.config.heartbeatMs, log: o.log });
  return { replication, sink };
}
