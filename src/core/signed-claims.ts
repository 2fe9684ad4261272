/**
 * What a heartbeat may claim about a server, and how a receiver checks it
 * (docs/design.md §Epochs and certificates, §Heartbeats and freshness).
 *
 * - **Epoch certificates.** A server that takes an epoch signs "epoch e,
 *   role, machine id" with its machine key, once. Heartbeats carry the
 *   certificate of the epoch they name (and of the active epoch, when that
 *   differs); clients relay it, never a bare number. An epoch is believed only
 *   with a valid certificate from the server that owns it (odd: the main,
 *   even: the backup, as this machine knows them); anything else reads as 0.
 * - **Alive tokens.** Each server signs, once per heartbeat period, "I am
 *   alive: role, id, boot, my clock t". Clients relay the latest token of each
 *   server. A client's "I heard the main x ms ago" counts as a witness only
 *   with such a token, aged by the receiver's own view of the signer's clock:
 *   the smallest (receipt time − t) seen in the signer's heartbeats to this
 *   machine (never less than the true offset, so ages never come out older
 *   than the truth and a recorded token can only look as old as it is). A
 *   boot the receiver never heard directly has no view: its tokens prove nothing.
 *
 * Signing and verifying come in as a ClaimSigner (Ed25519 in production:
 * net/heartbeat-keys.ts; a cheap stand-in in the simulator). Verifications
 * are cached by signature and budgeted, so a flood of made-up signatures
 * costs a bounded amount of CPU. Pure: time comes in as an argument.
 */
import { epochOwner } from "./failover/epoch.ts";
import type { ServerRole } from "./failover/types.ts";
import type { KnownServers } from "./heartbeat-trust.ts";

/** A server's signature over `epochMessage(e, role, id)`; role and id follow from e and the known servers. */
export type EpochCert = { readonly e: number; readonly s: string };
/** A server's signature over `aliveMessage(role, id, b, t)`: it was alive at its own clock t in boot b. */
export type AliveToken = { readonly b: string; readonly t: number; readonly s: string };

/** Signs with this machine's key; verifies a signature by machine `id` (false when its key is unknown here). */
export interface ClaimSigner {
  sign(message: string): string;
  verify(id: string, message: string, signature: string): boolean;
  /**
   * A token over `aliveMessage(claim.role, claim.id, claim.boot, t)` signed ahead of time off
   * the event loop, for the newest t ≤ now it holds, or null: the caller then signs one itself.
   * Only ever one signed for this very claim (epoch and period included); the caller still checks
   * that it is fresh and not ahead of now (core/signed-beats.ts).
   */
  signedAhead?(claim: AliveClaim, now: number): AliveToken | null;
  /** The token already signed ahead for the grid period holding `at`, or null; asks for nothing (heartbeats built ahead, core/signed-beats.ts). */
  readyAhead?(claim: AliveClaim, at: number): AliveToken | null;
}

/** What a server's alive tokens are signed for; a change of any part drops what was signed ahead for the old. */
export type AliveClaim = { readonly role: ServerRole; readonly id: string; readonly boot: string; readonly epoch: number; readonly periodMs: number };

export function epochMessage(epoch: number, role: ServerRole, id: string): string {
  return `understudy/v1/epoch ${epoch} ${role} ${id}`;
}

export function aliveMessage(role: ServerRole, id: string, boot: string, t: number): string {
  return `understudy/v1/alive ${role} ${id} ${boot} ${t}`;
}

/**
 * Checks of signatures not seen before, per sender and per heartbeat period: an honest client
 * relays one new token of each server a period (and a certificate now and then); the first
 * to relay it pays the check, the others hit the cache. In all, a few senders' worth.
 */
export const VERIFY_BUDGET_PER_SENDER_PERIOD = 3;
export const VERIFY_BUDGET_PER_PERIOD = 12;
/** Signatures remembered as valid (each checked once). */
const MAX_CACHED = 512;
/** Boots of each server whose clock view is kept. */
const MAX_VIEWS_PER_SERVER = 4;
/**
 * A view of a signer's clock takes a direct sample as the new offset after this long, so
 * clock drift between machines never builds up (50 ppm over 10 s is half a millisecond).
 */
