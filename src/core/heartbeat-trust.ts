/**
 * Whose heartbeat may count at all, before freshness (freshness.ts) and the
 * failover core see it. Every machine holds the network key, so a heartbeat
 * sealed under it could come from any of them. A heartbeat sealed under a
 * pair key (net/heartbeat-keys.ts) proves which machine sent it. So:
 *
 * - a heartbeat naming a machine this one knows as a server counts only when
 *   sealed under that machine's key, and only in that server's role;
 * - a heartbeat claiming to be a server from any other machine never counts;
 * - a heartbeat naming a machine whose key this one knows (it sealed to us
 *   before) counts only when sealed by it, so nobody else can speak in a
 *   known client's name either;
 * - clients' heartbeats count as before, whatever sealed them (a client's word
 *   about what it hears is not bound to anything: see the README's security
 *   section for what that leaves open), unless they name an epoch beyond
 *   MAX_EPOCH_FROM_CLIENTS: servers learn epochs from clients, and near 2^53
 *   "the next odd" and "the next even" epoch round to the same number.
 *
 * Which machines are the servers comes from signed exchanges only: a server
 * knows its partner from the pairing, a client knows each server from the
 * peer handshake with the address its setup names. Pure: no keys, no I/O.
 */
import type { Role, ServerRole } from "./failover/types.ts";

/** The machine ids this machine knows as the main and the backup (null: none yet). */
export type KnownServers = { readonly main: string | null; readonly backup: string | null };

export const NO_KNOWN_SERVERS: KnownServers = { main: null, backup: null };

/**
 * Far above any real epoch (a takeover adds one or two), far below 2^53 where
 * sums stop being exact: a client naming an epoch beyond it is not believed.
 * A server's own epochs then stay below it plus two per takeover.
 */
export const MAX_EPOCH_FROM_CLIENTS = 2 ** 50;

/** What a heartbeat says about its sender. */
export type BeatClaim = { readonly id: string; readonly role: Role; readonly epoch: number; readonly activeEpoch: number | null };

/**
 * Whether a heartbeat with `claim`, sealed by machine `sealedBy` (null: the
 * network key), may count here. `keyKnown` says whether this machine holds
 * the named machine's key (then that machine seals what it sends here).
 */
export function heartbeatCounts(claim: BeatClaim, sealedBy: string | null, servers: KnownServers, keyKnown: (id: string) => boolean = () => false): boolean {
  if (sealedBy !== null && sealedBy !== claim.id) return false;
  if (sealedBy === null && keyKnown(claim.id)) return false;
  const knownAs: ServerRole | null = claim.id === servers.main ? "main" : claim.id === servers.backup ? "backup" : null;
  if (knownAs !== null) return sealedBy === claim.id && claim.role === knownAs;
  return claim.role === "client" && claim.epoch <= MAX_EPOCH_FROM_CLIENTS && (claim.activeEpoch ?? 0) <= MAX_EPOCH_FROM_CLIENTS;
}

/** The servers a server knows: itself, and the partner its pairing names. */
export function serversKnownTo(self: { readonly role: ServerRole; readonly id: string }, partner: string | null): KnownServers {
  return self.role === "main" ? { main: self.id, backup: partner } : { main: partner, backup: self.id };
}
