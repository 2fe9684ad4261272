/**
 * Hub fan-out frames: a message for N subscribers is sealed once under the
 * epoch's broadcast key (crypto.ts `deriveBroadcastKey`) and the same bytes go
 * to every subscriber (docs/design.md §Data Hub).
 *
 * The 24-byte nonce is the epoch (8 bytes) + 16 random bytes: the epoch tells a
 * subscriber which key opens the frame without trying keys, and 128 random bits
 * keep nonces unique under one epoch's key. Ordering and de-duplication of
 * broadcasts are the hub's job (its messages carry (epoch, seq)); this layer
 * gives confidentiality and integrity against machines without the network key.
 *
 * `fanOut` is the one way the hub and a node's app gateway send a frame to many.
 */
import { readUint64, systemRandom, uint64, type BroadcastKey, type RandomBytes } from "./crypto.ts";
import { FrameKind, MIN_ENVELOPE_BYTES, NONCE_BYTES, envelopeNonce, expectFrame, openEnvelope, sealEnvelope } from "./envelope.ts";
import { BroadcastEpochMismatch } from "./errors.ts";
import type { FanoutGroups } from "./fanout-groups.ts";
import type { FrameBatcher } from "./frame-batch.ts";
import { isTopicMember, type SecureConnection } from "./secure-socket.ts";

const RANDOM_NONCE_BYTES = NONCE_BYTES - 8;

export function sealBroadcast(key: BroadcastKey, payload: Uint8Array, random: RandomBytes = systemRandom): Uint8Array {
  const nonce = new Uint8Array(NONCE_BYTES);
  nonce.set(uint64(key.epoch), 0);
  nonce.set(random(RANDOM_NONCE_BYTES), 8);
  return sealEnvelope(key.key, FrameKind.broadcast, nonce, payload);
}

/** The epoch a broadcast frame was sealed for, read before any crypto (throws MalformedFrame / UnsupportedWireVersion). */
export function broadcastEpoch(frame: Uint8Array, from: string): number {
  expectFrame(frame, FrameKind.broadcast, MIN_ENVELOPE_BYTES, from);
  return readUint64(envelopeNonce(frame), 0);
}

/** Opens a broadcast; throws BroadcastEpochMismatch when `key` is for another epoch, UnsealFailed when tampered. */
export function openBroadcast(key: BroadcastKey, frame: Uint8Array, from: string): Uint8Array {
  const epoch = broadcastEpoch(frame, from);
  if (epoch !== key.epoch) throw new BroadcastEpochMismatch(epoch, key.epoch);
  return openEnvelope(key.key, FrameKind.broadcast, frame, from);
}

const encoder = new TextEncoder();

/**
 * One frame (its JSON text) to many connections: to one it goes on that connection's channel (into
 * its batch, when it has one); to many it is sealed once under `key` and handed to Bun once, as a
 * topic publish to exactly those connections (or, when some cannot join topics, written as the same
 * bytes to each), after their batches went out, so each connection keeps its order. Ids without a
 * connection are skipped.
 */
export function fanOut(
  text: string,
  to: readonly string[],
  connections: ReadonlyMap<string, SecureConnection>,
  key: BroadcastKey,
  groups: FanoutGroups,
  batches?: ReadonlyMap<string, FrameBatcher>,
): void {
  const present = to.filter((id) => connections.has(id));
  if (present.length === 0) return;
  if (present.length === 1) {
    const batch = batches?.get(present[0]!);
    if (batch) batch.push(text);
    else connections.get(present[0]!)!.send(encoder.encode(text));
    return;
  }
  for (const id of present) batches?.get(id)?.flush();
  const sealed = sealBroadcast(key, encoder.encode(text));
  const member = (id: string) => {
    const connection = connections.get(id);
    return connection && isTopicMember(connection) ? connection : undefined;
  };
  if (groups.publish(present, member, sealed)) return;
  for (const id of present) connections.get(id)!.sendSealed(sealed);
}
