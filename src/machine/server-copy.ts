/**
 * The copies between the two servers (docs/design.md §Lanes and replication),
 * from the server the core says to copy from (core/routing.ts replicationSource),
 * at the address heartbeats go to (the setup's, or the one that paired). Both
 * loops read the source on every step, so a copy stops the moment the core's
 * phase says so and starts again when it says so.
 * - A backup copies the main's Data Hub state and show-file log while it follows it.
 * - A main waiting to be switched back copies the backup's Data Hub state for as
 *   long as it waits, with the same copy mark. The show-file log needs no such
 *   copy: a serving backup refuses pushes (core/routing.ts filesRoute).
 */
import type { Config, HostPort } from "../core/config.ts";
import type { NodeState, ServerRole } from "../core/failover/index.ts";
import { pairedPeer, replicationSource } from "../core/routing.ts";
import type { Logger } from "../log.ts";
import type { PeerRefusals } from "../net/peer-refusals.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import { HubStateReplication } from "../services/hub-state-replication.ts";
import { LogReplicationSink } from "../services/show-file-log-replication.ts";
import { copyMark, type ServerData } from "./server-data.ts";

export type ServerCopyOptions = {
  net: PeerDialer;
  data: ServerData;
  config: Config;
  log: Logger;
  refusals: PeerRefusals;
  /** The core's state now (null before the runner runs). */
  current: () => NodeState | null;
  /** Where the other server is now, as heartbeats go to it. */
  serverAt: (role: ServerRole) => HostPort | null;
  /** Whether this server copies the main's show-file log too (the backup's role plan). */
  copiesLog: boolean;
  /** The first complete copy of the main's state on a connection (the backup's syncDone). */
  mainSynced: () => void;
  /** The copy's connection to the main broke (the backup's immediate "main is down"). */
  mainBroken: () => void;
};

export function startServerCopy(o: ServerCopyOptions): { replication: HubStateReplication; sink: LogReplicationSink | null } {
  const source = () => {
    const role = replicationSource(o.current());
    return role === null ? null : o.serverAt(role);
  };
  // A waiting main's copy says nothing to its core: the backup's liveness is judged by heartbeats and the uplink.
  const fromMain = (signal: () => void) => () => void (replicationSource(o.current()) === "main" && signal());
  const mainSource = () => (replicationSource(o.current()) === "main" ? o.serverAt("main") : null);
  const replication = new HubStateReplication({
    net: o.net,
    source,
    hub: o.data.hub,
    periodMs: o.config.heartbeatMs,
    refusals: o.refusals,
    mark: copyMark(o.data, () => pairedPeer(o.current())),
    signals: { synced: fromMain(o.mainSynced), broken: fromMain(o.mainBroken) },
  });
  const sink = o.copiesLog ? new LogReplicationSink({ net: o.net, source: mainSource, stores: o.data.stores, retryMs: o.config.heartbeatMs, log: o.log }) : null;
  return { replication, sink };
}
