/**
 * What each failover role runs (docs/design.md §Roles and licenses): one
 * table, so "what does a backup do that a client does not" is read here, not
 * pieced together from conditions across the runtime.
 */
import type { Role } from "../core/failover/index.ts";

export type RolePlan = {
  /** Holds the Data Hub, the show file and the asset cache, and serves `/hub` and `/replicate`. */
  readonly holdsData: boolean;
  /** Feeds its backup the show-file and asset lanes (`/replicate-log`). */
  readonly feedsBackup: boolean;
  /** Copies the other server's Data Hub state while the core says so (core/routing.ts replicationSource): a backup following the main, a main waiting to be switched back. */
  readonly copiesHubState: boolean;
  /** Copies the main's show-file log while it follows it (machine/server-copy.ts). */
  readonly copiesMainLog: boolean;
  /** Keeps the pairing its setup asks for (machine/pairing-keeper.ts). */
  readonly keepsPairing: boolean;
  /** Answers the pairing exchange (`/pair`). */
  readonly answersPairing: boolean;
  /** Checks the main's network key while it hears no server, so a mismatch is shown, not silent. */
  readonly probesKeys: boolean;
  /** Learns which machines its servers are from a signed handshake (machine/server-identities.ts). */
  readonly identifiesServers: boolean;
  /** Asks the main for its permission level (the main decides levels). */
  readonly refreshesLevel: boolean;
  /** Switches the render engines' router while it serves (machine/engine-watch.ts). */
  readonly watchesEngines: boolean;
};

export const ROLE_PLANS: Readonly<Record<Role, RolePlan>> = {
  main: { holdsData: true, feedsBackup: true, copiesHubState: true, copiesMainLog: false, keepsPairing: true, answersPairing: true, probesKeys: false, identifiesServers: false, refreshesLevel: false, watchesEngines: true },
  backup: { holdsData: true, feedsBackup: false, copiesHubState: true, copiesMainLog: true, keepsPairing: false, answersPairing: true, probesKeys: true, identifiesServers: false, refreshesLevel: true, watchesEngines: true },
  client: { holdsData: false, feedsBackup: false, copiesHubState: false, copiesMainLog: false, keepsPairing: false, answersPairing: false, probesKeys: false, identifiesServers: true, refreshesLevel: true, watchesEngines: false },
};
