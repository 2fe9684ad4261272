/**
 * The peer port other machines (and this machine's local apps) reach. Plain
 * HTTP `GET /identity` says who this machine is (the facts DNS-SD advertises),
 * so a typed address can be checked before pairing; every WebSocket path
 * (`/hub`, `/replicate`, `/app`, `/files`, `/replicate-log`, `/assets`) is
 * authenticated before it exists: the upgrade request carries the dialer's
 * proof, bound to this machine's challenge (handshake.ts, upgrade-challenge.ts),
 * and the signature work is capped per source first (handshake-admission.ts).
 * The listener's proof is then the socket's first frame.
 */
import type { Clock } from "../core/clock.ts";
import type { AppError } from "../core/errors.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import { fingerprint } from "../core/keys.ts";
import { answerUpgrade } from "./handshake.ts";
import { UpgradeChallenges } from "./upgrade-challenge.ts";
import { DEFAULT_ADMISSION_LIMITS, HandshakeAdmission, RefusalLog, sourceAddress, type AdmissionLimits } from "./handshake-admission.ts";
import { ConnectionCaps, type ConnectionLimits } from "./connection-caps.ts";
import { TooManyPeerSockets } from "./errors.ts";
import { listenError } from "./listen-error.ts";
import { systemClock } from "./system-time.ts";
import { MAX_RPC_FRAME_BYTES } from "./rpc.ts";
import { newServerSocketData, secureServerHandlers, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "./secure-socket.ts";

/** `license`: the license type this machine runs under, as it says (the Backup groups panel warns when a group's engines differ). */
export type PeerIdentity = { id: string; name: string; role: string; version: string; networkKeyFingerprint: string | null; license?: string | null };
export const PEER_PATHS = ["/hub", "/replicate", "/app", "/files", "/replicate-log", "/assets", "/pair", "/console"] as const;
export type PeerPath = (typeof PEER_PATHS)[number];
/** The largest frame after the handshake: an rpc frame (a show-file push) with its envelope. Bun closes the socket (1009) on a larger one. */
export const MAX_PEER_FRAME_BYTES = MAX_RPC_FRAME_BYTES + 64 * 1024;
/**
 * Authenticated sockets at once, per source address and in all. Each may buffer a frame of up to
 * MAX_PEER_FRAME_BYTES before Bun hands it over (and an /assets or /files socket its chunk work,
 * chunk-gate.ts), so this is what bounds a key holder opening sockets without end. As the MQTT door:
 * a machine's lanes, its apps on /app (all 127.0.0.1) and a burst of forwarded commands stay far below.
 */
export const DEFAULT_PEER_SOCKET_LIMITS: ConnectionLimits = { perSource: 128, total: 1024 };

export type PeerEndpointOptions = {
  at: HostPort;
  identity: () => PeerIdentity;
  /** Read on every upgrade: its network key may change while listening. */
  secure: SecureSocketOptions;
  /** Handlers for an authenticated connection on `path`, or null to refuse it (e.g. /hub on a client). */
  accept: (path: PeerPath, connection: SecureConnection) => ConnectionEvents | null;
  /** A refused connection; repeats from one source with one code are reported once a minute, `suppressed` counts the others. */
  onRefused: (address: string, error: AppError, suppressed: number) => void;
  admission?: AdmissionLimits;
  sockets?: ConnectionLimits;
  clock?: Clock;
};

export class PeerEndpoint {
  private readonly server: ReturnType<typeof Bun.serve>;
  /** Hands out the challenges on GET /identity and takes each proof once; one for the life of the endpoint (a new network key keeps it). */
  readonly challenges: UpgradeChallenges;

  private constructor(server: ReturnType<typeof Bun.serve>, challenges: UpgradeChallenges) {
    this.server = server;
    this.challenges = challenges;
  }

  static listen(options: PeerEndpointOptions): PeerEndpoint {
    const refuse: ConnectionEvents = { message() {}, close() {} };
    const clock = options.clock ?? systemClock;
    const admission = new HandshakeAdmission(clock, options.admission ?? DEFAULT_ADMISSION_LIMITS);
    const refusals = new RefusalLog(clock, options.onRefused);
    const challenges = new UpgradeChallenges(fingerprint(options.secure.machine.publicKey), clock);
    const socketLimits = options.sockets ?? DEFAULT_PEER_SOCKET_LIMITS;
    const sockets = new ConnectionCaps(socketLimits);
    try {
      const server = Bun.serve({
        hostname: options.at.host,
        // One process per port: with SO_REUSEPORT a second understudy would share it and requests would alternate.
        reusePort: false,
        port: options.at.port,
        development: false,
        fetch(request, srv) {
          const url = new URL(request.url);
          if (request.method === "GET" && url.pathname === "/identity") return Response.json({ ...options.identity(), challenge: challenges.challenge() });
          if ((PEER_PATHS as readonly string[]).includes(url.pathname)) {
            const address = srv.requestIP(request);
            const from = address ? formatHostPort({ host: address.address, port: address.port }) : "unknown";
            if (!sockets.room(sourceAddress(from))) {
              // Before the signature work, as a busy handshake is: the dialer backs off and tries again.
              const error = new TooManyPeerSockets(from, socketLimits);
              refusals.refused(from, error);
              return new Response(error.message, { status: 503, headers: { connection: "close" } });
            }
            // Before any WebSocket exists: only a machine that proved the network key and its machine key, with a fresh
            // proof made for this machine, gets a socket. The key is read per upgrade: a new one applies to the next (peer-net.ts).
            const verdict = answerUpgrade({
              networkKey: options.secure.networkKey,
              machine: options.secure.machine,
              peerAddress: from,
              challenges,
              headers: request.headers,
              path: url.pathname,
              admit: () => admission.admitSignature(sourceAddress(from)),
            });
            if (!verdict.ok) {
              refusals.refused(from, verdict.error);
              // Closed after the answer: whatever the dialer sent after its request is never read.
              return new Response(verdict.error.message, { status: verdict.status, headers: { connection: "close" } });
            }
            const publish = (topic: string, frame: Uint8Array) => srv.publish(topic, frame);
            if (srv.upgrade(request, { data: newServerSocketData(verdict, from, url.pathname, publish) })) return undefined;
            return new Response("This path takes a WebSocket.", { status: 426 });
          }
          return new Response("Not found", { status: 404 });
        },
        websocket: {
          maxPayloadLength: MAX_PEER_FRAME_BYTES,
          ...secureServerHandlers(
            (connection, path) => {
              const source = sourceAddress(connection.peer.address);
              // Upgrades that raced past the check above find no slot here.
              if (!sockets.take(source)) {
                connection.close(4003, new TooManyPeerSockets(connection.peer.address, socketLimits).message.slice(0, 120));
                return refuse;
              }
              const events = options.accept(path as PeerPath, connection);
              if (!events) connection.close(4003, `This machine does not serve ${path}.`);
              return releasingOnClose(events ?? refuse, () => sockets.release(source));
            },
            (address, error) => refusals.refused(address, error),
          ),
        },
      });
      return new PeerEndpoint(server, challenges);
    } catch (error) {
      throw listenError(error, options.at, "--peer-listen");
    }
  }

  get port(): number {
    return this.server.port ?? 0;
  }

  get address(): string {
    return formatHostPort({ host: this.server.hostname ?? "0.0.0.0", port: this.port });
  }

  stop(): void {
    this.server.stop(true);
  }
}

/** `events` with `release` run once its socket closes; the optional handlers stay absent when absent (deliver checks them). */
function releasingOnClose(events: ConnectionEvents, release: () => void): ConnectionEvents {
  return {
    message: (payload) => events.message(payload),
    ...(events.broadcast ? { broadcast: (frame: Uint8Array) => events.broadcast!(frame) } : {}),
    ...(events.bulk ? { bulk: (payload: Uint8Array) => events.bulk!(payload) } : {}),
    close: (reason, code) => {
      release();
      events.close(reason, code);
    },
  };
}
