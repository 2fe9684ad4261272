/**
 * A SecureChannel is what a finished handshake hands over: one session key
 * per direction, a counter per direction, and secretbox on every frame. It is
 * transport-agnostic (bytes in, bytes out); the WebSocket runner owns the socket.
 *
 * The nonce of frame n is 16 zero bytes + n (8 bytes, big-endian). Session keys
 * are fresh per connection, so a counter never repeats under one key. The
 * transport is ordered (WebSocket over TCP): the receiver expects exactly the
 * next counter and refuses anything else before decrypting, which refuses
 * replays, reordering and dropped frames. A refused frame does not advance the
 * counter; the runner should close the connection on any error from `open`.
 */
import { BulkLane } from "./bulk.ts";
import { readUint64, uint64 } from "./crypto.ts";
import { FrameKind, MIN_ENVELOPE_BYTES, NONCE_BYTES, envelopeNonce, expectFrame, openEnvelope, sealEnvelope } from "./envelope.ts";
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

const COUNTER_OFFSET = NONCE_BYTES - 8;

export function counterNonce(counter: number): Uint8Array {
  const nonce = new Uint8Array(NONCE_BYTES);
  nonce.set(uint64(counter), COUNTER_OFFSET);
  return nonce;
}

export class SecureChannel {
  readonly peer: AuthenticatedPeer;
  /** AES-256-GCM lane for 1 MiB asset chunks, keyed from this channel's session keys. */
  readonly bulk: BulkLane;
  private readonly keys: SessionKeys;
  private sendCounter = 0;
  private receiveCounter = 0;

  constructor(keys: SessionKeys, peer: AuthenticatedPeer) {
    this.keys = keys;
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
    return sealEnvelope(this.keys.send, FrameKind.channel, counterNonce(this.sendCounter++), payload);
  }

  /**
   * Opens the next frame from the peer. Throws UnsupportedWireVersion or
   * MalformedFrame (bad header, short), ReplayedFrame (not the next counter),
   * or UnsealFailed (tampered, wrong key).
   */
  open(frame: Uint8Array): Uint8Array {
    const from = this.peer.address;
    expectFrame(frame, FrameKind.channel, MIN_ENVELOPE_BYTES, from);
    const nonce = envelopeNonce(frame);
    for (let i = 0; i < COUNTER_OFFSET; i++) {
      if (nonce[i] !== 0) throw new MalformedFrame(`${from} sent a peer frame with a malformed counter.`);
    }
    const counter = readUint64(nonce, COUNTER_OFFSET);
    if (counter !== this.receiveCounter) throw new ReplayedFrame(from, counter, this.receiveCounter);
    const payload = openEnvelope(this.keys.receive, FrameKind.channel, frame, from);
    this.receiveCounter++;
    return payload;
  }
}
