/**
 * Everything a machine runs while it is on the network: the peer port, UDP
 * heartbeats, the failover runner, the app gateway for its local apps, and on
 * servers the Data Hub with its SQLite state, pairing and the replication
 * loops. Who serves, who follows whom and where calls go are decided by the
 * core (through the runner and core/routing.ts); this file only wires. Server
 * addresses and pairing change in place (`updateServers`); only a role change
 * builds a new one.
 */
import type { Database } from "bun:sqlite";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { AppError } from "./core/errors.ts";
import type { Clock } from "./core/clock.ts";
import { formatHostPort, parseHostPort, type Config, type HostPort } from "./core/config.ts";
import type { LicenseType } from "./core/license.ts";
import { assetRoute, failoverRole, filesRoute, type UplinkTarget } from "./core/routing.ts";
import type { Lanes } from "./core/failover/index.ts";
import { HubCore } from "./hub/hub-core.ts";
import type { Version } from "./hub/frames.ts";
import type { Logger } from "./log.ts";
import { AppGateway } from "./net/app-gateway.ts";
import { FailoverRunner, type PeerDelay } from "./machine/failover-runner.ts";
import { HeartbeatSocket } from "./net/heartbeat-socket.ts";
import { newBootId } from "./net/heartbeat.ts";
import { NetworkKeyMismatch } from "./net/errors.ts";
import { HubService, replicateAnswerSchema, safeJson } from "./net/hub-service.ts";
import { PeerEndpoint, type PeerIdentity } from "./net/peer-endpoint.ts";
import { connectSecure, type SecureConnection, type SecureSocketOptions } from "./net/secure-socket.ts";
import { databasePath, openDatabase } from "./store/database.ts";
import { EpochFile } from "./store/epoch-file.ts";
import { HubStateStore } from "./store/hub-state-store.ts";
import { PairingFile, type PairingDetails } from "./store/pairing-file.ts";
import { createStores, type Stores } from "./store/stores.ts";
import { FilesService, type FilesMode } from "./net/files-service.ts";
import { AssetService } from "./net/asset-service.ts";
import { LogReplicationSink, LogReplicationSource, type BackupSync } from "./net/log-replication.ts";
import { PairingService } from "./services/pairing-service.ts";
import type { MachineIdentity } from "./store/machine-identity.ts";

const systemClock: Clock = { now: () => performance.now() };
const systemTimers = {
  every(ms: number, run: () => void): () => void {
    const timer = setInterval(run, ms);
    return () => clearInterval(timer);
  },
};
const text = new TextEncoder();
const decoder = new TextDecoder();

/** How often the main retries pairing with the backup its setup names, at most. */
const PAIRING_RETRY_MAX_MS = 5000;

export type PeerRuntimeOptions = {
  config: Config;
  dataDir: string;
  identity: MachineIdentity;
  networkKey: Uint8Array;
  license: () => LicenseType | null;
  identityView: () => PeerIdentity;
  log: Logger;
};

export type FailoverStatus = {
  state: string;
  epoch: number;
  activeEpoch: number | null;
  chip: string;
  activeServer: "main" | "backup" | "self" | null;
  hubConnected: boolean;
  queued: number;
  peers: PeerDelay[];
  pairing: PairingDetails | null;
};

type Servers = { main: HostPort | null; backup: HostPort | null };

export class PeerRuntime {
  readonly endpoint: PeerEndpoint;
  private readonly options: PeerRuntimeOptions;
  private readonly role: "main" | "backup" | "client";
  private readonly secure: SecureSocketOptions;
  private readonly gateway: AppGateway;
  private readonly hub: HubService | null = null;
  private readonly db: Database | null = null;
  private readonly stores: Stores | null = null;
  private readonly files: FilesService;
  private readonly assetService: AssetService;
  private readonly pairingFile: PairingFile | null;
  private readonly pairing: PairingService;
  private replicationSource: LogReplicationSource | null = null;
  private replicationSink: LogReplicationSink | null = null;
  private heartbeats: HeartbeatSocket | null = null;
  private runner: FailoverRunner | null = null;
  private replication: ReplicationLoop | null = null;
  /** The addresses the setup names (resolved); the main's backup entry is what pairing aims at. */
  private servers: Servers;
  private timers: (() => void)[] = [];

