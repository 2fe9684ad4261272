/**
 * Hub fan-out frames: a message for N subscribers is sealed once under the
 * epoch's broadcast key (crypto.ts `deriveBroadcastKey`) and the same bytes go
 * to every subscriber (docs/design.md §Data Hub).
 *
 *   version (1) | kind=broadcast (1) | epoch (8) | sealer (16) | nonce (12) | ciphertext | tag (16)
 *
 * AES-256-GCM (aead.ts), the whole prefix authenticated. The epoch tells a
 * subscriber which broadcast key opens the frame without trying keys. More than
 * one process seals under one epoch's key (the hub, and each node's app gateway
 * for its local apps), so each sealer picks a random 16-byte id and seals under
 * a key derived from the broadcast key and that id; its nonce is then a plain
 * counter (4 zero bytes + 8), never repeated under its key. Ordering and
 * de-duplication of broadcasts are the hub's job (its messages carry (epoch,
 * seq)); this layer gives confidentiality and integrity against machines
 * without the network key.
 *
 * `fanOut` is the one way the hub and a node's app gateway send a frame to many.
 */
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, openAead, sealAead } from "./aead.ts";
import { deriveBroadcastSealerKey, readUint64, systemRandom, uint64, type BroadcastKey, type RandomBytes } from "./crypto.ts";
import { FrameKind, HEADER_BYTES, WIRE_VERSION, expectFrame } from "./envelope.ts";
import { BroadcastEpochMismatch } from "./errors.ts";
import type { BroadcastBatch } from "./broadcast-batch.ts";
import type { FanoutGroups } from "./fanout-groups.ts";
import type { FrameBatcher } from "./frame-batch.ts";
import { isTopicMember, type SecureConnection } from "./secure-socket.ts";

export const SEALER_ID_BYTES = 16;
const SEALER_OFFSET = HEADER_BYTES + 8;
const NONCE_OFFSET = SEALER_OFFSET + SEALER_ID_BYTES;
const PREFIX_BYTES = NONCE_OFFSET + AEAD_NONCE_BYTES;
export const MIN_BROADCAST_FRAME_BYTES = PREFIX_BYTES + AEAD_TAG_BYTES;
/** Sealer keys a receiver keeps derived (one per sealer it hears from); more are derived again. */
const OPEN_KEYS_KEPT = 64;

type Sealer = { readonly prefix: Uint8Array; readonly key: Uint8Array; counter: number };

/** One sealer per broadcast key object: who keeps a key keeps its counter. */
const sealers = new WeakMap<BroadcastKey, Sealer>();
const openKeys = new Map<string, Uint8Array>();

function sealerFor(key: BroadcastKey, random: RandomBytes): Sealer {
  let sealer = sealers.get(key);
  if (!sealer) {
    const id = random(SEALER_ID_BYTES);
    const prefix = new Uint8Array(PREFIX_BYTES);
    prefix[0] = WIRE_VERSION;
    prefix[1] = FrameKind.broadcast;
    prefix.set(uint64(key.epoch), HEADER_BYTES);
    prefix.set(id, SEALER_OFFSET);
    sealer = { prefix, key: deriveBroadcastSealerKey(key, id), counter: 0 };
    sealers.set(key, sealer);
  }
  return sealer;
}

/** `random` picks the sealer's id the first time `key` seals. */
export function sealBroadcast(key: BroadcastKey, payload: Uint8Array, random: RandomBytes = systemRandom): Uint8Array {
  const sealer = sealerFor(key, random);
  if (sealer.counter >= Number.MAX_SAFE_INTEGER) throw new RangeError("This broadcast key has sealed 2^53 frames.");
  const prefix = sealer.prefix.slice();
  prefix.set(uint64(sealer.counter++), PREFIX_BYTES - 8);
  return sealAead(sealer.key, prefix, payload);
}

/** The epoch a broadcast frame was sealed for, read before any crypto (throws MalformedFrame / UnsupportedWireVersion). */
export function broadcastEpoch(frame: Uint8Array, from: string): number {
  expectFrame(frame, FrameKind.broadcast, MIN_BROADCAST_FRAME_BYTES, from);
  return readUint64(frame, HEADER_BYTES);
}

/** Opens a broadcast; throws BroadcastEpochMismatch when `key` is for another epoch, UnsealFailed when tampered. */
export function openBroadcast(key: BroadcastKey, frame: Uint8Array, from: string): Uint8Array {
  const epoch = broadcastEpoch(frame, from);
  if (epoch !== key.epoch) throw new BroadcastEpochMismatch(epoch, key.epoch);
  return openAead(openKeyFor(key, frame.subarray(SEALER_OFFSET, NONCE_OFFSET)), frame, PREFIX_BYTES, from, "A hub broadcast");
}

function openKeyFor(key: BroadcastKey, sealerId: Uint8Array): Uint8Array {
  const name = `${key.epoch}:${Buffer.from(key.key.buffer, key.key.byteOffset, key.key.byteLength).toString("hex")}:${Buffer.from(sealerId.buffer, sealerId.byteOffset, sealerId.byteLength).toString("hex")}`;
  let derived = openKeys.get(name);
  if (!derived) {
    derived = deriveBroadcastSealerKey(key, sealerId.slice());
    if (openKeys.size >= OPEN_KEYS_KEPT) openKeys.delete(openKeys.keys().next().value!);
    openKeys.set(name, derived);
  }
  return derived;
}

const encoder = new TextEncoder();

/**
 * One frame (its JSON text) to many connections: to one it goes on that connection's channel (into
 * its batch, when it has one); to many it is sealed once under `key` and handed to Bun once, as a
 * topic publish to exactly those connections (or, when some cannot join topics, written as the same
 * bytes to each), after their batches went out, so each connection keeps its order. With
 * `broadcasts`, frames for the same connections in one turn of the event loop are sealed together
 * (broadcast-batch.ts). Ids without a connection are skipped.
 */
export function fanOut(
  text: string,
  to: readonly string[],
  connections: ReadonlyMap<string, SecureConnection>,
  key: BroadcastKey,
  groups: FanoutGroups,
  batches?: ReadonlyMap<string, FrameBatcher>,
  broadcasts?: BroadcastBatch,
): void {
  const present = to.filter((id) => connections.has(id));
  if (present.length === 0) return;
  if (present.length === 1) {
    broadcasts?.flushFor(present[0]!);
    const batch = batches?.get(present[0]!);
    if (batch) batch.push(text);
    else connections.get(present[0]!)!.send(encoder.encode(text));
    return;
  }
  if (broadcasts) {
    if (!broadcasts.pendingFor(present, key)) {
      broadcasts.flush();
      for (const id of present) batches?.get(id)?.flush();
    }
    broadcasts.add(text, present, key, (payload, ids) => publishSealed(sealBroadcast(key, payload), ids, connections, groups));
    return;
  }
  for (const id of present) batches?.get(id)?.flush();
  publishSealed(sealBroadcast(key, encoder.encode(text)), present, connections, groups);
}

/** One sealed broadcast to the connections `to` still open: one topic publish, or the same bytes to each. */
function publishSealed(sealed: Uint8Array, to: readonly string[], connections: ReadonlyMap<string, SecureConnection>, groups: FanoutGroups): void {
  const present = to.filter((id) => connections.has(id));
  if (present.length === 0) return;
  const member = (id: string) => {
    const connection = connections.get(id);
    return connection && isTopicMember(connection) ? connection : undefined;
  };
  if (groups.publish(present, member, sealed)) return;
  for (const id of present) connections.get(id)!.sendSealed(sealed);
}
