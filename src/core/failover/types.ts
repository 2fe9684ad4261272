/**
 * The vocabulary shared by the three failover state machines: who talks to
 * whom, what a heartbeat says, what may happen (events) and what the runner
 * must do (effects). Everything is plain data so a step can be logged,
 * compared and replayed.
 */
import type { Liveness, Timings } from "../failure-detector.ts";
import type { Lanes } from "./lanes.ts";

export type ServerRole = "main" | "backup";
export type Role = ServerRole | "client";
export type Failback = "auto" | "manual";

/** Where a `send` effect goes. Servers are addressed by role; clients by machine id. */
export type Peer = { readonly role: ServerRole } | { readonly role: "client"; readonly id: string };

export type MainStateName = "active" | "rejoining" | "standby" | "isolated";
export type BackupStateName = "unpaired" | "syncing" | "idle" | "active";
/** A client's `state` on the wire is which server its Data Hub follows. */
export type ClientStateName = "follow-main" | "follow-backup" | "follow-none";

/** A condition the backup reports while it holds back from taking over. */
export type Condition = "main-unreachable-from-backup";

/**
 * What the core puts in a heartbeat. The runner adds the transport fields
 * (id, seq, sentAt, echo, showFileRevision), seals it, and drops replays and
 * out-of-order sequences on receipt before handing the body back to the core.
 */
export interface BeatBody {
  readonly role: Role;
  readonly state: MainStateName | BackupStateName | ClientStateName;
  /** The highest epoch the sender knows. A server has persisted it before sending. */
  readonly epoch: number;
  /** Servers: the epoch they accept Data Hub writes at, null when not active. Clients: the epoch of the server they follow. */
  readonly activeEpoch: number | null;
  /** How long ago the sender last heard the main; null if never or its socket broke since. The main sends 0. */
  readonly msSinceHeardMain: number | null;
  /** The same for the backup (clients use it so the main can judge their word about the backup). */
  readonly msSinceHeardBackup: number | null;
  /** Backup only: why it is idle although the main looks down to it. */
  readonly condition: Condition | null;
  /** Backup only, while `syncing`: 0..1. */
  readonly syncProgress: number | null;
  /** Servers: the machine id of the server they are paired with (confirmed on the main, recorded on the backup); clients null. */
  readonly pairedWith: string | null;
  /** Servers: each replication lane's position (the main's heads, the backup's copy); clients null. */
  readonly lanes: Lanes | null;
  /** Backup only: whether it holds a complete first copy of the Data Hub state (it may serve). */
  readonly hubCopied: boolean | null;
}

/** Events every role accepts. */
export type CommonEvent =
  /** Time passed; the runner calls this every few milliseconds (see index.ts). */
  | { readonly type: "tick" }
  /**
   * A heartbeat arrived (already authenticated and de-duplicated; epochs as certified, core/signed-claims.ts);
   * `id` is the sender's machine id. `witnessMsAgo`: from a client, how long ago the main's own signed token
   * proves it heard the main (null: no proof); left out, the client's word is taken (unit tests of the rules).
   */
  | { readonly type: "heartbeat"; readonly id: string; readonly beat: BeatBody; readonly witnessMsAgo?: number | null }
  /** A socket to that server broke (replication socket, or a client's Data Hub socket). */
  | { readonly type: "linkBroken"; readonly peer: ServerRole };

export type MainEvent =
  | CommonEvent
  /** The Data Hub state changed on the backup is copied in (answer to `startCatchUp`). */
  | { readonly type: "catchUpDone" }
  | { readonly type: "catchUpFailed" }
  /** Someone allowed switching back to the main (main UI, or a level-3 client). */
  | { readonly type: "switchBack" }
  /** The failback setting changed on the main's setup page: applies now (docs/design.md §Failover). */
  | { readonly type: "setFailback"; readonly failback: Failback }
  /** The pairing exchange with this backup completed (the runner persisted it). */
  | { readonly type: "paired"; readonly peerId: string }
  /** The operator removed the backup: it becomes a former partner (former-partners.ts). */
  | { readonly type: "unpaired" }
  /** A removed backup's heartbeat (authentic, fresh; it counts for nothing else): whom it says it is paired with. */
  | { readonly type: "formerPartnerHeard"; readonly id: string; readonly pairedWith: string | null }
  /** This server's own lane heads changed. */
  | { readonly type: "lanes"; readonly lanes: Lanes };

