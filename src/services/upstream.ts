/**
 * A forwarder's connection to the main (show-file and asset calls from a
 * client or an idle backup): one per downstream connection, so what the main
 * keeps per connection (a push's chunk batch) lives and dies with the caller's.
 * Opened on first use, replaced when the main moves, opened again after the
 * main closed it: a ServerLink that dials only when asked.
 */
import { AppError } from "../core/errors.ts";
import type { HostPort } from "../core/config.ts";
import type { PeerDialer, PeerPath } from "../net/peer-net.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { ServerLink } from "../net/server-link.ts";
import { systemTimers } from "../net/system-time.ts";

/** An rpc client over one connection (AssetClient, ShowFileClient). */
export type UpstreamClient = { events(): ConnectionEvents; attach(connection: SecureConnection): unknown; readonly open: boolean; close(): void };

export class Upstream<C extends UpstreamClient> {
  private readonly link: ServerLink<ConnectionEvents & { client: C }>;
  private closed = false;
  /** The main as the last call was told it (each call asks where the main is once). */
  private main: HostPort | null = null;

  constructor(
    net: PeerDialer,
    path: PeerPath,
    newClient: () => C,
    private readonly noMain: () => Error,
  ) {
    this.link = new ServerLink({
      net,
      path,
      target: () => this.main,
      session: (connection) => {
        const client = newClient();
        const events = client.events();
        client.attach(connection);
        return { ...events, client };
      },
      keep: false,
      retryMs: 0,
      timers: systemTimers,
    });
  }

  /** Runs `work` on the connection to `main` (null: none known), opened or replaced as needed. */
  async call<T>(main: HostPort | null, work: (main: C) => Promise<T>): Promise<T> {
    this.main = main;
    if (this.closed) throw new AppError("CONNECTION_LOST", "The connection closed.", { status: 503 });
    const { client } = await this.link.ready(this.noMain);
    return work(client);
  }

  close(): void {
    this.closed = true;
    this.link.stop("done");
  }
}
