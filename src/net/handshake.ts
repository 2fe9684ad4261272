/**
 * Peer handshake, in two messages, the first of them inside the WebSocket
 * upgrade request: the listener checks the dialer completely before any socket
 * exists, so a socket is only ever created for an authenticated machine and
 * nothing a stranger (or a key holder with a bad, replayed or stale proof)
 * sends is ever buffered. docs/design.md §Security.
 *
 *   dialer → listener   GET /identity            → challenge {id: listener machine id, nonce}
 *   dialer → listener   upgrade, with headers     PROOF_HEADER: base64url(challenge nonce (16) | nonce (32) | machine public key (32) | MAC (32) | signature (64))
 *                                                 FINGERPRINT_HEADER: the network key's fingerprint (names a mismatch on both sides)
 *   listener → dialer   first socket frame        version | kind=auth | nonce (32) | machine public key (32) | MAC (32) | signature (64) = 162 bytes
 *
 * T1 = SHA-512(label, path, listener machine id, challenge nonce, dialer nonce, dialer public key);
 * T2 = SHA-512(label, T1, listener nonce, listener public key). The dialer's MAC
 * (under the network key) and signature (its machine key) cover T1; the
 * listener's cover T2. The MAC is checked first, so a stranger costs one HMAC;
 * then the challenge (upgrade-challenge.ts): a replayed nonce is refused at
 * once, a fresh one spends a token (`admit`, per source first) and is taken
 * once; only then comes the Ed25519 work. Labels differ per role, so a
 * proof reflected back at its sender is refused. Session keys (one per
 * direction) = HMAC(network key, label | T2): fresh for every connection.
 *
 * Not provided: forward secrecy (no ephemeral Diffie-Hellman); whoever learns
 * the network key later can open recorded sessions.
 */
import nacl from "tweetnacl";
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import { fingerprint } from "../core/keys.ts";
import { SecureChannel, type SessionKeys } from "./channel.ts";
import { LABELS, assertNetworkKey, bytesEqual, concatBytes, deriveKey, systemRandom, type RandomBytes } from "./crypto.ts";
import { FrameKind, HEADER_BYTES, WIRE_VERSION, expectFrame } from "./envelope.ts";
import { HandshakeBusy, HandshakeFailed, MalformedFrame, NetworkKeyMismatch } from "./errors.ts";
import { CHALLENGE_BYTES, type UpgradeChallenge, type UpgradeChallenges } from "./upgrade-challenge.ts";

/** How long a dialer waits for the listener's proof (after its /identity question) before giving up. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;

export const PROOF_HEADER = "x-understudy-proof";
export const FINGERPRINT_HEADER = "x-understudy-network-key";
/** What an understudy before the proof-in-the-upgrade sent instead: recognised only to say "update that machine". */
const RETIRED_TICKET_HEADER = "x-understudy-ticket";

export const HANDSHAKE_NONCE_BYTES = 32;
const KEY_BYTES = nacl.sign.publicKeyLength;
const MAC_BYTES = 32;
const SIGNATURE_BYTES = nacl.sign.signatureLength;
/** The dialer's proof, before base64url. */
export const DIALER_PROOF_BYTES = CHALLENGE_BYTES + HANDSHAKE_NONCE_BYTES + KEY_BYTES + MAC_BYTES + SIGNATURE_BYTES;
/** The listener's proof: the first frame on every socket. */
export const LISTENER_PROOF_BYTES = HEADER_BYTES + HANDSHAKE_NONCE_BYTES + KEY_BYTES + MAC_BYTES + SIGNATURE_BYTES;

export type HandshakeOptions = {
  /** The 32-byte network key shared by every machine. */
  networkKey: Uint8Array;
  /** This machine's Ed25519 key pair (store/machine-identity.ts `MachineIdentity` fits). */
  machine: { publicKey: Uint8Array; secretKey: Uint8Array };
  /** Where the peer is, for messages and logs: "10.0.0.2:7401". */
  peerAddress: string;
  /** Source of the nonces; tests pass `seededRandom`. */
  random?: RandomBytes;
};

/** Listener only: asked once the dialer proved the network key with a fresh nonce, before the Ed25519 work; false refuses cheaply. */
export type HandshakeAdmit = () => boolean;

type Role = "initiator" | "responder";
type DialerProof = { challengeNonce: Uint8Array; nonce: Uint8Array; publicKey: Uint8Array; mac: Uint8Array; signature: Uint8Array };

const encoder = new TextEncoder();

