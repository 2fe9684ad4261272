/**
 * What the failover runner (failover-runner.ts) is given to act on the world:
 * the heartbeat transport, the stores it persists to, the hooks that carry out
 * the core's effects, its log and the simulator's observer. Production and
 * test/sim pass their own. Also what it reports of each peer it hears.
 */
import type { Effect, PairingRecord } from "../core/failover/index.ts";
import type { Verdict } from "../core/freshness.ts";
import type { UplinkTarget } from "../core/routing.ts";
import type { Heartbeat } from "../net/heartbeat.ts";

/** Where a heartbeat goes to or came from. */
export type Endpoint = { readonly host: string; readonly port: number };

/** A heartbeat built ahead (machine/beats-ahead.ts): to go out at `at` or later, never at or after `notAfter` (the runner's clock). */
export type AheadBeat = { readonly heartbeat: Heartbeat; readonly at: number; readonly notAfter: number };

/** Sends heartbeats (the UDP socket seals them, for machine `toId` when it knows its key; the simulator delivers them). Never throws. */
export interface HeartbeatTransport {
  send(heartbeat: Heartbeat, to: Endpoint, toId: string | null): void;
  /**
   * Hands over the next periods' heartbeats to `to`, replacing those handed over for it before: a
   * thread other than the event loop sends each at its time unless replaced first
   * (docs/design.md §Heartbeats and freshness, "Heartbeats that keep time"). Without it, only the event loop sends.
   */
  sendAhead?(beats: readonly AheadBeat[], to: Endpoint, toId: string | null): void;
  /** Drops every heartbeat handed over and not sent yet: what they say is no longer so. */
  dropAhead?(): void;
}

/** The persisted epoch: written durably before it is ever announced. */
export interface EpochStore {
  read(): number;
  write(epoch: number): void;
}

/** The persisted pairing record (servers). */
export interface PairingStore {
  read(): PairingRecord | null;
  write(pairing: PairingRecord | null): void;
}

/** The main's removed backups not yet heard letting go (core/failover/former-partners.ts). */
export interface FormerPartnerStore {
  read(): readonly string[];
  write(ids: readonly string[]): void;
}

export type FailoverHooks = {
  /** Accept Data Hub writes at this epoch. */
  startServing(epoch: number): void;
  /** Refuse Data Hub writes; hub sessions close so clients move. */
  stopServing(epoch: number): void;
  /** Main only: copy the Data Hub state the backup changed, then call `done` (once). */
  catchUp(epoch: number, done: (ok: boolean, why?: string) => void): void;
  /** Where this machine's local apps reach the Data Hub now. */
  uplink(target: UplinkTarget): void;
  /** Main only: run the pairing exchange with its backup again (the backup dropped the pairing). */
  pairAgain?(peerId: string): void;
};

export type RunnerLog = { info(message: string, fields?: Record<string, unknown>): void; warn(message: string, fields?: Record<string, unknown>): void };

/** For the simulator's checker: sees each effect before it runs and each heartbeat's verdict. */
export type RunnerObserver = {
  effect?(effect: Effect): void;
  heartbeat?(heartbeat: Heartbeat, verdict: Verdict | "untrusted"): void;
};

/** `state` is what the peer's last heartbeat said it is (a client: which server it follows). */
export type PeerDelay = {
  id: string;
  name: string;
  role: string;
  state: string;
  address: string;
  delayMs: number | null;
  lastHeardMsAgo: number;
  /** As its last heartbeat said; null when it did not say. */
  localApps: number | null;
  /** Claims it sent that it could not back (core/signed-claims.ts): a key holder speaking beyond what the servers signed. */
  unbackedClaims: number;
  /** A server's paired server, as its last heartbeat said: a main naming none has no backup (core/console-chip.ts). */
  pairedWith: string | null;
  /** Its network-key fingerprint as its last heartbeat said; null when it did not say (an older build). */
  keyFingerprint: string | null;
};

export type PeerRecord = { address: Endpoint; name: string; role: string; state: string; heardAt: number; delayMs: number | null; localApps: number | null; pairedWith: string | null; keyFp: string | null };
