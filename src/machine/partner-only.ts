/**
 * The copy lanes (`/replicate`, `/replicate-log`) serve only the server this one is paired with
 * (docs/design.md §Lanes and replication): any other holder of the network key was taken as the
 * follower, its "applied" acknowledged pushes the backup never had, and a whole-state question
 * from it cost the main's event loop hundreds of milliseconds. Refused before a frame is read.
 */
import { copiesWith } from "../core/routing.ts";
import type { NodeState } from "../core/failover/index.ts";
import type { PeerService } from "../net/peer-net.ts";
import type { Logger } from "../log.ts";

/** Close code for a copy lane asked by a machine other than the paired server (4003: not served to it). */
export const NOT_THE_PARTNER = 4003;
/** How often the log names refused copy-lane callers, at most. */
const SAY_EVERY_MS = 60_000;

export function partnerOnly(service: PeerService, current: () => NodeState | null, log: Logger, now: () => number): PeerService {
  let saidAt = Number.NEGATIVE_INFINITY;
  return {
    path: service.path,
    accept: (connection) => {
      const caller = connection.peer.machineId;
      if (copiesWith(current(), caller)) return service.accept(connection);
      connection.close(NOT_THE_PARTNER, `Only the paired server may use ${service.path} here; machine ${caller} is not it.`);
      if (now() - saidAt >= SAY_EVERY_MS) {
        saidAt = now();
        log.warn("copy lane refused", { path: service.path, machine: caller, address: connection.peer.address });
      }
      return { message: () => {}, close: () => {} };
    },
  };
}
