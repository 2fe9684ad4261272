/**
 * A SecureChannel is what a finished handshake hands over: one session key
 * per direction, a counter per direction, and native AES-256-GCM on every frame
 * under a key derived from the session key of its direction (aead.ts). It is
 * transport-agnostic (bytes in, bytes out); the WebSocket runner owns the socket.
 *
 *   version (1) | kind=channel (1) | nonce (12) | ciphertext | tag (16)
 *
 * The nonce of frame n is 4 zero bytes + n (8 bytes, big-endian). Session keys
 * are fresh per connection, so a counter never repeats under one key. The
 * transport is ordered (WebSocket over TCP): the receiver expects exactly the
 * next counter and refuses anything else before decrypting, which refuses
 * replays, reordering and dropped frames. A refused frame does not advance the
 * counter; the runner should close the connection on any error from `open`.
 */
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, openAead, sealAead } from "./aead.ts";
import { BulkLane } from "./bulk.ts";
import { deriveChannelKey, readUint64, uint64 } from "./crypto.ts";
import { FrameKind, HEADER_BYTES, WIRE_VERSION, expectFrame } from "./envelope.ts";
import { MalformedFrame, ReplayedFrame } from "./errors.ts";

/** Who is at the other end, as proven by the handshake. */
export type AuthenticatedPeer = {
  /** fingerprint(publicKey): the id permission levels are bound to. */
  readonly machineId: string;
  /** The peer's machine Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Where the peer was reached, for messages and logs ("10.0.0.2:7401"). */
  readonly address: string;
};

export type SessionKeys = { readonly send: Uint8Array; readonly receive: Uint8Array };

const PREFIX_BYTES = HEADER_BYTES + AEAD_NONCE_BYTES;
/** The shortest channel frame: header, nonce and an empty payload's tag. */
export const MIN_CHANNEL_FRAME_BYTES = PREFIX_BYTES + AEAD_TAG_BYTES;
const COUNTER_OFFSET = AEAD_NONCE_BYTES - 8;

/** Header and counter nonce of frame `counter`: the authenticated prefix of a channel frame. */
export function channelPrefix(counter: number): Uint8Array {
  const prefix = new Uint8Array(PREFIX_BYTES);
  prefix[0] = WIRE_VERSION;
  prefix[1] = FrameKind.channel;
  prefix.set(uint64(counter), HEADER_BYTES + COUNTER_OFFSET);
  return prefix;
}

export class SecureChannel {
  readonly peer: AuthenticatedPeer;
  /** AES-256-GCM lane for 1 MiB asset chunks, keyed from this channel's session keys. */
  readonly bulk: BulkLane;
  private readonly sendKey: Uint8Array;
  private readonly receiveKey: Uint8Array;
  private sendCounter = 0;
  private receiveCounter = 0;

  constructor(keys: SessionKeys, peer: AuthenticatedPeer) {
    this.sendKey = deriveChannelKey(keys.send);
    this.receiveKey = deriveChannelKey(keys.receive);
    this.peer = peer;
    this.bulk = new BulkLane(keys.send, keys.receive, peer.address);
  }

  /** Frames sealed so far (sent) and opened so far (received): handy for status pages and tests. */
  get counters(): { sent: number; received: number } {
    return { sent: this.sendCounter, received: this.receiveCounter };
  }

  /** Seals one frame for the peer; frames must be delivered in the order they were sealed. */
  seal(payload: Uint8Array): Uint8Array {
    if (this.sendCounter >= Number.MAX_SAFE_INTEGER) throw new RangeError("This connection has sealed 2^53 frames; reconnect.");
    return sealAead(this.sendKey, channelPrefix(this.sendCounter++), payload);
  }

  /**
   * Opens the next frame from the peer. Throws UnsupportedWireVersion or
   * MalformedFrame (bad header, short), ReplayedFrame (not the next counter),
   * or UnsealFailed (tampered, wrong key).
   */
  open(frame: Uint8Array): Uint8Array {
    const from = this.peer.address;
    expectFrame(frame, FrameKind.channel, MIN_CHANNEL_FRAME_BYTES, from);
    for (let i = HEADER_BYTES; i < HEADER_BYTES + COUNTER_OFFSET; i++) {
      if (frame[i] !== 0) throw new MalformedFrame(`${from} sent a peer frame with a malformed counter.`);
    }
    const counter = readUint64(frame, HEADER_BYTES + COUNTER_OFFSET);
    if (counter !== this.receiveCounter) throw new ReplayedFrame(from, counter, this.receiveCounter);
    const payload = openAead(this.receiveKey, frame, PREFIX_BYTES, from, "A peer frame");
    this.receiveCounter++;
    return payload;
  }
}
