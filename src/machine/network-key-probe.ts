/**
 * A client that hears no server cannot tell a server that is down from one
 * under another network key: heartbeats sealed with another key are dropped
 * unread, and the hub uplink only dials a server it heard being active. So
 * after a failover timeout of silence it dials each server's peer port, until
 * one answers: with another key the handshake fails on both sides and both
 * logs name both fingerprints ("peer refused"). Hearing a server resets it.
 */
import { formatHostPort, type HostPort } from "../core/config.ts";
import { NetworkKeyMismatch } from "../net/errors.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import { whoAnswers } from "../net/peer-requests.ts";

export class NetworkKeyProbe {
  /** Servers that answered during the current silence. */
  private readonly answered = new Set<string>();

  constructor(
    private readonly net: PeerDialer,
    /** A server refused us for another network key (logged and shown, de-duplicated, by the caller). */
    private readonly refused: (address: string, error: NetworkKeyMismatch) => void,
  ) {}

  step(hearsAServer: boolean, servers: readonly (HostPort | null)[]): void {
    if (hearsAServer) {
      this.answered.clear();
      return;
    }
    for (const server of servers) {
      if (!server) continue;
      const address = formatHostPort(server);
      if (this.answered.has(address)) continue;
      whoAnswers(this.net, server, "/app", "Only checking the network key.").then(
        () => void this.answered.add(address),
        (error) => {
          if (!(error instanceof NetworkKeyMismatch)) return; // down or unreachable: try again later
          this.answered.add(address);
          this.refused(address, error);
        },
      );
    }
  }
}
