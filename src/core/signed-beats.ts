/**
 * One machine's side of signed heartbeats (core/signed-claims.ts): the
 * certificates it holds and sends, its own alive token (servers sign one per
 * heartbeat period, ≈ 10 signatures a second, or take one the signer signed
 * ahead off the event loop), the servers' latest tokens it
 * relays (clients), and its judgement of every heartbeat it receives: epochs
 * believed only as certified, a witness only with a fresh main token, and the
 * machines that claimed more than they could back, counted by machine id.
 * Pure: the signer comes in, time comes in as an argument.
 */
import { claimEpoch, epochOwner } from "./failover/epoch.ts";
import type { Role, ServerRole } from "./failover/types.ts";
import type { KnownServers } from "./heartbeat-trust.ts";
import { ClaimantTally } from "./claimant-tally.ts";
import { aliveMessage, ClaimJudge, epochMessage, type AliveClaim, type AliveToken, type ClaimSigner, type Claims, type EpochCert } from "./signed-claims.ts";

/** Certificates kept: the highest few epochs are all a heartbeat ever names. */
const MAX_CERTS = 8;

/** What a heartbeat carries besides the core's body (net/heartbeat.ts). */
export type SignedFields = {
  epochCert: EpochCert | null;
  activeCert?: EpochCert | null;
  mainToken: AliveToken | null;
  backupToken: AliveToken | null;
};

export type Judged = {
  readonly epoch: number;
  readonly activeEpoch: number | null;
  readonly witnessMsAgo: number | null;
  /** A log line to write now about a claimant (once a minute per machine), or null. */
  readonly log: string | null;
};

export class SignedBeats {
  readonly #role: Role;
  readonly #id: string;
  readonly #boot: string;
  readonly #signer: ClaimSigner;
  readonly #periodMs: number;
  readonly #judge: ClaimJudge;
  readonly #certs = new Map<number, EpochCert>();
  readonly #tokens: Record<ServerRole, AliveToken | null> = { main: null, backup: null };
  /** The claim this server's own token was taken for. */
  #claim: AliveClaim | null = null;
  readonly claimants = new ClaimantTally();

  constructor(o: { role: Role; id: string; boot: string; signer: ClaimSigner; heartbeatMs: number }) {
    this.#role = o.role;
    this.#id = o.id;
    this.#boot = o.boot;
    this.#signer = o.signer;
    this.#periodMs = o.heartbeatMs;
    this.#judge = new ClaimJudge(o.signer, o.heartbeatMs);
  }

