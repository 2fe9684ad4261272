/**
 * The peer port other machines (and this machine's local apps) reach. Plain
 * HTTP `GET /identity` says who this machine is (the facts DNS-SD advertises),
 * so a typed address can be checked before pairing; every WebSocket path
 * (`/hub`, `/replicate`, `/app`, `/files`, `/replicate-log`, `/assets`) is
 * authenticated by the peer handshake first.
 */
import type { AppError } from "../core/errors.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import { listenError } from "./listen-error.ts";
import { newServerSocketData, secureServerHandlers, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "./secure-socket.ts";

export type PeerIdentity = { id: string; name: string; role: string; version: string; networkKeyFingerprint: string | null };
export const PEER_PATHS = ["/hub", "/replicate", "/app", "/files", "/replicate-log", "/assets", "/pair", "/console"] as const;
export type PeerPath = (typeof PEER_PATHS)[number];

export type PeerEndpointOptions = {
  at: HostPort;
  identity: () => PeerIdentity;
  secure: SecureSocketOptions;
  /** Handlers for an authenticated connection on `path`, or null to refuse it (e.g. /hub on a client). */
  accept: (path: PeerPath, connection: SecureConnection) => ConnectionEvents | null;
  onRefused: (address: string, error: AppError) => void;
};

export class PeerEndpoint {
  private readonly server: ReturnType<typeof Bun.serve>;

  private constructor(server: ReturnType<typeof Bun.serve>) {
    this.server = server;
  }

  static listen(options: PeerEndpointOptions): PeerEndpoint {
    const refuse: ConnectionEvents = { message() {}, close() {} };
    try {
      const server = Bun.serve({
        hostname: options.at.host,
        port: options.at.port,
        development: false,
        fetch(request, srv) {
          const url = new URL(request.url);
          if (request.method === "GET" && url.pathname === "/identity") return Response.json(options.identity());
          if ((PEER_PATHS as readonly string[]).includes(url.pathname)) {
            const address = srv.requestIP(request);
            const from = address ? formatHostPort({ host: address.address, port: address.port }) : "unknown";
            if (srv.upgrade(request, { data: newServerSocketData(options.secure, from, url.pathname) })) return undefined;
            return new Response("This path takes a WebSocket.", { status: 426 });
          }
          return new Response("Not found", { status: 404 });
        },
        websocket: secureServerHandlers(
          options.secure,
          (connection, path) => {
            const events = options.accept(path as PeerPath, connection);
            if (events) return events;
            connection.close(4003, `This machine does not serve ${path}.`);
            return refuse;
          },
          options.onRefused,
        ),
      });
      return new PeerEndpoint(server);
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