export type BackupEvent =
  | CommonEvent
  /** A main asked to pair and this backup accepted (the runner persisted it); it serves only once the main confirms. */
  | { readonly type: "paired"; readonly peerId: string }
  | { readonly type: "syncProgress"; readonly progress: number }
  /** The first complete copy of the Data Hub state is in (persisted through persistPairing). */
  | { readonly type: "syncDone" }
  | { readonly type: "unpaired" }
  /** This backup's own copy advanced. */
  | { readonly type: "lanes"; readonly lanes: Lanes };

export type ClientEvent =
  | CommonEvent
  /** Which server addresses the client knows (from its setup page or discovery). */
  | { readonly type: "setServers"; readonly main: boolean; readonly backup: boolean };

/**
 * What the runner must do, in order. Order matters: `persistEpoch(n)` is
 * always emitted before any `send` or `startServing` carrying n, so a crash
 * between two effects never leaves an epoch announced but not on disk.
 */
export type Effect =
  /** Write the epoch durably (fsync) before doing the next effect. */
  | { readonly type: "persistEpoch"; readonly epoch: number }
  | { readonly type: "send"; readonly to: Peer; readonly beat: BeatBody }
  /** Server: accept Data Hub writes stamped with this epoch; announce its broadcast key. */
  | { readonly type: "startServing"; readonly epoch: number }
  /** Server: refuse Data Hub writes from now on; close hub sessions so clients move. */
  | { readonly type: "stopServing"; readonly epoch: number }
  /** Main: copy the Data Hub state changed on the backup (before serving, or while serving: main.ts handBack); answer catchUpDone / catchUpFailed. */
  | { readonly type: "startCatchUp"; readonly epoch: number }
  /** Client: connect the hub to this server (re-subscribe, flush queued publishes), or to none. */
  | { readonly type: "follow"; readonly server: ServerRole | null; readonly epoch: number | null }
  /**
   * Main: the paired backup's heartbeats have said for a timeout that it is not paired with this
   * main (it dropped the pairing, e.g. it gave up before the main had recorded its side): run the
   * pairing exchange with it again.
   */
  | { readonly type: "pairAgain"; readonly peerId: string }
  /** Server: write the pairing record (null: forget it) before the next effect. */
  | { readonly type: "persistPairing"; readonly pairing: PairingRecord | null }
  /** Main: write the removed backups it still answers (former-partners.ts) before the next effect. */
  | { readonly type: "persistFormerPartners"; readonly ids: readonly string[] }
  /** Something an operator may want in the log; never needed for correctness. */
  | { readonly type: "log"; readonly level: "info" | "warn"; readonly message: string };

/**
 * What a server persists about its pairing. The main records the backup it
 * paired with; the backup records its main, whether the main confirmed it
 * (its heartbeat named this backup) and whether a first complete copy of the
 * Data Hub state is in: only then may it serve, also after a restart.
 */
export interface PairingRecord {
  readonly peerId: string;
  readonly confirmed: boolean;
  readonly hubCopied: boolean;
}

export interface Step<S> {
  readonly state: S;
  readonly effects: readonly Effect[];
}

/** What the core remembers about hearing one server. */
export interface ServerView {
  readonly live: Liveness;
  /** The last heartbeat body heard from it (this or an earlier incarnation). */
  readonly beat: BeatBody | null;
}

/** What a server remembers of one client's latest heartbeat, in its own clock. */
export interface ClientReport {
  readonly lastAt: number;
  /** When the client last heard the main, estimated as receipt time − msSinceHeardMain (its word: fencing evidence). */
  readonly heardMainAt: number | null;
  /** When the main's signed token proves the client heard it (the witness rule counts only this). */
  readonly witnessedMainAt: number | null;
  readonly heardBackupAt: number | null;
  readonly following: ServerRole | null;
  readonly followingEpoch: number | null;
  readonly epoch: number;
}

export type { Timings };
