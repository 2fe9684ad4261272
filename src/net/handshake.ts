/**
 * Peer handshake, as a transport-agnostic state machine: feed it the bytes
 * that arrived, send the bytes it returns. The runner owns the socket, the
 * timeout (DEFAULT_HANDSHAKE_TIMEOUT_MS, on its Clock) and the close.
 *
 *   initiator → responder   HELLO_I  (clear: nonce, machine public key, network key fingerprint)
 *   responder → initiator   HELLO_R  (same, sent even when the fingerprints differ,
 *                                     so both sides can name both fingerprints)
 *   initiator → responder   AUTH_I   (MAC under the network key + machine signature, over the transcript)
 *   responder → initiator   AUTH_R
 *
 * The initiator proves itself first, so a stranger without the network key
 * costs the responder one HMAC and never an Ed25519 signature or verification:
 * the responder checks the MAC, then asks `admit` (a token bucket) before it
 * verifies and signs.
 *
 *   HELLO = version | kind=hello | nonce (32) | machine public key (32) | network fingerprint (8)   = 74 bytes
 *   AUTH  = version | kind=auth  | MAC (32) | Ed25519 signature (64)                                = 98 bytes
 *
 * transcript = SHA-512(label | HELLO_I | HELLO_R). The MAC proves the network
 * key; the signature proves the machine key (so the machine id is real). Labels
 * differ per role, so a proof reflected back at its sender is refused. Session
 * keys (one per direction) = HMAC(network key, label | transcript): fresh for
 * every connection because both nonces are fresh.
 *
 * Not provided: forward secrecy (no ephemeral Diffie-Hellman); whoever learns
 * the network key later can open recorded sessions.
 */
import nacl from "tweetnacl";
import type { AppError } from "../core/errors.ts";
import { fingerprint } from "../core/keys.ts";
import { SecureChannel, type SessionKeys } from "./channel.ts";
import { LABELS, assertNetworkKey, bytesEqual, concatBytes, deriveKey, systemRandom, type RandomBytes } from "./crypto.ts";
import { FrameKind, HEADER_BYTES, WIRE_VERSION, expectFrame } from "./envelope.ts";
import { HandshakeBusy, HandshakeFailed, MalformedFrame, NetworkKeyMismatch } from "./errors.ts";

/** How long a runner should wait for a handshake to finish before closing the connection. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;

export const HANDSHAKE_NONCE_BYTES = 32;
const FINGERPRINT_BYTES = 8;
const MAC_BYTES = 32;
export const HELLO_BYTES = HEADER_BYTES + HANDSHAKE_NONCE_BYTES + nacl.sign.publicKeyLength + FINGERPRINT_BYTES;
export const AUTH_BYTES = HEADER_BYTES + MAC_BYTES + nacl.sign.signatureLength;

export type HandshakeOptions = {
  /** The 32-byte network key shared by every machine. */
  networkKey: Uint8Array;
  /** This machine's Ed25519 key pair (store/machine-identity.ts `MachineIdentity` fits). */
  machine: { publicKey: Uint8Array; secretKey: Uint8Array };
  /** Where the peer is, for messages and logs: "10.0.0.2:7401". */
  peerAddress: string;
  /** Source of the 32-byte nonce; tests pass `seededRandom`. */
  random?: RandomBytes;
};

/** Responder only: asked once the initiator proved the network key, before the expensive Ed25519 work; false refuses cheaply. */
export type HandshakeAdmit = () => boolean;

/** What to send now and whether the handshake is over. Every message in `send` goes out, in order, even on failure. */
export type HandshakeStep =
  | { status: "continue"; send: Uint8Array[] }
  | { status: "established"; send: Uint8Array[]; channel: SecureChannel }
  | { status: "failed"; send: Uint8Array[]; error: AppError };

type Role = "initiator" | "responder";
type Hello = { publicKey: Uint8Array; fingerprint: string };
type State = "start" | "awaitHello" | "awaitAuth" | "established" | "failed";

const encoder = new TextEncoder();

abstract class HandshakeParty {
  protected state: State;
  protected readonly networkKey: Uint8Array;
  protected readonly machine: HandshakeOptions["machine"];
  protected readonly peer: string;
  protected readonly localFingerprint: string;
  protected readonly ownHello: Uint8Array;
  protected peerHello: Hello | null = null;
  protected transcript: Uint8Array | null = null;

