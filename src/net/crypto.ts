/**
 * Key derivation and small primitives for the wire layer. Every key used on
 * the wire is derived from the network key (or a session key) with its own
 * label, so a key for one purpose never opens another purpose's bytes.
 *
 * Derivation is HMAC-SHA-512 built on nacl.hash (tweetnacl has no HMAC, and
 * a bare hash(key || data) is open to length extension); the first 32 bytes
 * are the key. Randomness is injected (`RandomBytes`) so tests and the
 * simulator are deterministic.
 */
import nacl from "tweetnacl";
import { InvalidInput } from "../core/errors.ts";
import { NETWORK_KEY_BYTES } from "../core/keys.ts";

/** Returns `length` random bytes. Production: `systemRandom`; tests: `seededRandom`. */
export type RandomBytes = (length: number) => Uint8Array;

export const systemRandom: RandomBytes = (length) => nacl.randomBytes(length);

/**
 * A deterministic byte stream (SHA-512 in counter mode over the seed).
 * For tests and the simulator only: anyone who knows the seed knows every byte.
 */
export function seededRandom(seed: string): RandomBytes {
  const seedBytes = new TextEncoder().encode(seed);
  let block = 0;
  let pool: Uint8Array = new Uint8Array(0);
  return (length) => {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (pool.length === 0) pool = nacl.hash(concatBytes(seedBytes, uint64(block++)));
      const take = Math.min(pool.length, length - filled);
      out.set(pool.subarray(0, take), filled);
      pool = pool.subarray(take);
      filled += take;
    }
    return out;
  };
}

/** Labels keep derived keys apart; the version in them lets a later wire format change every key at once. */
export const LABELS = {
  heartbeat: "understudy/v1/heartbeat",
  broadcast: "understudy/v1/broadcast",
  handshakeProof: "understudy/v1/handshake-proof",
  transcript: "understudy/v1/handshake-transcript",
  signInitiator: "understudy/v1/handshake-sign/initiator",
  signResponder: "understudy/v1/handshake-sign/responder",
  initiatorToResponder: "understudy/v1/session/initiator-to-responder",
  responderToInitiator: "understudy/v1/session/responder-to-initiator",
  bulk: "understudy/v1/bulk-aes-256-gcm",
  channel: "understudy/v1/channel-aes-256-gcm",
  broadcastSealer: "understudy/v1/broadcast-aes-256-gcm",
} as const;

export const KEY_BYTES = 32;
const SHA512_BLOCK_BYTES = 128;
const encoder = new TextEncoder();

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** 8 bytes, big-endian. `value` must be a safe non-negative integer. */
export function uint64(value: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

export function readUint64(bytes: Uint8Array, offset: number): number {
  const value = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(offset);
  // Counters and epochs never get near 2^53; a larger value is a forged frame and must not alias a small one.
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(value);
}

/** HMAC-SHA-512 (RFC 2104) over nacl.hash. */
export function hmacSha512(key: Uint8Array, message: Uint8Array): Uint8Array {
  const k = key.length > SHA512_BLOCK_BYTES ? nacl.hash(key) : key;
  const inner = new Uint8Array(SHA512_BLOCK_BYTES).fill(0x36);
  const outer = new Uint8Array(SHA512_BLOCK_BYTES).fill(0x5c);
  for (let i = 0; i < k.length; i++) {
    inner[i]! ^= k[i]!;
    outer[i]! ^= k[i]!;
  }
  return nacl.hash(concatBytes(outer, nacl.hash(concatBytes(inner, message))));
}

/**
 * A 32-byte key for `label` from `secret`. `context` parts are fixed-length
 * for each label (nonces, hashes, epochs), so plain concatenation is unambiguous.
 */
export function deriveKey(secret: Uint8Array, label: string, ...context: Uint8Array[]): Uint8Array {
  return hmacSha512(secret, concatBytes(encoder.encode(label), new Uint8Array([0]), ...context)).slice(0, KEY_BYTES);
}

/** Constant-time comparison, so a MAC check does not leak how many bytes matched. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.length > 0 && nacl.verify(a, b);
}

/** Refuses a key of the wrong length early, with a message that says what it is. */
export function assertNetworkKey(key: Uint8Array): void {
  if (key.length !== NETWORK_KEY_BYTES) {
    throw new InvalidInput(`A network key has ${NETWORK_KEY_BYTES} bytes, this one has ${key.length}.`, "key");
  }
}

/** Key that seals heartbeat datagrams (UDP): every holder of the network key can open them. */
export function deriveHeartbeatKey(networkKey: Uint8Array): Uint8Array {
  assertNetworkKey(networkKey);
  return deriveKey(networkKey, LABELS.heartbeat);
}

/** The key the active hub seals fan-out messages with, once for N subscribers. */
export type BroadcastKey = { readonly epoch: number; readonly key: Uint8Array };

/** Per-epoch broadcast key: a new epoch (a failover) means a new key, and an old server's frames stop opening. */
export function deriveBroadcastKey(networkKey: Uint8Array, epoch: number): BroadcastKey {
  assertNetworkKey(networkKey);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new InvalidInput(`An epoch is a whole number ≥ 0, not ${epoch}.`, "epoch");
  return { epoch, key: deriveKey(networkKey, LABELS.broadcast, uint64(epoch)) };
}

/** The AES-256-GCM key of a bulk lane, derived from the session key of the same direction. */
export function deriveBulkKey(sessionKey: Uint8Array): Uint8Array {
  return deriveKey(sessionKey, LABELS.bulk);
}

/** The AES-256-GCM key of a peer channel's frames in one direction, derived from that direction's session key. */
export function deriveChannelKey(sessionKey: Uint8Array): Uint8Array {
  return deriveKey(sessionKey, LABELS.channel);
}

/**
 * The AES-256-GCM key one sealer (a hub, a node's app gateway) seals broadcasts with: its own random
 * id (16 bytes, in every frame) keeps two sealers of one epoch from ever sharing a key, so each can
 * count its nonces alone.
 */
export function deriveBroadcastSealerKey(key: BroadcastKey, sealerId: Uint8Array): Uint8Array {
  return deriveKey(key.key, LABELS.broadcastSealer, sealerId);
}