export const VIEW_REFRESH_MS = 10_000;

type View = { readonly boot: string; offset: number; setAt: number };

/** What the claims of one heartbeat turn into: the numbers believed, and what could not be backed. */
export type JudgedClaims = {
  /** The certified epoch (0: none). */
  readonly epoch: number;
  /** The certified active epoch, or null. */
  readonly activeEpoch: number | null;
  /** Clients: how long ago the main's token proves the client heard it (null: no proof). */
  readonly witnessMsAgo: number | null;
  /** What the sender claimed without backing, for the log; null when everything was backed. */
  readonly unbacked: string | null;
  /** The certificates that proved valid (to keep and relay). */
  readonly certs: readonly EpochCert[];
};

/** The claims a heartbeat makes, as on the wire (net/heartbeat.ts). */
export type Claims = {
  readonly role: "main" | "backup" | "client";
  readonly state: string;
  readonly epoch: number;
  readonly activeEpoch: number | null;
  readonly msSinceHeardMain: number | null;
  readonly epochCert?: EpochCert | null;
  readonly activeCert?: EpochCert | null;
  readonly mainToken?: AliveToken | null;
  readonly backupToken?: AliveToken | null;
};

/** Checks certificates and tokens for one machine; keeps its caches and its views of the servers' clocks. */
export class ClaimJudge {
  readonly #signer: ClaimSigner;
  readonly #valid = new Map<string, string>();
  readonly #views: Record<ServerRole, View[]> = { main: [], backup: [] };
  readonly #periodMs: number;
  #budget = { startedAt: -Infinity, used: 0, bySender: new Map<string, number>() };

  constructor(signer: ClaimSigner, heartbeatMs: number) {
    this.#signer = signer;
    this.#periodMs = heartbeatMs;
  }

  /**
   * A token that came sealed from the server itself (a fresh heartbeat under the pair key):
   * a sample of its clock, and a signature already known to be its own.
   */
  sampleDirect(role: ServerRole, id: string, token: AliveToken, now: number): void {
    this.#known(aliveMessage(role, id, token.b, token.t), token.s);
    this.#sample(role, token, now, true);
  }

  /**
   * What to believe of `claims`, sent by machine `sender`. `direct`: sealed by a server this
   * machine knows, about itself: its checks are never refused for the budget, so a flood of
   * made-up signatures from others cannot hold up fencing between the servers.
   */
  judge(sender: string, claims: Claims, known: KnownServers, now: number, direct = false): JudgedClaims {
    const problems: string[] = [];
    const valid: EpochCert[] = [];
    const certified = (cert: EpochCert | null | undefined): number | null => {
      if (!cert) return null;
      const role = epochOwner(cert.e);
      const id = role === null ? null : known[role];
      if (role === null || id === null) return null;
      // A server's own certificate on its own sealed heartbeat: the pair key already proves who claims the epoch,
      // so no check waits on the takeover's path (as a direct token, sampleDirect); whoever it is relayed to checks it.
      const check = direct && id === sender ? this.#known(epochMessage(cert.e, role, id), cert.s) : this.#checks(sender, id, epochMessage(cert.e, role, id), cert.s, now, direct);
      if (check === "valid") {
        valid.push(cert);
        return cert.e;
      }
      if (check === "invalid") problems.push(`a certificate for epoch ${cert.e} that ${role === "main" ? "the main" : "the backup"} did not sign`);
      return null;
    };
    const fromEpochCert = certified(claims.epochCert);
    const fromActiveCert = certified(claims.activeCert);
    const certs = [fromEpochCert, fromActiveCert].filter((e): e is number => e !== null);
    const epoch = certs.includes(claims.epoch) ? claims.epoch : Math.max(0, ...certs.filter((e) => e <= claims.epoch));
    if (claims.epoch > epoch) problems.push(`epoch ${claims.epoch} without a certificate`);
    // Whose term the active epoch names: a server's own; for a client, the server it follows.
    const owner: ServerRole | null = claims.role !== "client" ? claims.role : claims.state === "follow-main" ? "main" : claims.state === "follow-backup" ? "backup" : null;
    const a = claims.activeEpoch;
    const activeBacked = a !== null && owner !== null && certs.includes(a) && epochOwner(a) === owner;
    if (a !== null && !activeBacked) problems.push(`active epoch ${a} without a certificate`);
    const witnessMsAgo = claims.role === "client" ? this.#witness(sender, claims, known, now, problems) : null;
    return { epoch, activeEpoch: activeBacked ? a : null, witnessMsAgo, unbacked: problems.length === 0 ? null : problems.join(", "), certs: valid };
  }