  protected constructor(options: HandshakeOptions, initialState: State) {
    assertNetworkKey(options.networkKey);
    this.networkKey = options.networkKey;
    this.machine = options.machine;
    this.peer = options.peerAddress;
    this.localFingerprint = fingerprint(options.networkKey);
    this.state = initialState;
    const nonce = (options.random ?? systemRandom)(HANDSHAKE_NONCE_BYTES);
    this.ownHello = encodeHello(nonce, options.machine.publicKey, this.localFingerprint);
  }

  /** True once `receive` returned "established" or "failed"; later bytes belong to the channel, or to nobody. */
  get finished(): boolean {
    return this.state === "established" || this.state === "failed";
  }

  /** Feed one received message. Never throws for anything the peer sent; a failure is a "failed" step. */
  receive(bytes: Uint8Array): HandshakeStep {
    if (this.state === "start") throw new Error("HandshakeInitiator.receive() was called before start().");
    try {
      return this.step(bytes);
    } catch (error) {
      this.state = "failed";
      const appError =
        error instanceof NetworkKeyMismatch || error instanceof HandshakeFailed || error instanceof HandshakeBusy
          ? error
          : new HandshakeFailed(this.peer, `The handshake with ${this.peer} failed: ${(error as Error).message}`, error);
      return { status: "failed", send: [], error: appError };
    }
  }

  protected abstract step(bytes: Uint8Array): HandshakeStep;

  /** Parses the peer's hello and refuses a different network key or a connection to ourselves. */
  protected acceptHello(hello: Hello): void {
    if (hello.fingerprint !== this.localFingerprint) throw new NetworkKeyMismatch(this.peer, hello.fingerprint, this.localFingerprint);
    if (bytesEqual(hello.publicKey, this.machine.publicKey)) {
      throw new HandshakeFailed(this.peer, `${this.peer} is this machine itself (same machine key); connect to another machine.`);
    }
    this.peerHello = hello;
  }

  protected setTranscript(helloI: Uint8Array, helloR: Uint8Array): void {
    this.transcript = nacl.hash(concatBytes(encoder.encode(LABELS.transcript), helloI, helloR));
  }

  protected ownAuth(role: Role): Uint8Array {
    const transcript = this.transcript!;
    const out = new Uint8Array(AUTH_BYTES);
    out[0] = WIRE_VERSION;
    out[1] = FrameKind.auth;
    out.set(proofMac(this.networkKey, role, transcript), HEADER_BYTES);
    out.set(nacl.sign.detached(signedMessage(role, transcript), this.machine.secretKey), HEADER_BYTES + MAC_BYTES);
    return out;
  }

  /** Checks the peer's proof of the network key (one HMAC: cheap), then `admit`, then its machine signature. */
  protected verifyAuth(bytes: Uint8Array, peerRole: Role, admit: HandshakeAdmit = () => true): void {
    expectFrame(bytes, FrameKind.auth, AUTH_BYTES, this.peer);
    if (bytes.length !== AUTH_BYTES) throw new MalformedFrame(`${this.peer} sent a handshake proof of ${bytes.length} bytes, not ${AUTH_BYTES}.`);
    const transcript = this.transcript!;
    const mac = bytes.subarray(HEADER_BYTES, HEADER_BYTES + MAC_BYTES);
    if (!bytesEqual(mac, proofMac(this.networkKey, peerRole, transcript))) {
      // The fingerprints matched, so this is not an honest key mismatch: a fingerprint collision or an impostor.
      throw new HandshakeFailed(this.peer, `${this.peer} showed our network key fingerprint but could not prove it holds the key; refused.`);
    }
    if (!admit()) throw new HandshakeBusy(this.peer);
    const signature = bytes.subarray(HEADER_BYTES + MAC_BYTES);
    if (!nacl.sign.detached.verify(signedMessage(peerRole, transcript), signature, this.peerHello!.publicKey)) {
      throw new HandshakeFailed(this.peer, `${this.peer} holds the network key but its machine signature is invalid; refused.`);
    }
  }

  protected establish(role: Role, send: Uint8Array[]): HandshakeStep {
    const transcript = this.transcript!;
    const i2r = deriveKey(this.networkKey, LABELS.initiatorToResponder, transcript);
    const r2i = deriveKey(this.networkKey, LABELS.responderToInitiator, transcript);
    const keys: SessionKeys = role === "initiator" ? { send: i2r, receive: r2i } : { send: r2i, receive: i2r };
    const publicKey = this.peerHello!.publicKey;
    this.state = "established";
    const channel = new SecureChannel(keys, { machineId: fingerprint(publicKey), publicKey, address: this.peer });
    return { status: "established", send, channel };
  }

