/**
 * The Data Hub side of one machine incarnation (docs/design.md §Data Hub, §Lanes
 * and replication), for its role's plan (role-plan.ts):
 * - on a server, its HubService on `/hub` and `/replicate`, with presence and
 *   replay trimming each second, its copy of the other server's state
 *   (machine/server-copy.ts) and the main's catch-up before it serves again;
 * - on every machine, the AppGateway for its local apps, whose uplink follows
 *   the server the core names (core/routing.ts uplinkTarget).
 * The runner's effects (start / stop serving, catch up, uplink), a new network
 * key and a new pairing arrive here. peer-runtime.ts builds it over the
 * system's peer port and disk, the simulator (test/sim/sim-hub.ts) over the
 * in-memory one: both run this one wiring.
 */
import type { Clock, Timers } from "../core/clock.ts";
import type { HostPort } from "../core/config.ts";
import type { NodeEvent, NodeState, ServerRole } from "../core/failover/index.ts";
import { pairedPeer, spareServer, type UplinkTarget } from "../core/routing.ts";
import { HubCore } from "../hub/hub-core.ts";
import type { Version } from "../hub/frames.ts";
import type { HubStatePersistence } from "../hub/retained-state.ts";
import type { Logger } from "../log.ts";
import { partnerOnly } from "./partner-only.ts";
import type { Defer } from "../net/frame-batch.ts";
import type { PeerDialer, PeerService } from "../net/peer-net.ts";
import { AppGateway } from "../services/app-gateway.ts";
import { HubService } from "../services/hub-service.ts";
import { catchUpFrom, type CopyMark, type HubStateReplication } from "../services/hub-state-replication.ts";
import type { RolePlan } from "./role-plan.ts";
import { startHubCopy } from "./server-copy.ts";

/** How often a server announces presence to every member and trims its replay window by age. */
export const PRESENCE_MS = 1000;

/** How far a server copied the server it is paired with (store/copy-mark-file.ts): one mark, for one peer. */
export type CopyMarks = { read(peerId: string): Version | null; write(peerId: string, through: Version): void };

/** What the Data Hub side tells the runner: the copy's first complete answer, a broken link to a server. */
export type RunnerInbox = { feed(event: NodeEvent): void; linkBroken(role: ServerRole): void };

export type DataHubPartsOptions = {
  plan: RolePlan;
  node: { id: string; name: string };
  /** Dials the other machines' peer ports. */
  net: PeerDialer;
  /** Serves a path on this machine's peer port. */
  serve: (service: PeerService) => void;
  networkKey: Uint8Array;
  /** A server's retained state (its disk), the epoch it last served at and its copy marks; null on a client. */
  hubState: { persistence: HubStatePersistence; epoch: number; copyMarks: CopyMarks; streamId?: string } | null;
  /** The core's state now (null before the runner runs). */
  current: () => NodeState | null;
  /** Where a server is now, as heartbeats go to it: the copy and the catch-up dial it. */
  serverAt: (role: ServerRole) => HostPort | null;
  /** Where the local apps' uplink reaches a server (the setup's address), null while it knows none. */
  followAt: (role: ServerRole) => HostPort | null;
  runner: RunnerInbox;
  /** The copy asks once per heartbeat. */
  heartbeatMs: number;
  /** How long acknowledged writes are kept for a resend (hub/acked-writes.ts ackedRetentionMs). */
  retainAckedMs: number;
  log: Logger;
  clock: Clock;
  timers: Timers;
  /** The end of the event loop's turn (frame batching); the system's by default. */
  defer?: Defer;
  /** Refusal back-off jitter; Math.random by default. */
  random?: () => number;
};

export class DataHubParts {
  /** A server's Data Hub; null on a client. */
  readonly hub: HubService | null;
  readonly gateway: AppGateway;
  private readonly replication: HubStateReplication | null;
  private readonly mark: CopyMark | null;
  private readonly stopPresence: () => void;
  /** The server the local apps' uplink followed last (core/routing.ts spareServer); whom it follows now is the gateway's. */
  private lastFollowed: ServerRole | null = null;

