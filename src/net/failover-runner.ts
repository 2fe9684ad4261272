/**
 * The thin runner around the pure failover core: it owns the tick timer, the
 * UDP heartbeat socket and the epoch file, feeds the core its events and
 * carries out its effects in order (persistEpoch always before anything that
 * announces the epoch). Everything else — hub serving, catch-up, following —
 * is delegated to hooks the node gives it.
 */
import type { Clock } from "../core/clock.ts";
import type { HostPort } from "../core/config.ts";
import {
  otherActiveEpoch,
  startBackup,
  startClient,
  startMain,
  statusChip,
  tickPeriodMs,
  transition,
  type BackupEvent,
  type BeatBody,
  type ClientEvent,
  type Effect,
  type MainEvent,
  type NodeState,
  type Peer,
  type ServerRole,
  type StatusChip,
} from "../core/failover/index.ts";
import type { Failback } from "../core/failover/types.ts";
import type { Timings } from "../core/failure-detector.ts";
import type { Logger } from "../log.ts";
import type { EpochFile } from "../store/epoch-file.ts";
import { newBootId, type Heartbeat } from "./heartbeat.ts";
import type { HeartbeatSocket, UdpEndpoint } from "./heartbeat-socket.ts";

export type FailoverHooks = {
  /** Accept Data Hub writes at this epoch. */
  startServing(epoch: number): void;
  /** Refuse Data Hub writes; hub sessions close so clients move. */
  stopServing(epoch: number): void;
  /** Main only: copy the Data Hub state the backup changed; resolve when done. */
  catchUp(epoch: number): Promise<void>;
  /** Client (and every machine's local apps): connect the hub uplink to this server, or none. */
  follow(server: ServerRole | null, epoch: number | null): void;
};

export type FailoverRunnerOptions = {
  role: "main" | "backup" | "client";
  id: string;
  name: string;
  socket: HeartbeatSocket;
  servers: { main: HostPort | null; backup: HostPort | null };
  timings: Timings;
  failback: Failback;
  /** Servers persist their epoch; clients keep none. */
  epochFile: EpochFile | null;
  hooks: FailoverHooks;
  clock: Clock;
  log: Logger;
  /** Backup: whether an earlier initial copy completed (it starts `idle`, not `syncing`). */
  synced?: boolean;
};

type Event = MainEvent | BackupEvent | ClientEvent;

export type PeerDelay = { id: string; name: string; role: string; address: string; delayMs: number | null; lastHeardMsAgo: number };

export class FailoverRunner {
  private state: NodeState;
  private readonly options: FailoverRunnerOptions;
  private readonly bootId = newBootId();
  private seq = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** Where each machine was last heard from (clients are addressed by id). */
  private readonly peers = new Map<string, { address: UdpEndpoint; name: string; role: string; heardAt: number; echoable: { seq: number; sentAt: number }; delayMs: number | null }>();
  private serverIds: Partial<Record<ServerRole, string>> = {};

  constructor(options: FailoverRunnerOptions) {
    this.options = options;
    const now = options.clock.now();
    const epoch = options.epochFile?.read() ?? 0;
    const timings = options.timings;
    const step =
      options.role === "main"
        ? startMain({ timings, failback: options.failback, paired: options.servers.backup !== null, epoch }, now)
        : options.role === "backup"
          ? startBackup({ timings, paired: options.servers.main !== null, synced: options.synced ?? false, epoch }, now)
          : startClient({ timings, knows: { main: options.servers.main !== null, backup: options.servers.backup !== null } }, now);
    this.state = step.state;
    this.run(step.effects);
    this.followAsMain();
  }

