/**
 * The peer port other machines (and this machine's local apps) reach. Plain
 * HTTP `GET /identity` says who this machine is (the facts DNS-SD advertises),
 * so a typed address can be checked before pairing; every WebSocket path
 * (`/hub`, `/replicate`, `/app`, `/files`, `/replicate-log`, `/assets`) is
 * authenticated by the peer handshake first. Before any WebSocket exists the
 * upgrade must carry a ticket proving the network key (upgrade-ticket.ts), and
 * the connections still in their handshake are capped (handshake-admission.ts).
 */
import type { Clock } from "../core/clock.ts";
import type { AppError } from "../core/errors.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import { fingerprint } from "../core/keys.ts";
import { HandshakeBusy, HandshakeFailed, NetworkKeyMismatch } from "./errors.ts";
import { UpgradeTickets } from "./upgrade-ticket.ts";
import { DEFAULT_ADMISSION_LIMITS, HandshakeAdmission, RefusalLog, sourceAddress, type AdmissionLimits } from "./handshake-admission.ts";
import { listenError } from "./listen-error.ts";
import { systemClock } from "./system-time.ts";
import { MAX_RPC_FRAME_BYTES } from "./rpc.ts";
import { newServerSocketData, secureServerHandlers, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "./secure-socket.ts";

export type PeerIdentity = { id: string; name: string; role: string; version: string; networkKeyFingerprint: string | null };
export const PEER_PATHS = ["/hub", "/replicate", "/app", "/files", "/replicate-log", "/assets", "/pair", "/console"] as const;
export type PeerPath = (typeof PEER_PATHS)[number];
/** The largest frame after the handshake: an rpc frame (a show-file push) with its envelope. Bun closes the socket (1009) on a larger one. */
export const MAX_PEER_FRAME_BYTES = MAX_RPC_FRAME_BYTES + 64 * 1024;

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
  clock?: Clock;
};

/** What the log says about a refused ticket. */
function ticketRefusal(from: string, why: "no-proof" | "replayed" | "stale" | "busy"): string {
  if (why === "replayed") return `${from} reused an upgrade ticket; refused.`;
  if (why === "stale") return `${from} sent an upgrade ticket made for an earlier run of this machine, or too old; refused (it asks for a new one).`;
  if (why === "busy") return `${from} sent an upgrade ticket while this window's tickets are all taken; refused until the next window.`;
  return `${from} did not prove it holds the network key for this machine; refused before any WebSocket.`;
}

export class PeerEndpoint {
  private readonly server: ReturnType<typeof Bun.serve>;
  readonly admission: HandshakeAdmission;
  private readonly currentTickets: () => UpgradeTickets;

  private constructor(server: ReturnType<typeof Bun.serve>, admission: HandshakeAdmission, currentTickets: () => UpgradeTickets) {
    this.server = server;
    this.admission = admission;
    this.currentTickets = currentTickets;
  }

  /** The upgrade tickets under the network key in force now. */
  get tickets(): UpgradeTickets {
    return this.currentTickets();
  }

  static listen(options: PeerEndpointOptions): PeerEndpoint {
    const refuse: ConnectionEvents = { message() {}, close() {} };
    const clock = options.clock ?? systemClock;
    const admission = new HandshakeAdmission(clock, options.admission ?? DEFAULT_ADMISSION_LIMITS);
    const refusals = new RefusalLog(clock, options.onRefused);
    // Read per upgrade: a network key saved on a running machine applies to the next connection (peer-net.ts setNetworkKey).
    const machine = fingerprint(options.secure.machine.publicKey);
    let keyed = { key: options.secure.networkKey, tickets: new UpgradeTickets(options.secure.networkKey, machine, clock), ours: fingerprint(options.secure.networkKey) };
    const current = () => {
      const key = options.secure.networkKey;
      if (keyed.key !== key) keyed = { key, tickets: new UpgradeTickets(key, machine, clock), ours: fingerprint(key) };
      return keyed;
    };
    try {
      const server = Bun.serve({
        hostname: options.at.host,
        // One process per port: with SO_REUSEPORT a second understudy would share it and requests would alternate.
        reusePort: false,
        port: options.at.port,
        development: false,
        fetch(request, srv) {
          const url = new URL(request.url);
          if (request.method === "GET" && url.pathname === "/identity") return Response.json({ ...options.identity(), ticket: current().tickets.challenge() });
          if ((PEER_PATHS as readonly string[]).includes(url.pathname)) {
            const address = srv.requestIP(request);
            const from = address ? formatHostPort({ host: address.address, port: address.port }) : "unknown";
            // Before any WebSocket exists: without proof of the network key nothing of the connection is ever buffered.
            const { tickets, ours } = current();
            const ticket = tickets.check(request.headers, url.pathname);
            if (!ticket.ok) {
              const error =
                ticket.why === "other-key"
                  ? new NetworkKeyMismatch(from, ticket.theirs, ours)
                  : new HandshakeFailed(from, ticketRefusal(from, ticket.why));
              refusals.refused(from, error);
              return new Response(error.message, { status: 403 });
            }
            if (!admission.open(sourceAddress(from))) {
              refusals.refused(from, new HandshakeBusy(from, "pending"));
              return new Response("Too many connections waiting for their handshake; try again shortly.", { status: 503 });
            }
            const publish = (topic: string, frame: Uint8Array) => srv.publish(topic, frame);
            if (srv.upgrade(request, { data: newServerSocketData(options.secure, from, url.pathname, admission, publish) })) return undefined;
            admission.settled(sourceAddress(from));
            return new Response("This path takes a WebSocket.", { status: 426 });
          }
          return new Response("Not found", { status: 404 });
        },
        websocket: {
          maxPayloadLength: MAX_PEER_FRAME_BYTES,
          ...secureServerHandlers(
            options.secure,
            (connection, path) => {
              const events = options.accept(path as PeerPath, connection);
              if (events) return events;
              connection.close(4003, `This machine does not serve ${path}.`);
              return refuse;
            },
            (address, error) => refusals.refused(address, error),
          ),
        },
      });
      return new PeerEndpoint(server, admission, () => current().tickets);
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