  constructor(private readonly o: DataHubPartsOptions) {
    const state = o.hubState;
    const hub = (this.hub = state ? new HubService(new HubCore({ epoch: state.epoch, persistence: state.persistence, streamId: state.streamId }), o.networkKey, o.log, { defer: o.defer }) : null);
    // The mark is kept for the server paired with now: a new partner is copied from the start.
    this.mark = state ? pairedMark(state.copyMarks, () => pairedPeer(o.current())) : null;
    if (hub) {
      o.serve({ path: "/hub", accept: (c) => hub.acceptHub(c) });
      o.serve(partnerOnly({ path: "/replicate", accept: (c) => hub.acceptReplication(c) }, o.current, o.log, () => o.clock.now()));
    }
    this.gateway = new AppGateway({
      node: o.node,
      net: o.net,
      networkKey: o.networkKey,
      log: o.log,
      onLinkBroken: (role) => o.runner.linkBroken(role),
      localHub: () => this.hub,
      random: o.random,
      retainAckedMs: o.retainAckedMs,
      spareAt: () => {
        const state = o.current();
        const role = state === null ? null : spareServer(state.role, this.gateway.following?.role ?? null, this.lastFollowed);
        return role === null ? null : o.followAt(role);
      },
      clock: o.clock,
      timers: o.timers,
      defer: o.defer,
    });
    this.replication =
      hub && this.mark && o.plan.copiesHubState
        ? startHubCopy({
            net: o.net,
            current: o.current,
            serverAt: o.serverAt,
            hub,
            mark: this.mark,
            periodMs: o.heartbeatMs,
            // The copy's refusals are the gateway's: one back-off per server, and the refusal the status shows.
            refusals: this.gateway.refusals,
            timers: o.timers,
            mainSynced: () => o.runner.feed({ type: "syncDone" }),
            mainBroken: () => o.runner.linkBroken("main"),
          })
        : null;
    this.stopPresence = hub
      ? o.timers.every(PRESENCE_MS, () => {
          hub.core.trimReplay(o.clock.now());
          hub.announcePresence();
        })
      : () => {};
  }

  /** The runner's startServing: the hub accepts writes at this epoch. */
  startServing(epoch: number): void {
    this.markWhereServingBegan();
    this.hub?.startServing(epoch);
    this.o.log.info("serving the Data Hub", { epoch });
  }

  /** The runner's stopServing: the hub refuses writes and closes its sessions, so every node moves. */
  stopServing(epoch: number): void {
    this.hub?.stopServing();
    this.o.log.info("stopped serving the Data Hub", { epoch });
  }

  /**
   * A main that begins serving owing the backup's latest writes (the core's active phase: catchUp not done),
   * never having copied from this backup, keeps where it stood as its copy mark: its own writes of this term
   * are newer than those it lacks, so a later catch-up, after a restart too, asks since here, not since its
   * own newest version, and no whole state is asked for and parsed while it serves.
   */
  private markWhereServingBegan(): void {
    const s = this.o.current();
    if (!this.hub || !this.mark || this.mark.read() !== null) return;
    if (s?.role !== "main" || s.phase.kind !== "active" || s.phase.catchUp.kind === "done") return;
    this.mark.write(this.hub.core.lastVersion);
  }

  /** The runner's catchUp (a main back after the backup served, or serving without its latest writes): what changed there since the copy mark, imported. */
  async catchUp(): Promise<void> {
    const backup = this.o.serverAt("backup");
    if (!backup || !this.hub || !this.mark) return;
    await catchUpFrom(this.o.net, backup, this.hub, this.mark, this.o.timers);
  }

  /** The runner's uplink: the local apps' uplink moves where the core says, at the address this machine knows for it. */
  follow(target: UplinkTarget): void {
    if (target.server === "main" || target.server === "backup") this.lastFollowed = target.server;
    if (target.server === "self") return this.gateway.follow({ role: "self" });
    const address = target.server === null ? null : this.o.followAt(target.server);
    this.gateway.follow(target.server !== null && address ? { role: target.server, address } : null);
    this.o.log.info("following", { server: target.server, epoch: target.epoch });
  }

  /**
   * A new network key: the hub keeps serving but closes its sessions, the local apps reconnect, and
   * the copy starts afresh under it (the caller's peer port has taken it already).
   */
  setNetworkKey(networkKey: Uint8Array): void {
    this.hub?.setNetworkKey(networkKey);
    this.gateway.setNetworkKey(networkKey);
    this.replication?.restart();
  }

  /** A new pairing: the copy starts afresh, so its first complete copy is reported for this pairing, not the last one. */
  pairingChanged(): void {
    this.replication?.restart();
  }

  stop(): void {
    this.stopPresence();
    this.replication?.stop();
    this.gateway.stop();
    this.hub?.closeAll();
  }
}

function pairedMark(marks: CopyMarks, pairedWith: () => string | null): CopyMark {
  return {
    read: () => {
      const peer = pairedWith();
      return peer === null ? null : marks.read(peer);
    },
    write: (through) => {
      const peer = pairedWith();
      if (peer !== null) marks.write(peer, through);
    },
  };
}
