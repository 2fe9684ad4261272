/**
 * The bulk lane: asset chunks (1 MiB) sealed with the runtime's native
 * AES-256-GCM, because tweetnacl's secretbox manages ≈ 126 MB/s on 1 MiB
 * chunks and native AES-GCM several GB/s (FACTS.md). Keys come from the
 * connection's session keys (one per direction), so a bulk lane lives and dies
 * with its SecureChannel.
 *
 *   version (1) | kind=bulk (1) | nonce (12) | ciphertext | tag (16)
 *
 * The nonce is a per-direction counter (4 zero bytes + 8-byte counter): the
 * transport is ordered, so the receiver expects exactly the next counter and
 * refuses replays and reordering before decrypting. The header and nonce are
 * authenticated as additional data.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { deriveBulkKey, readUint64, uint64 } from "./crypto.ts";
import { FrameKind, HEADER_BYTES, WIRE_VERSION, expectFrame } from "./envelope.ts";
import { MalformedFrame, ReplayedFrame, UnsealFailed } from "./errors.ts";

const CIPHER = "aes-256-gcm";
export const BULK_NONCE_BYTES = 12;
export const BULK_TAG_BYTES = 16;
const PREFIX_BYTES = HEADER_BYTES + BULK_NONCE_BYTES;
export const MIN_BULK_FRAME_BYTES = PREFIX_BYTES + BULK_TAG_BYTES;
const NO_BYTES = new Uint8Array(0);

export class BulkLane {
  private readonly sendKey: Uint8Array;
  private readonly receiveKey: Uint8Array;
  private readonly from: string;
  private sendCounter = 0;
  private receiveCounter = 0;

  /** `sendSessionKey`/`receiveSessionKey` are the channel's session keys; the AES keys are derived from them. */
  constructor(sendSessionKey: Uint8Array, receiveSessionKey: Uint8Array, from: string) {
    this.sendKey = deriveBulkKey(sendSessionKey);
    this.receiveKey = deriveBulkKey(receiveSessionKey);
    this.from = from;
  }

  /**
   * Seals `head` then `body` as one plaintext, without joining them first (a small header before
   * a megabyte would cost a megabyte's copy); frames must be delivered in the order they were sealed.
   */
  seal(body: Uint8Array, head: Uint8Array = NO_BYTES): Uint8Array {
    const prefix = new Uint8Array(PREFIX_BYTES);
    prefix[0] = WIRE_VERSION;
    prefix[1] = FrameKind.bulk;
    prefix.set(uint64(this.sendCounter++), HEADER_BYTES + 4);
    const cipher = createCipheriv(CIPHER, this.sendKey, prefix.subarray(HEADER_BYTES));
    cipher.setAAD(prefix);
    const pieces = [head.length > 0 ? cipher.update(head) : NO_BYTES, cipher.update(body), cipher.final()];
    // Every byte is written below: no need to zero a megabyte first.
    const out = Buffer.allocUnsafe(PREFIX_BYTES + pieces.reduce((n, p) => n + p.length, 0) + BULK_TAG_BYTES);
    out.set(prefix, 0);
    let at = PREFIX_BYTES;
    for (const piece of pieces) {
      out.set(piece, at);
      at += piece.length;
    }
    out.set(cipher.getAuthTag(), at);
    return out;
  }

  /** Opens the next chunk. Throws MalformedFrame / UnsupportedWireVersion, ReplayedFrame, or UnsealFailed. */
  open(frame: Uint8Array): Uint8Array {
    expectFrame(frame, FrameKind.bulk, MIN_BULK_FRAME_BYTES, this.from);
    const nonce = frame.subarray(HEADER_BYTES, PREFIX_BYTES);
    if (nonce[0] !== 0 || nonce[1] !== 0 || nonce[2] !== 0 || nonce[3] !== 0) {
      throw new MalformedFrame(`${this.from} sent an asset chunk with a malformed counter.`);
    }
    const counter = readUint64(nonce, 4);
    if (counter !== this.receiveCounter) throw new ReplayedFrame(this.from, counter, this.receiveCounter);
    const decipher = createDecipheriv(CIPHER, this.receiveKey, nonce);
    decipher.setAAD(frame.subarray(0, PREFIX_BYTES));
    decipher.setAuthTag(frame.subarray(frame.length - BULK_TAG_BYTES));
    let plain: Buffer;
    try {
      // update() hands out unauthenticated bytes; they are only returned once final() has checked the tag.
      const body = decipher.update(frame.subarray(PREFIX_BYTES, frame.length - BULK_TAG_BYTES));
      const tail = decipher.final();
      plain = tail.length === 0 ? body : Buffer.concat([body, tail]);
    } catch {
      throw new UnsealFailed(this.from, "An asset chunk");
    }
    this.receiveCounter++;
    return new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength);
  }
}