  protected unexpected(): never {
    const why = this.state === "failed" ? "it already failed" : "it is already finished";
    throw new HandshakeFailed(this.peer, `${this.peer} sent a handshake message after the handshake (${why}).`);
  }
}

/** The side that opened the connection: call `start()`, send its bytes, then `receive()` each message. */
export class HandshakeInitiator extends HandshakeParty {
  constructor(options: HandshakeOptions) {
    super(options, "start");
  }

  /** The first message (HELLO_I). Call once, before any `receive`. */
  start(): Uint8Array {
    if (this.state !== "start") throw new Error("HandshakeInitiator.start() was called twice.");
    this.state = "awaitHello";
    return this.ownHello;
  }

  protected step(bytes: Uint8Array): HandshakeStep {
    switch (this.state) {
      case "awaitHello":
        this.acceptHello(decodeHello(bytes, this.peer));
        this.setTranscript(this.ownHello, bytes);
        this.state = "awaitAuth";
        return { status: "continue", send: [this.ownAuth("initiator")] };
      case "awaitAuth":
        this.verifyAuth(bytes, "responder");
        return this.establish("initiator", []);
      default:
        return this.unexpected();
    }
  }
}

/** The side that accepted the connection: `receive()` each message and send what it returns. */
export class HandshakeResponder extends HandshakeParty {
  private readonly admit: HandshakeAdmit;

  constructor(options: HandshakeOptions & { admit?: HandshakeAdmit }) {
    super(options, "awaitHello");
    this.admit = options.admit ?? (() => true);
  }

  protected step(bytes: Uint8Array): HandshakeStep {
    switch (this.state) {
      case "awaitHello": {
        const hello = decodeHello(bytes, this.peer);
        if (hello.fingerprint !== this.localFingerprint) {
          // Answer with our hello anyway: the initiator can then name both fingerprints too.
          this.state = "failed";
          const error = new NetworkKeyMismatch(this.peer, hello.fingerprint, this.localFingerprint);
          return { status: "failed", send: [this.ownHello], error };
        }
        this.acceptHello(hello);
        this.setTranscript(bytes, this.ownHello);
        this.state = "awaitAuth";
        return { status: "continue", send: [this.ownHello] };
      }
      case "awaitAuth":
        this.verifyAuth(bytes, "initiator", this.admit);
        return this.establish("responder", [this.ownAuth("responder")]);
      default:
        return this.unexpected();
    }
  }
}

function encodeHello(nonce: Uint8Array, publicKey: Uint8Array, networkFingerprint: string): Uint8Array {
  if (nonce.length !== HANDSHAKE_NONCE_BYTES) throw new RangeError(`A handshake nonce has ${HANDSHAKE_NONCE_BYTES} bytes.`);
  if (publicKey.length !== nacl.sign.publicKeyLength) throw new RangeError("A machine public key has 32 bytes.");
  const out = new Uint8Array(HELLO_BYTES);
  out[0] = WIRE_VERSION;
  out[1] = FrameKind.hello;
  out.set(nonce, HEADER_BYTES);
  out.set(publicKey, HEADER_BYTES + HANDSHAKE_NONCE_BYTES);
  out.set(Buffer.from(networkFingerprint, "hex"), HEADER_BYTES + HANDSHAKE_NONCE_BYTES + nacl.sign.publicKeyLength);
  return out;
}

function decodeHello(bytes: Uint8Array, from: string): Hello {
  expectFrame(bytes, FrameKind.hello, HELLO_BYTES, from);
  if (bytes.length !== HELLO_BYTES) throw new MalformedFrame(`${from} sent a handshake hello of ${bytes.length} bytes, not ${HELLO_BYTES}.`);
  const keyStart = HEADER_BYTES + HANDSHAKE_NONCE_BYTES;
  const fingerprintStart = keyStart + nacl.sign.publicKeyLength;
  return {
    publicKey: bytes.slice(keyStart, fingerprintStart),
    fingerprint: Buffer.from(bytes.subarray(fingerprintStart)).toString("hex"),
  };
}

function proofMac(networkKey: Uint8Array, role: Role, transcript: Uint8Array): Uint8Array {
  return deriveKey(networkKey, `${LABELS.handshakeProof}/${role}`, transcript);
}

function signedMessage(role: Role, transcript: Uint8Array): Uint8Array {
  return concatBytes(encoder.encode(role === "initiator" ? LABELS.signInitiator : LABELS.signResponder), transcript);
}