  /**
   * This server now holds `epoch` (persisted): when it is its own and no certificate is held
   * for it, it signs one. Once per epoch; a restart signs its persisted own epoch again. When it
   * is the other server's, the epoch this one would claim next is signed now, so that a takeover
   * sends its first heartbeat without a signature on the event loop (tweetnacl: 3–7 ms here).
   * Nothing signed ahead goes out before this server claims that epoch (outgoing names only the
   * epochs a heartbeat names).
   */
  holds(epoch: number): void {
    const role = this.#role;
    if (role === "client") return;
    const own = epochOwner(epoch) === role ? epoch : claimEpoch(role, epoch);
    if (this.#certs.has(own)) return;
    this.#keep({ e: own, s: this.#signer.sign(epochMessage(own, role, this.#id)) });
  }

  /** The fields to add to a heartbeat naming `epoch` and `activeEpoch`. */
  outgoing(epoch: number, activeEpoch: number | null, now: number): SignedFields {
    const role = this.#role;
    if (role !== "client") this.#refreshToken(role, epoch, now);
    // A server sends its own token; a client relays both servers' latest.
    const relay = (r: ServerRole) => (role === "client" || role === r ? this.#tokens[r] : null);
    const fields: SignedFields = { epochCert: this.#certs.get(epoch) ?? null, mainToken: relay("main"), backupToken: relay("backup") };
    if (activeEpoch !== null && activeEpoch !== epoch) fields.activeCert = this.#certs.get(activeEpoch) ?? null;
    return fields;
  }

  /**
   * The fields for a heartbeat built now to go out at `at` or a little later (docs/design.md
   * §Heartbeats and freshness, "Heartbeats that keep time"), with the moment it must have gone out by; null when this server
   * holds no token signed ahead for that period (then nothing is built ahead: never a signature
   * on the event loop for it). Sent within [at, until), a token proves its signer alive at its t,
   * as one taken at the moment does. Call right after `outgoing` for the same epoch. A client
   * relays the tokens it holds now, as its regular heartbeat does.
   */
  ahead(epoch: number, activeEpoch: number | null, at: number): { fields: SignedFields; at: number; until: number } | null {
    const role = this.#role;
    const fields = (own: AliveToken | null): SignedFields => ({
      epochCert: this.#certs.get(epoch) ?? null,
      mainToken: role === "client" ? this.#tokens.main : role === "main" ? own : null,
      backupToken: role === "client" ? this.#tokens.backup : role === "backup" ? own : null,
      ...(activeEpoch !== null && activeEpoch !== epoch ? { activeCert: this.#certs.get(activeEpoch) ?? null } : {}),
    });
    if (role === "client") return { fields: fields(null), at, until: Infinity };
    const claim = this.#claim;
    const ready = this.#signer.readyAhead;
    if (claim === null || claim.epoch !== epoch || ready === undefined) return null;
    const period = this.#periodMs;
    let token = ready.call(this.#signer, claim, at);
    // Under a quarter of its period left: the next period's token, a little later, leaves the sender room.
    if (token !== null && token.t + period - at < period / 4) {
      const next = ready.call(this.#signer, claim, token.t + period);
      if (next !== null) [token, at] = [next, next.t];
    }
    if (token === null || token.b !== this.#boot || token.t > at || at - token.t >= period) return null;
    return { fields: fields(token), at, until: token.t + period };
  }

  /**
   * Judges a heartbeat that counted (trusted sender, fresh echo), sealed by machine `sealedBy`
   * (null: the network key). From a server this machine knows, sealed by it, it is direct: its
   * token samples that server's clock.
   */
  incoming(sender: string, claims: Claims, known: KnownServers, sealedBy: string | null, now: number): Judged {
    const direct = claims.role !== "client" && sealedBy === sender && known[claims.role] === sender;
    if (direct) {
      const token = claims.role === "main" ? claims.mainToken : claims.backupToken;
      if (token) {
        this.#judge.sampleDirect(claims.role, sender, token, now);
        this.#tokens[claims.role] = token;
      }
    }
    const judged = this.#judge.judge(sender, claims, known, now, direct);
    for (const cert of judged.certs) this.#keep(cert);
    // The servers are trusted by pairing or handshake; a restarted one may name an epoch whose certificate it lost.
    const log = judged.unbacked === null || direct ? null : this.claimants.record(sender, judged.unbacked, now);
    return { epoch: judged.epoch, activeEpoch: judged.activeEpoch, witnessMsAgo: judged.witnessMsAgo, log };
  }

  #refreshToken(role: ServerRole, epoch: number, now: number): void {
    if (this.#claim?.epoch !== epoch) {
      // A new claim: the presigner drops what it signed ahead for the old one. The token held stays: its message
      // names role, id, boot and t but no epoch, so it is as true under the new epoch, and a takeover's first
      // heartbeat then needs no signature on the event loop.
      this.#claim = { role, id: this.#id, boot: this.#boot, epoch, periodMs: this.#periodMs };
    }
    const held = this.#tokens[role];
    // Never a stale token, nor one for a time still ahead: a token signed ahead proves the signer alive at t only once it is sent.
    const fresh = (token: AliveToken | null): token is AliveToken => token !== null && token.b === this.#boot && now - token.t < this.#periodMs && now >= token.t;
    const ahead = this.#signer.signedAhead?.(this.#claim, now) ?? null;
    if (fresh(ahead) && !(fresh(held) && held.t >= ahead.t)) this.#tokens[role] = ahead;
    else if (!fresh(held)) this.#tokens[role] = { b: this.#boot, t: now, s: this.#signer.sign(aliveMessage(role, this.#id, this.#boot, now)) };
  }

  #keep(cert: EpochCert): void {
    if (this.#certs.get(cert.e)?.s === cert.s) return;
    this.#certs.set(cert.e, cert);
    if (this.#certs.size <= MAX_CERTS) return;
    this.#certs.delete(Math.min(...this.#certs.keys()));
  }
}
