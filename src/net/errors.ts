/**
 * Errors of the wire security layer. Each has a stable code (logs, the UI and
 * tests switch on it) and a message a studio engineer can act on. `from` names
 * where the bytes came from ("10.0.0.2:7401", "heartbeat from 10.0.0.3:7401").
 *
 * Status 502: when one of these reaches the web edge, a peer sent bad bytes,
 * not the person at the browser.
 */
import { AppError } from "../core/errors.ts";

/** The first byte names a wire format this build does not speak. */
export class UnsupportedWireVersion extends AppError {
  readonly version: number;
  constructor(version: number, supported: number, from: string) {
    super(
      "WIRE_VERSION",
      `${from} speaks wire version ${version}; this machine speaks version ${supported}. Run the same understudy version on every machine.`,
      { status: 502 },
    );
    this.name = "UnsupportedWireVersion";
    this.version = version;
  }
}

/** Too short, the wrong kind of frame for where it arrived, or a bad layout. Refused before any crypto. */
export class MalformedFrame extends AppError {
  constructor(message: string) {
    super("WIRE_MALFORMED", message, { status: 502 });
    this.name = "MalformedFrame";
  }
}

/** Authentication failed: the bytes were altered on the way, or sealed under another key. */
export class UnsealFailed extends AppError {
  constructor(from: string, what: string) {
    super(
      "WIRE_UNSEALED",
      `${what} from ${from} could not be opened: it was altered on the way or sealed with another network key. Check that every machine has the same network key.`,
      { status: 502 },
    );
    this.name = "UnsealFailed";
  }
}

/** A channel frame arrived twice or out of order; on an ordered transport that means someone replays or drops frames. */
export class ReplayedFrame extends AppError {
  readonly counter: number;
  readonly expected: number;
  constructor(from: string, counter: number, expected: number) {
    const what = counter < expected ? "a frame it already sent" : "a frame out of order";
    super(
      "WIRE_REPLAY",
      `The connection to ${from} delivered ${what} (#${counter}, expected #${expected}); the connection is no longer trustworthy and should be closed.`,
      { status: 502 },
    );
    this.name = "ReplayedFrame";
    this.counter = counter;
    this.expected = expected;
  }
}

/** A broadcast frame sealed for another epoch than the key at hand: derive the key for `frameEpoch` and retry, or drop it. */
export class BroadcastEpochMismatch extends AppError {
  readonly frameEpoch: number;
  readonly keyEpoch: number;
  constructor(frameEpoch: number, keyEpoch: number) {
    super("BROADCAST_EPOCH", `A hub broadcast sealed for epoch ${frameEpoch} arrived while this machine holds the key of epoch ${keyEpoch}.`, {
      status: 502,
    });
    this.name = "BroadcastEpochMismatch";
    this.frameEpoch = frameEpoch;
    this.keyEpoch = keyEpoch;
  }
}

/** The peer's network key fingerprint differs from ours: both are named so people can compare screens. */
export class NetworkKeyMismatch extends AppError {
  readonly peer: string;
  readonly peerFingerprint: string;
  readonly localFingerprint: string;
  constructor(peer: string, peerFingerprint: string, localFingerprint: string) {
    super(
      "NETWORK_KEY_MISMATCH",
      `Peer ${peer} has a different network key (fingerprint ${peerFingerprint} vs ${localFingerprint} here). Install the same network key on every machine.`,
      { status: 409 },
    );
    this.name = "NetworkKeyMismatch";
    this.peer = peer;
    this.peerFingerprint = peerFingerprint;
    this.localFingerprint = localFingerprint;
  }
}

/** Any other handshake refusal: bad proof, bad signature, unexpected message. Nothing from the peer is used. */
export class HandshakeFailed extends AppError {
  readonly peer: string;
  constructor(peer: string, message: string, cause?: unknown) {
    super("HANDSHAKE_FAILED", message, { status: 502, cause });
    this.name = "HandshakeFailed";
    this.peer = peer;
  }
}

/** The peer answered and closed the handshake with a reason (wrong key, busy, bad proof): retrying at once would be refused again. */
export class PeerRefused extends HandshakeFailed {
  constructor(peer: string, message: string) {
    super(peer, message);
    this.name = "PeerRefused";
  }
}

/** Too many handshakes at once (from this source or in total): refused before any signature work; the peer retries later. */
export class HandshakeBusy extends AppError {
  readonly peer: string;
  constructor(peer: string) {
    super("HANDSHAKE_BUSY", `Refused ${peer}: too many handshakes per second from it or from everyone; it is accepted again on a later try.`, {
      status: 503,
    });
    this.name = "HandshakeBusy";
    this.peer = peer;
  }
}

/** A source (or everyone together) already holds as many peer-port sockets as the listener allows: refused before any signature work; retried later. */
export class TooManyPeerSockets extends AppError {
  constructor(peer: string, limits: { perSource: number; total: number }) {
    super(
      "PEER_SOCKETS_FULL",
      `Refused ${peer}: its address already holds ${limits.perSource} connections to this machine, or all together hold ${limits.total}; it is accepted again once some close.`,
      { status: 503 },
    );
    this.name = "TooManyPeerSockets";
  }
}

/** A heartbeat opened fine but its body does not match the schema: most likely a different understudy version. */
export class InvalidHeartbeat extends AppError {
  constructor(from: string, detail: string, cause?: unknown) {
    super("HEARTBEAT_INVALID", `A heartbeat from ${from} has an unexpected body (${detail}); run the same understudy version on every machine.`, {
      status: 502,
      cause,
    });
    this.name = "InvalidHeartbeat";
  }
}