  private constructor(options: PeerRuntimeOptions) {
    this.options = options;
    const { config, identity, networkKey, log } = options;
    this.role = failoverRole(config.role) as "main" | "backup" | "client";
    this.secure = { networkKey, machine: identity };
    const isServer = this.role !== "client";
    this.pairingFile = isServer ? new PairingFile(options.dataDir) : null;
    if (isServer) {
      this.db = openDatabase(databasePath(options.dataDir));
      this.hub = new HubService(new HubCore({ epoch: new EpochFile(options.dataDir).read(), persistence: new HubStateStore(this.db) }), networkKey, log);
      this.stores = createStores(this.db);
    }
    if (this.stores && this.role === "main") {
      this.replicationSource = new LogReplicationSource(this.stores, () => this.paired(), log);
    }
    this.files = new FilesService({
      mode: () => this.filesMode(),
      stores: this.stores,
      replication: this.replicationSource,
      syncTimeoutMs: config.syncTimeoutMs,
      secure: this.secure,
    });
    this.gateway = new AppGateway({
      node: { id: identity.id, name: config.name },
      secure: this.secure,
      log,
      onLinkBroken: (role) => this.runner?.linkBroken(role),
      localHub: () => this.hub,
    });
    this.assetService = new AssetService({
      mode: () => assetRoute(this.runner?.current ?? null, systemClock.now()).mode,
      assets: this.stores?.assets ?? null,
      forwardTo: () => this.addressOf(assetRoute(this.runner?.current ?? null, systemClock.now()).to),
      secure: this.secure,
      afterCommit: (seq) => this.replicationSource?.waitApplied(seq, config.syncTimeoutMs) ?? Promise.resolve("none"),
      onChunkStored: (hash, bytes) => this.replicationSource?.offerChunk(hash, bytes),
    });
    this.pairing = new PairingService(
      {
        name: () => config.name,
        role: () => this.role,
        license: () => options.license(),
        expectedMainHost: () => this.servers.main?.host ?? null,
        pairedWith: () => this.pairingFile?.read()?.peerId ?? null,
        acceptMain: (peer) => {
          this.pairingFile?.expect({ ...peer, address: this.servers.main ? formatHostPort(this.servers.main) : peer.address });
          this.runner?.feed({ type: "paired", peerId: peer.peerId });
        },
        dropMain: () => this.runner?.feed({ type: "unpaired" }),
      },
      this.secure,
      log,
    );
    const services: Record<string, ((c: SecureConnection) => ReturnType<AppGateway["acceptApp"]>) | null> = {
      "/app": (c) => this.gateway.acceptApp(c),
      "/hub": this.hub ? (c) => this.hub!.acceptHub(c) : null,
      "/replicate": this.hub ? (c) => this.hub!.acceptReplication(c) : null,
      "/files": (c) => this.files.accept(c),
      "/assets": (c) => this.assetService.accept(c),
      "/replicate-log": this.replicationSource ? (c) => this.replicationSource!.accept(c) : null,
      "/pair": isServer ? (c) => this.pairing.accept(c) : null,
    };
    this.endpoint = PeerEndpoint.listen({
      at: parseHostPort(config.peerListen)!,
      identity: options.identityView,
      secure: this.secure,
      accept: (path, connection) => services[path]?.(connection) ?? null,
      onRefused: (address, error) => log.warn("peer refused", { from: address, code: error.code, message: error.message }),
    });
    this.servers = { main: parseHostPort(config.main ?? ""), backup: parseHostPort(config.backup ?? "") };
  }

  static async start(options: PeerRuntimeOptions): Promise<PeerRuntime> {
    const runtime = new PeerRuntime(options);
    try {
      runtime.servers = { main: await resolveHost(runtime.servers.main), backup: await resolveHost(runtime.servers.backup) };
      await runtime.startFailover();
    } catch (error) {
      runtime.stop();
      throw error;
    }
    return runtime;
  }

  /** Where the runner sends heartbeats: its own role's entry is not used; the main's backup is the paired one. */
  private runnerServers(): Servers {
    if (this.role === "main") {
      const paired = this.pairingFile?.details();
      return { main: null, backup: paired?.address ? parseHostPort(paired.address) : null };
    }
    if (this.role === "backup") return { main: this.servers.main, backup: null };
    return this.servers;
  }

