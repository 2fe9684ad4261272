/**
 * Pair keys that bind a heartbeat to its sender's machine key, so another
 * holder of the network key cannot speak for a server (docs/design.md §Security).
 * Any two machines share one: X25519 of their Ed25519 machine keys (converted
 * as libsodium's crypto_sign_ed25519_{sk,pk}_to_curve25519 do), put through
 * deriveKey. That is one scalar multiplication per peer (≈ 1 ms in tweetnacl
 * here), cached; each heartbeat then costs one secretbox, as before. Signing
 * every heartbeat instead costs ≈ 2 ms to sign and ≈ 4 ms to verify
 * (`bun run bench crypto`): too slow at 10 Hz × every client.
 *
 * Keys from a signed exchange (the pairing, the peer handshake) are pinned. A
 * key read from a datagram's header costs a derivation before anything is
 * known about it, so those are budgeted: a flood of made-up keys buys at most
 * NEW_SENDERS_PER_SECOND derivations a second, and then waits.
 */
import nacl from "tweetnacl";
import type { Clock } from "../core/clock.ts";
import { fingerprint } from "../core/keys.ts";
import type { AliveClaim, AliveToken, ClaimSigner } from "../core/signed-claims.ts";
import { AlivePresigner } from "./alive-presigner.ts";
import { bytesEqual, deriveKey } from "./crypto.ts";

/** Machines whose pair key is kept; the oldest unpinned one is forgotten first. A network has far fewer. */
export const MAX_PEER_KEYS = 4096;
/** New senders' keys derived at most per second from datagram headers (each ≈ 1 ms of CPU). */
export const NEW_SENDERS_PER_SECOND = 50;

const LABEL = "understudy/v1/peer-heartbeat";
const P = 2n ** 255n - 19n;

type Entry = { readonly publicKey: Uint8Array; readonly key: Uint8Array; readonly pinned: boolean };

export class HeartbeatKeys implements ClaimSigner {
  readonly id: string;
  readonly publicKey: Uint8Array;
  private readonly secretKey: Uint8Array;
  private readonly curveSecret: Uint8Array;
  private readonly peers = new Map<string, Entry>();
  private budget = { startedAt: -Infinity, used: 0 };
  private presigner: AlivePresigner | null = null;

  constructor(
    machine: { readonly publicKey: Uint8Array; readonly secretKey: Uint8Array },
    private readonly clock: Clock,
  ) {
    this.publicKey = machine.publicKey;
    this.id = fingerprint(machine.publicKey);
    this.secretKey = machine.secretKey;
    this.curveSecret = curveSecretOf(machine.secretKey);
  }

  /** A peer's machine key learned from a signed exchange: kept for good, and the key its heartbeats must be sealed under. */
  pin(publicKey: Uint8Array): void {
    const id = fingerprint(publicKey);
    const known = this.peers.get(id);
    if (known?.pinned && bytesEqual(known.publicKey, publicKey)) return;
    const key = this.derive(publicKey);
    if (key) this.store(id, { publicKey, key, pinned: true });
  }

  /** An Ed25519 signature by this machine (core/signed-claims.ts: epoch certificates, alive tokens), base64. ≈ 1.5 ms idle, ≈ 7 ms under load. */
  sign(message: string): string {
    return Buffer.from(nacl.sign.detached(new TextEncoder().encode(message), this.secretKey)).toString("base64");
  }

  /**
   * An alive token signed ahead on the signing thread (net/alive-presigner.ts), or null: then
   * core/signed-beats.ts signs with `sign` here, as before. Only ever for this machine's own id.
   */
  signedAhead(claim: AliveClaim, now: number): AliveToken | null {
    if (claim.id !== this.id) return null;
    this.presigner ??= new AlivePresigner(this.secretKey);
    return this.presigner.take(claim, now);
  }

  /** A token already signed ahead for the period holding `at` (heartbeats built ahead), or null; never signs here. */
  readyAhead(claim: AliveClaim, at: number): AliveToken | null {
    return claim.id === this.id ? (this.presigner?.ready(claim, at) ?? null) : null;
  }

