/**
 * Where a machine's calls go, decided from its failover state: the Data Hub
 * uplink its local apps use, show-file calls and Asset Hub calls. Pure: the
 * runtime asks after every step and carries the answer out.
 */
import type { Role as ConfigRole } from "./roles.ts";
import { otherActiveEpoch, type NodeState, type Role, type ServerRole } from "./failover/index.ts";

/** The failover role for a configured role ("server" is a main that may get a backup later). */
export function failoverRole(role: ConfigRole): Role | null {
  if (role === "standalone") return null;
  return role === "server" ? "main" : role;
}

/** Whom this machine's local apps reach for the Data Hub: its own hub, a server, or nobody (they queue). */
export type UplinkTarget = { readonly server: ServerRole | "self" | null; readonly epoch: number | null };

export function uplinkTarget(s: NodeState, now: number): UplinkTarget {
  switch (s.role) {
    case "client":
      return { server: s.following, epoch: s.followingEpoch };
    case "main": {
      if (s.phase.kind === "active") return { server: "self", epoch: s.phase.epoch };
      // In standby (failback manual) the main is one more client of the backup that serves. Rejoining, it
      // is about to serve itself: its apps wait for it, since a write handed to the backup now could be
      // acknowledged there after the clients already moved back to the main, and never reach them.
      // Isolated, they wait too.
      const epoch = s.phase.kind === "standby" ? otherActiveEpoch(s, "main", now) : null;
      return epoch === null ? { server: null, epoch: null } : { server: "backup", epoch };
    }
    case "backup":
      if (s.phase.kind === "active") return { server: "self", epoch: s.phase.epoch };
      // Unpaired, it has no main to follow; otherwise its apps use the main's hub.
      return s.phase.kind === "unpaired" ? { server: null, epoch: null } : { server: "main", epoch: null };
  }
}

/**
 * The server a client's node keeps an idle Data Hub connection to, so that following it costs no
 * dial or handshake when it takes over (net/server-link.ts spare): the server it does not follow;
 * while it follows none, the one it did not follow last (after a crash, the one taking over).
 * Servers keep none: their own hub is the other end of every switch they make.
 */
export function spareServer(role: Role, following: ServerRole | "self" | null, lastFollowed: ServerRole | null): ServerRole | null {
  if (role !== "client" || following === "self") return null;
  return (following ?? lastFollowed) === "backup" ? "main" : "backup";
}

/** The machine id a server is paired with (null for clients and unpaired servers). */
export function pairedPeer(s: NodeState | null): string | null {
  return s === null || s.role === "client" ? null : s.peerId;
}

/** Whether machine `id` may use this server's copy lanes (`/replicate`, `/replicate-log`): only the server it is paired with. */
export function copiesWith(s: NodeState | null, id: string): boolean {
  const partner = pairedPeer(s);
  return partner !== null && partner === id;
}

export function sameTarget(a: UplinkTarget | null, b: UplinkTarget): boolean {
  return a !== null && a.server === b.server && a.epoch === b.epoch;
}

/** What this machine does with a show-file call. */
export type FilesRoute = { readonly kind: "serve" } | { readonly kind: "read-only" } | { readonly kind: "forward"; readonly to: ServerRole } | { readonly kind: "no-server" };

/**
 * The active main serves show-file calls; while the backup serves they are
 * refused (read-only, the file belongs to the main); anyone else forwards to
 * the main.
 */
export function filesRoute(s: NodeState | null, now: number, knowsMain: boolean): FilesRoute {
  if (s === null) return { kind: "no-server" };
  const up = uplinkTarget(s, now);
  if (s.role === "main") return up.server === "self" ? { kind: "serve" } : { kind: "read-only" };
  if (s.role === "backup") return up.server === "self" || !knowsMain ? { kind: "read-only" } : { kind: "forward", to: "main" };
  if (up.server === "backup") return { kind: "read-only" };
  return knowsMain ? { kind: "forward", to: "main" } : { kind: "no-server" };
}

/**
 * The one read-only rule for the show file: pushes and pulls wait for the
 * main exactly when show-file calls are routed nowhere but "read-only" (the
 * backup serves, or a main is not yet active again). The page's offer and the
 * routing ask this, so they cannot disagree.
 */
export function showFileReadOnly(s: NodeState | null, now: number, knowsMain: boolean): boolean {
  return filesRoute(s, now, knowsMain).kind === "read-only";
}

/** The servers a machine knows by role, as addresses of any kind. */
export type ServerAddresses<A> = { readonly main: A | null; readonly backup: A | null };

/**
 * Where the failover runner sends heartbeats (docs/design.md §Heartbeats and freshness):
 * a main to the backup it is paired with (never a backup merely
 * named in its setup); a backup to the main its setup names, or, naming none,
 * to the main that paired with it (its address was checked then); a client to both.
 * The backup copies from the same address.
 */
export function heartbeatTargets<A>(role: Role, setup: ServerAddresses<A>, paired: A | null): ServerAddresses<A> {
  if (role === "main") return { main: null, backup: paired };
  if (role === "backup") return { main: setup.main ?? paired, backup: null };
  return setup;
}

/**
 * Who copies whose Data Hub state, and from which server (docs/design.md §Lanes and replication):
 * - a backup, while it is paired and not serving (syncing or idle), from the main;
 * - a main waiting to be switched back (standby, failback manual), from the backup that
 *   serves, for as long as it waits: if the backup then dies, every write it acknowledged
 *   up to the last copy is already on the main, whether or not its publisher lives to resend.
 * Decided from the core's phase, not from the hub's writable flag, so each copy stops the
 * moment the core decides to serve (or to catch up for a switch-back) and starts again the
 * moment it steps down. Both ask since the other side's last `through` (the copy mark).
 */
export function replicationSource(s: NodeState | null): ServerRole | null {
  if (s === null || s.role === "client" || s.peerId === null) return null;
  if (s.role === "main") return s.phase.kind === "standby" ? "backup" : null;
  return s.phase.kind === "syncing" || s.phase.kind === "idle" ? "main" : null;
}

/** What this machine does with an Asset Hub call. */
export type AssetRoute = { readonly mode: "serve" | "read-only"; readonly to: null } | { readonly mode: "forward"; readonly to: ServerRole | null };

/**
 * The active main serves; while the backup serves, its copy answers reads and
 * refuses uploads; clients and an idle backup forward to whichever server is active.
 */
export function assetRoute(s: NodeState | null, now: number): AssetRoute {
  if (s === null) return { mode: "forward", to: null };
  const up = uplinkTarget(s, now);
  if (s.role === "main") return { mode: up.server === "self" ? "serve" : "read-only", to: null };
  if (s.role === "backup") return up.server === "self" ? { mode: "read-only", to: null } : { mode: "forward", to: "main" };
  return { mode: "forward", to: up.server === "backup" ? "backup" : "main" };
}

/** The backup a client's main says it is paired with (docs/design.md §Pairing): where, and which machine it must prove to be. */
export type LearnedBackup<A> = { readonly address: A; readonly machineId: string };

/** The backup a client follows, and the machine id it must prove by handshake (null: whichever machine the setup's address proves). */
export type ClientBackup<A> = { readonly address: A; readonly machineId: string | null };

/**
 * A client's backup: the one its setup names always wins ("Connect to a
 * Backup", needed only to connect while the main is down); naming none, the
 * one its main last said it is paired with; else none.
 */
export function clientBackup<A>(configured: A | null, learned: LearnedBackup<A> | null): ClientBackup<A> | null {
  if (configured !== null) return { address: configured, machineId: null };
  return learned === null ? null : { address: learned.address, machineId: learned.machineId };
}