/** The proof header: exactly DIALER_PROOF_BYTES in unpadded base64url, split at fixed offsets. */
const dialerProofSchema = z
  .string()
  .regex(new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((DIALER_PROOF_BYTES * 4) / 3)}}$`))
  // Canonical only (the last character's spare bits zero): one proof has one spelling.
  .refine((text) => Buffer.from(text, "base64url").toString("base64url") === text)
  .transform((text): DialerProof => {
    const bytes = Buffer.from(text, "base64url");
    const at = fieldOffsets(bytes, [CHALLENGE_BYTES, HANDSHAKE_NONCE_BYTES, KEY_BYTES, MAC_BYTES, SIGNATURE_BYTES]);
    return { challengeNonce: at[0]!, nonce: at[1]!, publicKey: at[2]!, mac: at[3]!, signature: at[4]! };
  });

function fieldOffsets(bytes: Uint8Array, lengths: number[]): Uint8Array[] {
  let offset = 0;
  return lengths.map((length) => bytes.slice(offset, (offset += length)));
}

function dialerTranscript(path: string, listenerId: string, challengeNonce: Uint8Array, nonce: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return nacl.hash(concatBytes(encoder.encode(`${LABELS.transcript}/dialer\n${path}\n${listenerId}\n`), challengeNonce, nonce, publicKey));
}

function listenerTranscript(dialer: Uint8Array, nonce: Uint8Array, publicKey: Uint8Array): Uint8Array {
  return nacl.hash(concatBytes(encoder.encode(`${LABELS.transcript}/listener\n`), dialer, nonce, publicKey));
}

function proofMac(networkKey: Uint8Array, role: Role, transcript: Uint8Array): Uint8Array {
  return deriveKey(networkKey, `${LABELS.handshakeProof}/${role}`, transcript);
}

function signedMessage(role: Role, transcript: Uint8Array): Uint8Array {
  return concatBytes(encoder.encode(role === "initiator" ? LABELS.signInitiator : LABELS.signResponder), transcript);
}

/** The connection's channel, for the side `role`, from the final transcript; `peerKey` is the other side's machine key. */
function channelFor(networkKey: Uint8Array, role: Role, transcript: Uint8Array, peerKey: Uint8Array, peerAddress: string): SecureChannel {
  const i2r = deriveKey(networkKey, LABELS.initiatorToResponder, transcript);
  const r2i = deriveKey(networkKey, LABELS.responderToInitiator, transcript);
  const keys: SessionKeys = role === "initiator" ? { send: i2r, receive: r2i } : { send: r2i, receive: i2r };
  return new SecureChannel(keys, { machineId: fingerprint(peerKey), publicKey: peerKey, address: peerAddress });
}

/** The dialer's result, once the listener's proof arrived. */
export type HandshakeStep = { status: "established"; channel: SecureChannel } | { status: "failed"; error: AppError };

/** The side that dials: send `headers` with the upgrade, then pass the socket's first frame to `receive`. */
export class HandshakeInitiator {
  /** For `new WebSocket(url, { headers })`. */
  readonly headers: Record<string, string>;
  private readonly transcript: Uint8Array;
  private done = false;

  constructor(
    private readonly options: HandshakeOptions & { path: string; challenge: UpgradeChallenge },
  ) {
    assertNetworkKey(options.networkKey);
    const challengeNonce = Buffer.from(options.challenge.nonce, "hex");
    const nonce = (options.random ?? systemRandom)(HANDSHAKE_NONCE_BYTES);
    this.transcript = dialerTranscript(options.path, options.challenge.id, challengeNonce, nonce, options.machine.publicKey);
    const proof = concatBytes(
      challengeNonce,
      nonce,
      options.machine.publicKey,
      proofMac(options.networkKey, "initiator", this.transcript),
      nacl.sign.detached(signedMessage("initiator", this.transcript), options.machine.secretKey),
    );
    this.headers = { [PROOF_HEADER]: Buffer.from(proof).toString("base64url"), [FINGERPRINT_HEADER]: fingerprint(options.networkKey) };
  }

  /** The listener's proof (the first frame). Never throws for anything the peer sent. */
  receive(bytes: Uint8Array): HandshakeStep {
    if (this.done) return { status: "failed", error: new HandshakeFailed(this.options.peerAddress, "The handshake is already over.") };
    this.done = true;
    try {
      return { status: "established", channel: this.verify(bytes) };
    } catch (error) {
      const appError = error instanceof AppError ? error : new HandshakeFailed(this.options.peerAddress, `The handshake with ${this.options.peerAddress} failed: ${(error as Error).message}`, error);
      return { status: "failed", error: appError };
    }
  }

  private verify(bytes: Uint8Array): SecureChannel {
    const { networkKey, peerAddress: peer, challenge } = this.options;
    expectFrame(bytes, FrameKind.auth, LISTENER_PROOF_BYTES, peer);
    if (bytes.length !== LISTENER_PROOF_BYTES) throw new MalformedFrame(`${peer} sent a handshake proof of ${bytes.length} bytes, not ${LISTENER_PROOF_BYTES}.`);
    const [nonce, publicKey, mac, signature] = fieldOffsets(bytes.subarray(HEADER_BYTES), [HANDSHAKE_NONCE_BYTES, KEY_BYTES, MAC_BYTES, SIGNATURE_BYTES]) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    // The proof was made for the machine that gave the challenge; another one answering there is not it.
    if (fingerprint(publicKey) !== challenge.id) throw new HandshakeFailed(peer, `${peer} answered as machine ${fingerprint(publicKey)}, not ${challenge.id} that gave the challenge; refused.`);
    const transcript = listenerTranscript(this.transcript, nonce, publicKey);
    if (!bytesEqual(mac, proofMac(networkKey, "responder", transcript))) throw new HandshakeFailed(peer, `${peer} could not prove it holds the network key; refused.`);
    if (!nacl.sign.detached.verify(signedMessage("responder", transcript), signature, publicKey)) {
      throw new HandshakeFailed(peer, `${peer} holds the network key but its machine signature is invalid; refused.`);
    }
    return channelFor(networkKey, "initiator", transcript, publicKey, peer);
  }
}

/** The listener's answer to an upgrade: the socket's first frame and channel, or why there is no socket (and the HTTP status). */
export type UpgradeVerdict = { ok: true; reply: Uint8Array; channel: SecureChannel } | { ok: false; status: 403 | 503; error: AppError };

export type UpgradeRequest = HandshakeOptions & {
  challenges: UpgradeChallenges;
  headers: Headers;
  path: string;
  admit?: HandshakeAdmit;
};

/**
 * The listener's side, before any socket: checks the dialer's proof (one HMAC, then the challenge,
 * then `admit`, then its signature) and makes the reply. Never throws for anything the dialer sent.
 */
export function answerUpgrade(request: UpgradeRequest): UpgradeVerdict {
  const { networkKey, machine, peerAddress: peer, challenges, headers, path } = request;
  const refuse = (message: string): UpgradeVerdict => ({ ok: false, status: 403, error: new HandshakeFailed(peer, message) });
  const ours = fingerprint(networkKey);
  const theirs = headers.get(FINGERPRINT_HEADER);
  if (theirs !== null && /^[0-9a-f]{16}$/.test(theirs) && theirs !== ours) return { ok: false, status: 403, error: new NetworkKeyMismatch(peer, theirs, ours) };
  const parsed = dialerProofSchema.safeParse(headers.get(PROOF_HEADER));
  if (!parsed.success) {
    if (headers.has(RETIRED_TICKET_HEADER)) return refuse(`${peer} runs an older understudy (it sent an upgrade ticket, not a proof); update that machine.`);
    return refuse(`${peer} did not prove it holds the network key for this machine; refused before any WebSocket.`);
  }
  const proof = parsed.data;
  const dialer = dialerTranscript(path, challenges.machineId, proof.challengeNonce, proof.nonce, proof.publicKey);
  if (!bytesEqual(proof.mac, proofMac(networkKey, "initiator", dialer))) {
    return refuse(`${peer} did not prove it holds the network key for this machine; refused before any WebSocket.`);
  }
  if (bytesEqual(proof.publicKey, machine.publicKey)) return refuse(`${peer} is this machine itself (same machine key); connect to another machine.`);
  const fresh = challenges.take(Buffer.from(proof.challengeNonce).toString("hex"), Buffer.from(proof.nonce).toString("hex"), request.admit);
  if (fresh === "replayed") return refuse(`${peer} reused an upgrade proof; refused.`);
  if (fresh === "stale") return refuse(`${peer} sent an upgrade proof made for an earlier run of this machine, or too old; refused (it asks for a new challenge).`);
  if (fresh === "busy") return { ok: false, status: 503, error: new HandshakeBusy(peer) };
  if (!nacl.sign.detached.verify(signedMessage("initiator", dialer), proof.signature, proof.publicKey)) {
    return refuse(`${peer} holds the network key but its machine signature is invalid; refused.`);
  }
  const nonce = (request.random ?? systemRandom)(HANDSHAKE_NONCE_BYTES);
  const transcript = listenerTranscript(dialer, nonce, machine.publicKey);
  const reply = concatBytes(
    new Uint8Array([WIRE_VERSION, FrameKind.auth]),
    nonce,
    machine.publicKey,
    proofMac(networkKey, "responder", transcript),
    nacl.sign.detached(signedMessage("responder", transcript), machine.secretKey),
  );
  return { ok: true, reply, channel: channelFor(networkKey, "responder", transcript, proof.publicKey, peer) };
}
