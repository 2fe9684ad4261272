/**
 * The versioned envelope every sealed byte on the wire travels in
 * (after memberlist's security.go). Heartbeats use nacl.secretbox:
 *
 *   version (1) | kind (1) | nonce (24) | secretbox(payload) (payload + 16)
 *
 * Peer-channel and hub broadcast frames use native AES-256-GCM (aead.ts,
 * channel.ts, broadcast.ts); asset chunks too (bulk.ts).
 *
 * The version byte lets the format evolve; the kind byte says which key opens
 * the frame (peer channel, hub broadcast, heartbeat, …) so one WebSocket can
 * carry several lanes and a frame that arrived in the wrong place is refused
 * with a clear message. Unknown versions, unknown kinds and short frames are
 * refused before any crypto: garbage is cheap to throw away.
 */
import nacl from "tweetnacl";
import { MalformedFrame, UnsealFailed, UnsupportedWireVersion } from "./errors.ts";

export const WIRE_VERSION = 1;

/** What a frame is; the second byte of everything on the wire. */
export const FrameKind = {
  /** Peer channel frame: AES-256-GCM under a key derived from the session key of its direction, counter nonce. */
  channel: 0x06,
  /** Hub fan-out: AES-256-GCM under a key derived from the epoch's broadcast key and the sealer's id, counter nonce. */
  broadcast: 0x07,
  /** Heartbeat datagram: secretbox under the heartbeat key, random nonce. */
  heartbeat: 0x03,
  /** Asset chunk: AES-256-GCM under the bulk key, counter nonce (see bulk.ts). */
  bulk: 0x04,
  /** Heartbeat datagram sealed under the sender's and receiver's pair key (heartbeat-keys.ts), sender's key in the header. */
  peerHeartbeat: 0x05,
  /** The listener's handshake proof, the first frame on a socket: MAC under the network key plus machine signature (handshake.ts). */
  auth: 0x11,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const KIND_NAMES: Record<number, string> = {
  [FrameKind.channel]: "a peer frame",
  [FrameKind.broadcast]: "a hub broadcast",
  [FrameKind.heartbeat]: "a heartbeat",
  [FrameKind.bulk]: "an asset chunk",
  [FrameKind.peerHeartbeat]: "a machine-sealed heartbeat",
  [FrameKind.auth]: "a handshake proof",
};

/** Kinds an older understudy sent (secretbox), named so the refusal says what to do. */
const RETIRED_KINDS: Record<number, string> = {
  0x01: "a peer frame",
  0x02: "a hub broadcast",
};

export const HEADER_BYTES = 2;
export const NONCE_BYTES = nacl.secretbox.nonceLength; // 24
export const BOX_OVERHEAD_BYTES = nacl.secretbox.overheadLength; // 16
/** The shortest sealed envelope: header, nonce and an empty payload's tag. */
export const MIN_ENVELOPE_BYTES = HEADER_BYTES + NONCE_BYTES + BOX_OVERHEAD_BYTES;

export function kindName(kind: number): string {
  return KIND_NAMES[kind] ?? `an unknown frame kind 0x${kind.toString(16).padStart(2, "0")}`;
}

/**
 * Reads the version and kind without touching the rest: lets a runner route a
 * frame to its lane. Throws UnsupportedWireVersion or MalformedFrame.
 */
export function frameKind(bytes: Uint8Array, from: string): FrameKind {
  if (bytes.length < HEADER_BYTES) throw new MalformedFrame(`${from} sent ${bytes.length} byte(s), too short to be an understudy frame.`);
  if (bytes[0] !== WIRE_VERSION) throw new UnsupportedWireVersion(bytes[0]!, WIRE_VERSION, from);
  const kind = bytes[1]!;
  const retired = RETIRED_KINDS[kind];
  if (retired) throw new MalformedFrame(`${from} sent ${retired} sealed the way an older understudy does; update that machine to this version.`);
  if (!(kind in KIND_NAMES)) throw new MalformedFrame(`${from} sent ${kindName(kind)}; this machine does not know it.`);
  return kind as FrameKind;
}

/** Checks version, kind and minimum length; everything a frame must pass before crypto. */
export function expectFrame(bytes: Uint8Array, kind: FrameKind, minLength: number, from: string): void {
  const actual = frameKind(bytes, from);
  if (actual !== kind) throw new MalformedFrame(`${from} sent ${kindName(actual)} where ${kindName(kind)} was expected.`);
  if (bytes.length < minLength) {
    throw new MalformedFrame(`${from} sent ${kindName(kind)} of ${bytes.length} bytes; it needs at least ${minLength}.`);
  }
}

/** Seals `payload` under `key` with the given 24-byte nonce. The caller owns nonce uniqueness per key. */
export function sealEnvelope(key: Uint8Array, kind: FrameKind, nonce: Uint8Array, payload: Uint8Array): Uint8Array {
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`An envelope nonce has ${NONCE_BYTES} bytes, not ${nonce.length}.`);
  const box = nacl.secretbox(payload, nonce, key);
  const out = new Uint8Array(HEADER_BYTES + NONCE_BYTES + box.length);
  out[0] = WIRE_VERSION;
  out[1] = kind;
  out.set(nonce, HEADER_BYTES);
  out.set(box, HEADER_BYTES + NONCE_BYTES);
  return out;
}

/** The nonce of an envelope already checked with `expectFrame` (a view, not a copy). */
export function envelopeNonce(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES);
}

/**
 * Opens an envelope of `kind` under `key`. Throws UnsupportedWireVersion or
 * MalformedFrame (before any crypto) or UnsealFailed.
 */
export function openEnvelope(key: Uint8Array, kind: FrameKind, bytes: Uint8Array, from: string): Uint8Array {
  expectFrame(bytes, kind, MIN_ENVELOPE_BYTES, from);
  const payload = nacl.secretbox.open(bytes.subarray(HEADER_BYTES + NONCE_BYTES), envelopeNonce(bytes), key);
  if (payload === null) throw new UnsealFailed(from, capitalize(kindName(kind)));
  return payload;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
