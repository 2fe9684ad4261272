/**
 * The peer port as one seam (docs/design.md §Ports): every connection between
 * machines is dialled and accepted through a PeerNet, so the same services run
 * over real sockets (RealPeerNet, below) and over the in-memory twin the
 * simulator drives (peer-net-memory.ts), as hashicorp/raft's Transport does.
 *
 * Contract (what every implementation keeps):
 * - `dial(to, path, events)` resolves once the connection is authenticated
 *   (the peer proved the network key and its machine key); `events(connection)`
 *   is called exactly once, before the promise resolves, and its handlers then
 *   get every frame in order and one `close` when the connection ends for any
 *   reason (either side closing, the network dropping it).
 *   It rejects, without calling `events`, with one of `PeerDialError`:
 *   `NetworkKeyMismatch` (the peer holds another network key: both fingerprints
 *   named), `PeerRefused` (the peer answered and said no: retried only after a
 *   back-off, see peer-refusals.ts) or `HandshakeFailed` (nothing usable
 *   answers there: retried at the normal pace).
 * - `serve({ path, accept })` registers the service for one path; the listener
 *   routes each authenticated connection on that path to `accept`, and closes a
 *   connection on a path no service holds (4003). Registering a path again
 *   replaces the service; the returned function withdraws it.
 * - `setNetworkKey(key)` applies a new network key at once to dials and to the
 *   listener; connections already open keep their channel (they were
 *   authenticated under the key then in force) until closed.
 * - `closeDialled(reason)` closes every connection this machine dialled that
 *   is open now (a new network key: its links dial again under it), with
 *   CLOSE_NETWORK_KEY_CHANGED, so neither side reads it as a broken link.
 * - `closeAccepted(reason)` closes every connection other machines dialled here
 *   that is open now, with CLOSE_NETWORK_KEY_CHANGED: a peer's ServerLink reads it
 *   as "dial again", never as a broken link, and dials under the key in force, so
 *   a holder of the old key (the reason to change it) keeps nothing open here.
 * - Addresses are `HostPort`s; they are written as text in one place only
 *   (`formatHostPort`: IPv6 in brackets).
 */
import type { AppError } from "../core/errors.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import type { HandshakeFailed, NetworkKeyMismatch, PeerRefused } from "./errors.ts";
import { PeerEndpoint, type PeerIdentity, type PeerPath } from "./peer-endpoint.ts";
import { CLOSE_NETWORK_KEY_CHANGED, connectSecure, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "./secure-socket.ts";

export type { ConnectionEvents, SecureConnection, PeerPath };

/** Why a dial failed; see the contract above. */
export type PeerDialError = NetworkKeyMismatch | PeerRefused | HandshakeFailed;

/** A service on the peer port: the path it takes and the handlers for each authenticated connection there. */
export type PeerService = {
  readonly path: PeerPath;
  accept(connection: SecureConnection): ConnectionEvents;
};

export interface PeerNet {
  /** Opens an authenticated connection to `to` at `path`; rejects with a PeerDialError. */
  dial(to: HostPort, path: PeerPath, events: (connection: SecureConnection) => ConnectionEvents): Promise<SecureConnection>;
  /** Takes connections on `service.path`; returns the function that withdraws it. */
  serve(service: PeerService): () => void;
  /** Uses `networkKey` from now on, for dials and for the listener. */
  setNetworkKey(networkKey: Uint8Array): void;
  /** Closes every connection this machine dialled that is open now. */
  closeDialled(reason: string): void;
  /** Closes every connection other machines dialled here that is open now. */
  closeAccepted(reason: string): void;
  /** Stops listening; open connections close. */
  stop(): void;
}

/** The dialling half, all a service that only connects out needs. */
export type PeerDialer = Pick<PeerNet, "dial">;

/** Dials with `secure`: for command-line tools and tests that listen without a PeerNet. */
export function secureDialer(secure: SecureSocketOptions): PeerDialer {
  return { dial: (to, path, events) => connectSecure(formatHostPort(to), path, secure, events) };
}

export type RealPeerNetOptions = {
  at: HostPort;
  identity: () => PeerIdentity;
  secure: SecureSocketOptions;
  onRefused: (address: string, error: AppError, suppressed: number) => void;
  /** Every machine that completed a handshake here, before its connection is routed (its heartbeat key is learned). */
  authenticated?: (peer: SecureConnection["peer"]) => void;
};

/** The PeerNet over Bun's WebSockets: connectSecure to dial, a PeerEndpoint to listen. */
export class RealPeerNet implements PeerNet {
  private readonly services = new Map<PeerPath, PeerService>();
  /** Every connection this machine dialled that is open now, for closeDialled. */
  private readonly dialled = new Set<SecureConnection>();
  /** Every connection other machines dialled here that is open now, for closeAccepted. */
  private readonly accepted = new Set<SecureConnection>();
  private readonly secure: SecureSocketOptions;
  readonly endpoint: PeerEndpoint;

  private constructor(options: RealPeerNetOptions) {
    // One options object, kept (not copied) and read by the endpoint on every upgrade and by every dial: a new key applies at once,
    // also to whoever else holds it (the runtime's one-shot dials).
    this.secure = options.secure;
    this.endpoint = PeerEndpoint.listen({
      at: options.at,
      identity: options.identity,
      secure: this.secure,
      accept: (path, connection) => {
        options.authenticated?.(connection.peer);
        const events = this.services.get(path)?.accept(connection);
        return events ? this.tracked(this.accepted, connection, events) : null;
      },
      onRefused: options.onRefused,
    });
  }

  /** Listens on `options.at`; throws a ListenError when the address cannot be taken. */
  static listen(options: RealPeerNetOptions): RealPeerNet {
    return new RealPeerNet(options);
  }

  get port(): number {
    return this.endpoint.port;
  }

  /** Where it listens, "host:port" as bound. */
  get address(): string {
    return this.endpoint.address;
  }

  dial(to: HostPort, path: PeerPath, events: (connection: SecureConnection) => ConnectionEvents): Promise<SecureConnection> {
    return connectSecure(formatHostPort(to), path, this.secure, (connection) => this.tracked(this.dialled, connection, events(connection)));
  }

  /** `events`, with the connection kept in `open` until it closes. */
  private tracked(open: Set<SecureConnection>, connection: SecureConnection, events: ConnectionEvents): ConnectionEvents {
    open.add(connection);
    return {
      message: (payload) => events.message(payload),
      ...(events.broadcast ? { broadcast: (frame: Uint8Array) => events.broadcast!(frame) } : {}),
      ...(events.bulk ? { bulk: (payload: Uint8Array) => events.bulk!(payload) } : {}),
      close: (reason, code) => {
        open.delete(connection);
        events.close(reason, code);
      },
    };
  }

  serve(service: PeerService): () => void {
    this.services.set(service.path, service);
    return () => {
      if (this.services.get(service.path) === service) this.services.delete(service.path);
    };
  }

  setNetworkKey(networkKey: Uint8Array): void {
    this.secure.networkKey = networkKey;
  }

  closeDialled(reason: string): void {
    for (const connection of [...this.dialled]) connection.close(CLOSE_NETWORK_KEY_CHANGED, reason);
  }

  closeAccepted(reason: string): void {
    for (const connection of [...this.accepted]) connection.close(CLOSE_NETWORK_KEY_CHANGED, reason);
  }

  stop(): void {
    this.endpoint.stop();
  }
}