  private async startFailover(): Promise<void> {
    const { config, identity, networkKey, log, dataDir } = this.options;
    const peerAt = parseHostPort(config.peerListen)!;
    const heartbeats = await HeartbeatSocket.bind({
      host: peerAt.host,
      port: this.endpoint.port,
      networkKey,
      onHeartbeat: (hb, from) => this.runner?.onHeartbeat(hb, from),
      flag: "--peer-listen",
    });
    this.heartbeats = heartbeats;
    const isServer = this.role !== "client";
    this.runner = new FailoverRunner({
      role: this.role,
      id: identity.id,
      name: config.name,
      boot: newBootId(),
      transport: { send: (hb, to) => void heartbeats.send(hb, [to]) },
      servers: this.runnerServers(),
      timings: { heartbeatMs: config.heartbeatMs, failoverTimeoutMs: config.failoverTimeoutMs },
      failback: config.failback,
      epochStore: isServer ? new EpochFile(dataDir) : null,
      pairingStore: this.pairingFile,
      clock: systemClock,
      timers: systemTimers,
      log,
      lanes: isServer ? () => this.lanes() : undefined,
      hooks: {
        startServing: (epoch) => {
          this.hub?.startServing(epoch);
          log.info("serving the Data Hub", { epoch });
        },
        stopServing: (epoch) => {
          this.hub?.stopServing();
          log.info("stopped serving the Data Hub", { epoch });
        },
        catchUp: (_epoch, done) => {
          this.catchUp().then(
            () => done(true),
            (error) => done(false, (error as Error).message),
          );
        },
        uplink: (target) => this.followUplink(target),
      },
    });
    if (this.role === "backup") {
      const hub = this.hub!;
      const following = () => this.paired() && !hub.core.writable;
      this.replication = new ReplicationLoop(() => this.servers.main, this.secure, hub, config.heartbeatMs, following, {
        synced: () => this.runner?.feed({ type: "syncDone" }),
        broken: () => this.runner?.linkBroken("main"),
      });
      if (this.servers.main) {
        this.replicationSink = new LogReplicationSink(this.servers.main, this.secure, this.stores!, config.heartbeatMs, log, following);
      }
    }
    this.runner.start();
    if (this.role === "main") this.keepPaired();
    if (this.role === "client") this.every(config.failoverTimeoutMs, () => this.knock());
    if (this.hub) {
      const hub = this.hub;
      this.every(1000, () => {
        hub.core.trimReplay(systemClock.now());
        hub.announcePresence();
      });
    }
  }

  private every(ms: number, run: () => void): void {
    this.timers.push(systemTimers.every(ms, run));
  }

  private paired(): boolean {
    return this.runner?.current.role !== "client" && (this.runner?.current as { peerId?: string | null } | undefined)?.peerId != null;
  }

  /** The replication lanes this server holds (core/failover/lanes.ts). */
  private lanes(): Lanes | null {
    if (!this.hub || !this.stores) return null;
    const version = this.hub.core.lastVersion;
    const log = this.stores.log.position();
    return { hubEpoch: version.epoch, hubSeq: version.seq, logId: log.logId, logSeq: log.lastSeq };
  }

  private addressOf(role: "main" | "backup" | null): string | null {
    const at = role === null ? null : this.servers[role];
    return at ? formatHostPort(at) : null;
  }

  /** Moves the local apps' uplink where the core says (core/routing.ts uplinkTarget). */
  private followUplink(target: UplinkTarget): void {
    if (target.server === "self") return this.gateway.follow({ role: "self" });
    const address = target.server === null ? null : this.servers[target.server];
    this.gateway.follow(target.server !== null && address ? { role: target.server, address } : null);
    this.options.log.info("following", { server: target.server, epoch: target.epoch });
  }

