/**
 * Which machines a client's servers are. Every machine holds the network key,
 * so a client believes a heartbeat from "the main" only when it is sealed
 * under the machine key of the machine at the address its setup names as the
 * main (core/heartbeat-trust.ts). It learns that key by dialling the address:
 * the signed peer handshake proves the machine id and key. It dials at start,
 * and again while it does not hear that server (the machine there may have
 * been replaced), one dial per server at a time. A server under another
 * network key is reported, as NetworkKeyProbe does for a backup. A backup
 * learned from the main (core/routing.ts clientBackup) must prove the machine
 * id the main named; another machine at that address is not believed.
 */
import { formatHostPort, type HostPort } from "../core/config.ts";
import { NO_KNOWN_SERVERS, type KnownServers } from "../core/heartbeat-trust.ts";
import type { ServerRole } from "../core/failover/index.ts";
import type { AuthenticatedPeer } from "../net/channel.ts";
import { NetworkKeyMismatch } from "../net/errors.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import { whoAnswers } from "../net/peer-requests.ts";

export type ServerIdentityEvents = {
  /** The server at `role`'s address proved who it is: its heartbeats are sealed under this key. */
  identified(role: ServerRole, peer: AuthenticatedPeer): void;
  /** A server refused us for another network key (logged and shown, de-duplicated, by the caller). */
  refused(address: string, error: NetworkKeyMismatch): void;
  /** The machine at a learned backup's address proved another id than the main named: not believed. */
  disbelieved(address: string, peer: AuthenticatedPeer, expected: string): void;
};

export class ServerIdentities {
  private ids: KnownServers = NO_KNOWN_SERVERS;
  /** Address each role's id was learned at: a new address forgets it. */
  private readonly learnedAt: Record<ServerRole, string | null> = { main: null, backup: null };
  /** The addresses the setup names now (a dial that ends after a change is about the old one). */
  private readonly current: Record<ServerRole, string | null> = { main: null, backup: null };
  /** The machine id a role must prove (a learned backup's), or null: whichever machine the address proves. */
  private readonly expected: Record<ServerRole, string | null> = { main: null, backup: null };
  private readonly dialling = new Set<string>();
  /** The last machine not believed (address, id, expected id): reported once, not at every dial. */
  private lastDisbelieved: string | null = null;

  constructor(
    private readonly net: PeerDialer,
    private readonly events: ServerIdentityEvents,
  ) {}

  /** The machine ids of the servers, as far as they have proved them. */
  known(): KnownServers {
    return this.ids;
  }

  /**
   * Dials each server whose address is given, unless a dial to it is running.
   * Pass a role when its id is unknown or it has not been heard for a timeout.
   */
  step(due: Partial<Record<ServerRole, HostPort | null>>): void {
    for (const role of ["main", "backup"] as const) {
      const at = due[role];
      if (!at) continue;
      const address = formatHostPort(at);
      if (this.dialling.has(address)) continue;
      this.dialling.add(address);
      whoAnswers(this.net, at, "/app", "Only learning who this server is.").then(
        (peer) => {
          this.dialling.delete(address);
          if (this.current[role] !== null && this.current[role] !== address) return;
          const expected = this.expected[role];
          if (expected !== null && peer.machineId !== expected) return this.disbelieve(address, peer, expected);
          this.ids = { ...this.ids, [role]: peer.machineId };
          this.learnedAt[role] = address;
          this.events.identified(role, peer);
        },
        (error) => {
          this.dialling.delete(address);
          if (error instanceof NetworkKeyMismatch) this.events.refused(address, error);
        },
      );
    }
  }

  private disbelieve(address: string, peer: AuthenticatedPeer, expected: string): void {
    const seen = `${address} ${peer.machineId} ${expected}`;
    if (seen === this.lastDisbelieved) return;
    this.lastDisbelieved = seen;
    this.events.disbelieved(address, peer, expected);
  }

  /**
   * Dials each server whose id is unknown or not heard (`heard`) for a timeout, at the addresses
   * `servers` names now; `expected` the machine id a role must prove (null: any).
   */
  refresh(servers: Record<ServerRole, HostPort | null>, expected: Record<ServerRole, string | null>, heard: (id: string) => boolean): void {
    this.addressesChanged(servers, expected);
    const due = (role: ServerRole): HostPort | null => {
      const id = this.ids[role];
      return id !== null && heard(id) ? null : servers[role];
    };
    this.step({ main: due("main"), backup: due("backup") });
  }

  /** The setup names these addresses now: a role whose address or expected id changed is unknown until dialled again. */
  addressesChanged(servers: Record<ServerRole, HostPort | null>, expected: Record<ServerRole, string | null> = { main: null, backup: null }): void {
    for (const role of ["main", "backup"] as const) {
      const at = servers[role];
      this.current[role] = at === null ? null : formatHostPort(at);
      this.expected[role] = expected[role];
      const wrongId = expected[role] !== null && this.ids[role] !== expected[role];
      if (this.learnedAt[role] !== null && (at === null || formatHostPort(at) !== this.learnedAt[role] || wrongId)) {
        this.ids = { ...this.ids, [role]: null };
        this.learnedAt[role] = null;
      }
    }
  }
}