  /**
   * Whether `signature` is machine `id`'s over `message`: this machine's own, or one whose key
   * came from a signed exchange (pinned). A key only read from a datagram header proves nothing.
   */
  verify(id: string, message: string, signature: string): boolean {
    const key = id === this.id ? this.publicKey : this.peers.get(id)?.pinned ? this.peers.get(id)!.publicKey : null;
    if (key === null) return false;
    const sig = Buffer.from(signature, "base64");
    if (sig.length !== nacl.sign.signatureLength) return false;
    return nacl.sign.detached.verify(new TextEncoder().encode(message), sig, key);
  }

  /** The key to seal a heartbeat for machine `id`, or null when its machine key is not known here. */
  forReceiver(id: string | null): Uint8Array | null {
    return id === null ? null : (this.peers.get(id)?.key ?? null);
  }

  /**
   * The key that opens a datagram whose header names `publicKey` as its sender,
   * and the sender's machine id: cached, or derived within the budget; null when
   * over budget or degenerate. A key whose fingerprint is already held by another
   * key is refused.
   */
  forSender(publicKey: Uint8Array): { key: Uint8Array; id: string } | null {
    const id = fingerprint(publicKey);
    const known = this.peers.get(id);
    if (known) {
      if (!bytesEqual(known.publicKey, publicKey)) return null;
      // Most recently heard last: a flood of made-up keys evicts itself, not the machines heard every heartbeat.
      this.peers.delete(id);
      this.peers.set(id, known);
      return { key: known.key, id };
    }
    const now = this.clock.now();
    if (now - this.budget.startedAt >= 1000) this.budget = { startedAt: now, used: 0 };
    if (this.budget.used >= NEW_SENDERS_PER_SECOND) return null;
    this.budget.used++;
    const key = this.derive(publicKey);
    if (key === null) return null;
    this.store(id, { publicKey: publicKey.slice(), key, pinned: false });
    return { key, id };
  }

  /**
   * A machine key proven in a handshake on the peer port (so by a holder of the network key): its
   * heartbeats then open without this second's budget for new senders, which a stranger without the
   * key could use up with made-up keys, so that after a restart no client was heard. Not pinned: it
   * is evicted like any heard key, and a key whose fingerprint another key holds is left alone.
   */
  learn(publicKey: Uint8Array): void {
    const id = fingerprint(publicKey);
    if (this.peers.has(id)) return;
    const key = this.derive(publicKey);
    if (key !== null) this.store(id, { publicKey: publicKey.slice(), key, pinned: false });
  }

  private derive(peerPublicKey: Uint8Array): Uint8Array | null {
    const peerCurve = curvePublicOf(peerPublicKey);
    if (peerCurve === null) return null;
    const shared = nacl.scalarMult(this.curveSecret, peerCurve);
    // A low-order point gives an all-zero secret that anyone knows.
    if (shared.every((b) => b === 0)) return null;
    const [low, high] = Buffer.compare(this.publicKey, peerPublicKey) <= 0 ? [this.publicKey, peerPublicKey] : [peerPublicKey, this.publicKey];
    return deriveKey(shared, LABEL, low, high);
  }

  private store(id: string, entry: Entry): void {
    this.peers.delete(id);
    if (this.peers.size >= MAX_PEER_KEYS) {
      for (const [old, e] of this.peers) {
        if (!e.pinned) {
          this.peers.delete(old);
          break;
        }
      }
    }
    this.peers.set(id, entry);
  }
}

/** The X25519 secret of an Ed25519 secret key (seed ‖ public key): SHA-512 of the seed, clamped. */
export function curveSecretOf(ed25519SecretKey: Uint8Array): Uint8Array {
  const h = nacl.hash(ed25519SecretKey.subarray(0, 32)).slice(0, 32);
  h[0]! &= 248;
  h[31]! &= 127;
  h[31]! |= 64;
  return h;
}

/** The X25519 public key of an Ed25519 public key: u = (1 + y) / (1 − y) mod p. Null for a key that is not 32 bytes or maps nowhere. */
export function curvePublicOf(ed25519PublicKey: Uint8Array): Uint8Array | null {
  if (ed25519PublicKey.length !== 32) return null;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? ed25519PublicKey[i]! & 0x7f : ed25519PublicKey[i]!);
  if (y >= P) return null;
  const denominator = (1n - y + P) % P;
  if (denominator === 0n) return null;
  let u = ((1n + y) * power(denominator, P - 2n)) % P;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(u & 0xffn);
    u >>= 8n;
  }
  return out;
}

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = base % P;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}