  /**
   * The main keeps the pairing its setup asks for: with the backup named there
   * it runs the exchange until it succeeds (a pairing error is logged once per
   * distinct message); with none named it removes a backup it had.
   */
  private keepPaired(): void {
    let busy = false;
    let retryAt = 0;
    let delay = 1000;
    let lastError = "";
    const attempt = async () => {
      const want = this.servers.backup ? formatHostPort(this.servers.backup) : null;
      const have = this.pairingFile!.details();
      if (have && have.address !== want) {
        await this.pairing.unpair(have.address);
        this.runner?.feed({ type: "unpaired" });
        this.runner?.setServers(this.runnerServers());
      }
      if (want === null || (have && have.address === want)) return;
      const peer = await this.pairing.pair(want);
      this.pairingFile!.expect({ ...peer, address: want });
      this.runner?.feed({ type: "paired", peerId: peer.peerId });
      this.runner?.setServers(this.runnerServers());
      this.options.log.info("paired with the backup", { backup: peer.peerName, id: peer.peerId, address: want });
    };
    const step = () => {
      if (busy || performance.now() < retryAt) return;
      busy = true;
      attempt().then(
        () => {
          busy = false;
          delay = 1000;
          lastError = "";
        },
        (error) => {
          busy = false;
          const message = (error as Error).message;
          if (message !== lastError) this.options.log.warn("pairing with the backup failed", { message });
          lastError = message;
          retryAt = performance.now() + delay * (0.75 + Math.random() / 2);
          delay = Math.min(PAIRING_RETRY_MAX_MS, delay * 2);
        },
      );
    };
    step();
    this.every(250, step);
  }

  /**
   * New server addresses from the setup pages, applied without dropping the
   * Data Hub: the main re-pairs (keepPaired), a backup accepts the new main,
   * a client learns which servers it knows. Unchanged addresses change nothing.
   */
  async updateServers(main: string | null, backup: string | null): Promise<void> {
    const next = { main: await resolveHost(parseHostPort(main ?? "")), backup: await resolveHost(parseHostPort(backup ?? "")) };
    this.servers = next;
    this.runner?.setServers(this.runnerServers());
  }

  private knocked = new Set<string>();

  /**
   * A client that hears no server cannot tell a server that is down from one
   * under another network key: heartbeats sealed with another key are dropped
   * unread, and the hub uplink only dials a server it heard being active. So
   * after a failover timeout of silence it dials each server's peer port, until
   * one answers: with another key the handshake fails on both sides and both
   * logs name both fingerprints ("peer refused"). Hearing a server resets it.
   */
  private knock(): void {
    const { config, log } = this.options;
    const heard = this.runner?.status().peers.some((p) => p.role !== "client" && p.lastHeardMsAgo < config.failoverTimeoutMs);
    if (heard) {
      this.knocked.clear();
      return;
    }
    for (const server of [this.servers.main, this.servers.backup]) {
      if (!server) continue;
      const address = formatHostPort(server);
      if (this.knocked.has(address)) continue;
      connectSecure(address, "/app", this.secure, () => ({ message() {}, close() {} })).then(
        (connection) => {
          this.knocked.add(address);
          connection.close(1000, "Only checking the network key.");
        },
        (error) => {
          if (!(error instanceof NetworkKeyMismatch)) return; // down or unreachable: knock again later
          this.knocked.add(address);
          log.warn("peer refused", { from: address, code: error.code, message: error.message });
        },
      );
    }
  }

  /** Where show-file calls go now (core/routing.ts filesRoute). */
  private filesMode(): FilesMode {
    const route = filesRoute(this.runner?.current ?? null, systemClock.now(), this.servers.main !== null);
    if (route.kind !== "forward") return route;
    return { kind: "forward", to: this.servers[route.to]! };
  }

  /** Main back after the backup served: copy what changed there, then the core decides to take over. */
  private async catchUp(): Promise<void> {
    const backup = this.runnerServers().backup;
    if (!backup || !this.hub) return;
    const changes = await fetchChanges(backup, this.secure, this.hub.core.lastVersion);
    this.hub.importChanges(changes);
  }

  status(): FailoverStatus | null {
    if (!this.runner) return null;
    const s = this.runner.status();
    const following = this.gateway.following;
    return {
      state: s.state,
      epoch: s.epoch,
      activeEpoch: s.activeEpoch,
      chip: s.chip.text,
      activeServer: following?.role ?? null,
      hubConnected: this.gateway.connected,
      queued: this.gateway.uplink.queuedFrames,
      peers: s.peers,
      pairing: this.pairingFile?.details() ?? null,
    };
  }