  /** How long ago the main's relayed token proves the client heard the main; null without proof. */
  #witness(sender: string, claims: Claims, known: KnownServers, now: number, problems: string[]): number | null {
    const claimed = claims.msSinceHeardMain;
    const token = claims.mainToken;
    if (claimed === null) return null;
    if (!token || known.main === null) {
      problems.push("that it hears the main, without the main's token");
      return null;
    }
    // A boot never heard directly proves nothing, signed or not: no need to spend a check on it.
    const age = this.ageOf("main", token, now);
    if (age === null) return null;
    const check = this.#checks(sender, known.main, aliveMessage("main", known.main, token.b, token.t), token.s, now);
    if (check !== "valid") {
      if (check === "invalid") problems.push("a token the main did not sign");
      return null;
    }
    this.#sample("main", token, now, false);
    // The token cannot be younger than the client says it heard the main; it may be older by a period or so.
    return Math.max(claimed, age);
  }

  /** The age of a token by this machine's view of the signer's clock; null for a boot never heard directly. */
  ageOf(role: ServerRole, token: AliveToken, now: number): number | null {
    const view = this.#views[role].find((v) => v.boot === token.b);
    return view === undefined ? null : Math.max(0, now - (token.t + view.offset));
  }

  #sample(role: ServerRole, token: AliveToken, now: number, direct: boolean): void {
    const offset = now - token.t;
    const views = this.#views[role];
    const view = views.find((v) => v.boot === token.b);
    if (view === undefined) {
      // Only a heartbeat from the server itself opens a view: a relayed token could be any age.
      if (!direct) return;
      views.push({ boot: token.b, offset, setAt: now });
      views.sort((x, y) => y.setAt - x.setAt);
      views.length = Math.min(views.length, MAX_VIEWS_PER_SERVER);
      return;
    }
    // Every sample is at least the true offset (a token is signed before it arrives): the smallest is best.
    if (offset < view.offset || (direct && now - view.setAt >= VIEW_REFRESH_MS)) {
      view.offset = offset;
      view.setAt = now;
    }
  }

  /** Whether `signature` is machine `id`'s over `message`: cached, or checked within the budget ("busy" past it). */
  #checks(sender: string, id: string, message: string, signature: string, now: number, exempt = false): "valid" | "invalid" | "busy" {
    const known = this.#valid.get(signature);
    if (known !== undefined) return known === message ? "valid" : "invalid";
    if (exempt) return this.#verify(id, message, signature);
    if (now - this.#budget.startedAt >= this.#periodMs) this.#budget = { startedAt: now, used: 0, bySender: new Map() };
    const mine = this.#budget.bySender.get(sender) ?? 0;
    if (this.#budget.used >= VERIFY_BUDGET_PER_PERIOD || mine >= VERIFY_BUDGET_PER_SENDER_PERIOD) return "busy";
    this.#budget.used++;
    this.#budget.bySender.set(sender, mine + 1);
    return this.#verify(id, message, signature);
  }

  #verify(id: string, message: string, signature: string): "valid" | "invalid" {
    return this.#signer.verify(id, message, signature) ? this.#known(message, signature) : "invalid";
  }

  /** Remembers `signature` as its signer's over `message`: checked, or sent sealed by the signer itself. */
  #known(message: string, signature: string): "valid" {
    this.#valid.set(signature, message);
    this.#trim();
    return "valid";
  }

  #trim(): void {
    while (this.#valid.size > MAX_CACHED) this.#valid.delete(this.#valid.keys().next().value!);
  }
}
