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
 * The Data Hub copy runs in machine/data-hub-parts.ts, the log copy in peer-runtime.ts.
 * Nothing here opens SQLite, so the simulator runs it under Deno too.
 */
import type { Timers } from "../core/clock.ts";
import type { HostPort } from "../core/config.ts";
import type { NodeState, ServerRole } from "../core/failover/index.ts";
import { replicationSource } from "../core/routing.ts";
import type { PeerRefusals } from "../net/peer-refusals.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import type { HubService } from "../services/hub-service.ts";
import { HubStateReplication, type CopyMark } from "../services/hub-state-replication.ts";

/** The core's state now (null before the runner runs), and where the other server is now, as heartbeats go to it. */
export type CopyPosition = { current: () => NodeState | null; serverAt: (role: ServerRole) => HostPort | null };

/** The server to copy the Data Hub state from now, or null. */
export function copySource(p: CopyPosition): () => HostPort | null {
  return () => {
    const role = replicationSource(p.current());
    return role === null ? null : p.serverAt(role);
  };
}

/** The main while this backup copies from it (the show-file log has no copy the other way). */
export function mainCopySource(p: CopyPosition): () => HostPort | null {
  return () => (replicationSource(p.current()) === "main" ? p.serverAt("main") : null);
}

export type HubCopyOptions = CopyPosition & {
  net: PeerDialer;
  hub: Pick<HubService, "importChanges">;
  mark: CopyMark;
  periodMs: number;
  refusals: PeerRefusals;
  timers: Timers;
  /** The first complete copy of the main's state on a connection (the backup's syncDone). */
  mainSynced: () => void;
  /** The copy's connection to the main broke (the backup's immediate "main is down"). */
  mainBroken: () => void;
};

export function startHubCopy(o: HubCopyOptions): HubStateReplication {
  // A waiting main's copy says nothing to its core: the backup's liveness is judged by heartbeats and the uplink.
  const fromMain = (signal: () => void) => () => void (replicationSource(o.current()) === "main" && signal());
  return new HubStateReplication({
    net: o.net,
    source: copySource(o),
    hub: o.hub,
    periodMs: o.periodMs,
    refusals: o.refusals,
    mark: o.mark,
    signals: { synced: fromMain(o.mainSynced), broken: fromMain(o.mainBroken) },
    timers: o.timers,
  });
}