  /** The show file's head and the backup's copy, for the status chip and the Machines panel. */
  showFileStatus(): { head: number; backup: BackupSync } | null {
    if (!this.stores) return null;
    const head = this.stores.showFile.head();
    if (this.replicationSource) return { head, backup: this.replicationSource.status() };
    if (this.replicationSink) {
      const progress = this.replicationSink.progress;
      return { head, backup: { state: progress === null ? "in-sync" : "syncing", behindBy: 0, progress } };
    }
    return { head, backup: { state: "none", behindBy: 0, progress: null } };
  }

  /** Someone allowed switching back to the main (manual failback). */
  switchBack(): void {
    this.runner?.feed({ type: "switchBack" });
  }

  stop(): void {
    for (const stop of this.timers) stop();
    this.runner?.stop();
    this.replication?.stop();
    this.replicationSink?.stop();
    this.files.close();
    this.gateway.stop();
    this.hub?.closeAll();
    this.heartbeats?.close();
    this.endpoint.stop();
    this.db?.close();
  }
}

/** UDP heartbeats need an IP address: a host name typed for --main/--backup is resolved once at start. */
async function resolveHost(at: HostPort | null): Promise<HostPort | null> {
  if (at === null || isIP(at.host) !== 0) return at;
  try {
    const { address } = await lookup(at.host);
    return { host: address, port: at.port };
  } catch (error) {
    throw new AppError("HOST_UNKNOWN", `Cannot find the address of "${at.host}": use its IP address, or check the name on the network.`, { cause: error });
  }
}

/** One request on /replicate: what changed since `version`. */
async function fetchChanges(at: HostPort, secure: SecureSocketOptions, version: Version) {
  let answer: (value: unknown) => void = () => {};
  const got = new Promise<unknown>((resolve) => (answer = resolve));
  const connection = await connectSecure(`${at.host}:${at.port}`, "/replicate", secure, () => ({
    message: (payload) => answer(safeJson(decoder.decode(payload))),
    close: () => answer(null),
  }));
  connection.send(text.encode(JSON.stringify({ type: "since", version })));
  const parsed = replicateAnswerSchema.safeParse(await Promise.race([got, Bun.sleep(5000).then(() => null)]));
  connection.close(1000, "done");
  if (!parsed.success) throw new Error(`${at.host}:${at.port} did not send its Data Hub state.`);
  return parsed.data.changes;
}

/**
 * The standby's copy of the main's Data Hub state: every heartbeat period it
 * asks "what changed since my last version" on one held-open connection. That
 * connection breaking is the immediate "main is down" signal.
 */
class ReplicationLoop {
  private connection: SecureConnection | null = null;
  private timer: ReturnType<typeof setInterval>;
  private waiting = false;
  private syncedOnce = false;
  private stopped = false;

  constructor(
    private readonly main: () => HostPort | null,
    private readonly secure: SecureSocketOptions,
    private readonly hub: HubService,
    periodMs: number,
    /** Only while paired and not serving: an unpaired backup copies nothing. */
    private readonly following: () => boolean,
    private readonly signals: { synced: () => void; broken: () => void },
  ) {
    this.timer = setInterval(() => this.step(), periodMs);
  }

  private step(): void {
    if (this.stopped) return;
    const main = this.main();
    if (!this.following() || main === null) {
      this.connection?.close(1000, "not following");
      this.connection = null;
      return;
    }
    if (this.connection === null) {
      if (this.waiting) return;
      this.waiting = true;
      connectSecure(formatHostPort(main), "/replicate", this.secure, (connection) => ({
        message: (payload) => {
          this.waiting = false;
          const parsed = replicateAnswerSchema.safeParse(safeJson(decoder.decode(payload)));
          if (!parsed.success) return;
          this.hub.importChanges(parsed.data.changes);
          if (!this.syncedOnce) {
            this.syncedOnce = true;
            this.signals.synced();
          }
        },
        close: () => {
          if (this.connection !== connection) return;
          this.connection = null;
          this.waiting = false;
          this.syncedOnce = false;
          if (!this.stopped) this.signals.broken();
        },
      })).then(
        (connection) => {
          this.connection = connection;
          this.waiting = false;
        },
        () => {
          this.waiting = false;
        },
      );
      return;
    }
    if (this.waiting) return;
    this.waiting = true;
    this.connection.send(text.encode(JSON.stringify({ type: "since", version: this.hub.core.lastVersion })));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.connection?.close(1000, "stopping");
  }
}