  /** Starts the tick timer. Tests may instead call `tick()` themselves. */
  start(): void {
    this.timer ??= setInterval(() => this.tick(), tickPeriodMs(this.options.timings.heartbeatMs));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  tick(): void {
    this.feed({ type: "tick" });
  }

  feed(event: Event): void {
    const step = transition(this.state as never, event as never, this.options.clock.now()) as { state: NodeState; effects: readonly Effect[] };
    this.state = step.state;
    this.run(step.effects);
    this.followAsMain();
  }

  /** Where a main that does not serve last sent its local apps ("" = nowhere yet). */
  private mainFollows = "";

  /**
   * A main that does not serve (rejoining, standby) is one more client of a
   * backup that serves: its local apps follow the backup's hub until the main
   * serves again (startServing moves them to its own). The core emits `follow`
   * only for clients, so the runner derives it here from the main's state.
   */
  private followAsMain(): void {
    const s = this.state;
    if (s.role !== "main") return;
    if (s.phase.kind === "active") {
      this.mainFollows = "";
      return;
    }
    const epoch = otherActiveEpoch(s, "main", this.options.clock.now());
    const key = epoch === null ? "none" : `backup@${epoch}`;
    if (key === this.mainFollows) return;
    this.mainFollows = key;
    this.options.hooks.follow(epoch === null ? null : "backup", epoch);
  }

  /** A heartbeat arrived on the UDP socket (already authenticated and de-duplicated). */
  onHeartbeat(hb: Heartbeat, from: UdpEndpoint): void {
    const now = this.options.clock.now();
    const known = this.peers.get(hb.id);
    const delayMs = hb.echo && hb.echo.seq > 0 ? Math.max(0, now - hb.echo.sentAt) : (known?.delayMs ?? null);
    this.peers.set(hb.id, { address: from, name: hb.name, role: hb.role, heardAt: now, echoable: { seq: hb.seq, sentAt: hb.sentAt }, delayMs });
    if (hb.role !== "client") this.serverIds[hb.role] = hb.id;
    const beat: BeatBody = {
      role: hb.role,
      state: hb.state as BeatBody["state"],
      epoch: hb.epoch,
      activeEpoch: hb.activeEpoch,
      msSinceHeardMain: hb.msSinceHeardMain,
      msSinceHeardBackup: hb.msSinceHeardBackup,
      condition: hb.condition,
      syncProgress: hb.syncProgress,
    };
    this.feed({ type: "heartbeat", id: hb.id, beat });
  }

  get role(): NodeState["role"] {
    return this.state.role;
  }

  /** For /api/status: the chip, the state, the epoch and the delay to each peer. */
  status(): { chip: StatusChip; state: string; epoch: number; activeEpoch: number | null; peers: PeerDelay[] } {
    const now = this.options.clock.now();
    const s = this.state;
    const beat = this.lastBeat;
    return {
      chip: statusChip(s as never, now),
      state: beat?.state ?? "starting",
      epoch: s.epoch,
      activeEpoch: beat?.activeEpoch ?? null,
      peers: [...this.peers.entries()].map(([id, p]) => ({
        id,
        name: p.name,
        role: p.role,
        address: `${p.address.host}:${p.address.port}`,
        delayMs: p.delayMs,
        lastHeardMsAgo: now - p.heardAt,
      })),
    };
  }

  private lastBeat: BeatBody | null = null;

  private run(effects: readonly Effect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case "persistEpoch":
          this.options.epochFile?.write(effect.epoch);
          break;
        case "send":
          this.lastBeat = effect.beat;
          this.send(effect.to, effect.beat);
          break;
        case "startServing":
          this.options.hooks.startServing(effect.epoch);
          break;
        case "stopServing":
          this.options.hooks.stopServing(effect.epoch);
          break;
        case "startCatchUp":
          this.options.hooks.catchUp(effect.epoch).then(
            () => this.feed({ type: "catchUpDone" }),
            (error) => {
              this.options.log.warn("catch-up failed", { message: (error as Error).message });
              this.feed({ type: "catchUpFailed" });
            },
          );
          break;
        case "follow":
          this.options.hooks.follow(effect.server, effect.epoch);
          break;
        case "log":
          this.options.log[effect.level](effect.message);
          break;
      }
    }
  }

  private send(to: Peer, beat: BeatBody): void {
    const target = this.addressOf(to);
    if (target === null) return;
    const peerId = to.role === "client" ? to.id : this.serverIds[to.role];
    const echo = peerId ? (this.peers.get(peerId)?.echoable ?? null) : null;
    const hb: Heartbeat = {
      ...beat,
      id: this.options.id,
      name: this.options.name,
      seq: ++this.seq,
      sentAt: this.options.clock.now(),
      echo,
      showFileRevision: 0,
      bootId: this.bootId,
    };
    this.options.socket.send(hb, [target]);
  }

  private addressOf(to: Peer): UdpEndpoint | null {
    if (to.role === "client") return this.peers.get(to.id)?.address ?? null;
    return this.options.servers[to.role];
  }

  /** The hub socket to a server broke: an immediate signal, no need to wait for heartbeat silence. */
  linkBroken(peer: ServerRole): void {
    this.feed({ type: "linkBroken", peer });
  }
}
