/**
 * The peer port other machines reach. For now it answers who this machine is
 * (the same facts DNS-SD advertises), so an address typed into "Add Backup
 * server" can be checked before anything is paired. The Data Hub and
 * replication WebSockets mount here.
 */
import { formatHostPort, type HostPort } from "../core/config.ts";
import { listenError } from "./listen-error.ts";

export type PeerIdentity = { id: string; name: string; role: string; version: string; networkKeyFingerprint: string | null };

export class PeerEndpoint {
  private readonly server: ReturnType<typeof Bun.serve>;

  private constructor(server: ReturnType<typeof Bun.serve>) {
    this.server = server;
  }

  static listen(at: HostPort, identity: () => PeerIdentity): PeerEndpoint {
    try {
      const server = Bun.serve({
        hostname: at.host,
        port: at.port,
        development: false,
        fetch(request) {
          const url = new URL(request.url);
          if (request.method === "GET" && url.pathname === "/identity") return Response.json(identity());
          return new Response("Not found", { status: 404 });
        },
      });
      return new PeerEndpoint(server);
    } catch (error) {
      throw listenError(error, at, "--peer-listen");
    }
  }

  get address(): string {
    return formatHostPort({ host: this.server.hostname ?? "0.0.0.0", port: this.server.port ?? 0 });
  }

  stop(): void {
    this.server.stop(true);
  }
}
