/**
 * Everything a machine runs while it is on the network: the peer port, UDP
 * heartbeats, the failover runner, the app gateway for its local apps, and on
 * servers the Data Hub with its SQLite state and the replication loop. Built
 * for one role; a role change stops it and builds a new one.
 */
import type { Database } from "bun:sqlite";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { AppError } from "./core/errors.ts";
import type { Clock } from "./core/clock.ts";
import { parseHostPort, type Config, type HostPort } from "./core/config.ts";
import type { ServerRole } from "./core/failover/index.ts";
import { HubCore } from "./hub/hub-core.ts";
import type { FromHubFrame, Version } from "./hub/frames.ts";
import type { Logger } from "./log.ts";
import { AppGateway, type InProcessApp } from "./net/app-gateway.ts";
import { FailoverRunner, type PeerDelay } from "./net/failover-runner.ts";
import { HeartbeatSocket } from "./net/heartbeat-socket.ts";
import { NetworkKeyMismatch } from "./net/errors.ts";
import { HubService, replicateAnswerSchema, safeJson } from "./net/hub-service.ts";
import { PeerEndpoint, type PeerIdentity } from "./net/peer-endpoint.ts";
import { connectSecure, type SecureConnection, type SecureSocketOptions } from "./net/secure-socket.ts";
import { databasePath, openDatabase } from "./store/database.ts";
import { EpochFile } from "./store/epoch-file.ts";
import { HubStateStore } from "./store/hub-state-store.ts";
import { createStores, type Stores } from "./store/stores.ts";
import { FilesService, type FilesMode } from "./net/files-service.ts";
import { AssetService, type AssetMode } from "./net/asset-service.ts";
import { LogReplicationSink, LogReplicationSource, type BackupSync } from "./net/log-replication.ts";
import type { MachineIdentity } from "./store/machine-identity.ts";
import { startMqttFrontDoor, type MqttFrontDoor } from "./services/mqtt-front-door.ts";

const systemClock: Clock = { now: () => performance.now() };
const text = new TextEncoder();
const decoder = new TextDecoder();

export type PeerRuntimeOptions = {
  config: Config;
  dataDir: string;
  identity: MachineIdentity;
  networkKey: Uint8Array;
  identityView: () => PeerIdentity;
  log: Logger;
};

export type FailoverStatus = {
  state: string;
  epoch: number;
  activeEpoch: number | null;
  chip: string;
  activeServer: ServerRole | "self" | null;
  hubConnected: boolean;
  queued: number;
  peers: PeerDelay[];
};

export class PeerRuntime {
  readonly endpoint: PeerEndpoint;
  private readonly options: PeerRuntimeOptions;
  private readonly secure: SecureSocketOptions;
  private readonly gateway: AppGateway;
  private readonly hub: HubService | null = null;
  private readonly db: Database | null = null;
  private readonly stores: Stores | null = null;
  private readonly files: FilesService;
  private readonly assetService: AssetService;
  private replicationSource: LogReplicationSource | null = null;
  private replicationSink: LogReplicationSink | null = null;
  private heartbeats: HeartbeatSocket | null = null;
  private runner: FailoverRunner | null = null;
  private replication: ReplicationLoop | null = null;
  private mqtt: MqttFrontDoor | null = null;
  private servers: { main: HostPort | null; backup: HostPort | null };

  private constructor(options: PeerRuntimeOptions) {
    this.options = options;
    const { config, identity, networkKey, log } = options;
    this.secure = { networkKey, machine: identity };
    const isServer = config.role === "server" || config.role === "main" || config.role === "backup";
    if (isServer) {
      this.db = openDatabase(databasePath(options.dataDir));
      this.hub = new HubService(new HubCore({ epoch: new EpochFile(options.dataDir).read(), persistence: new HubStateStore(this.db) }), networkKey, log);
      this.stores = createStores(this.db);
    }
    if (this.stores && (config.role === "main" || config.role === "server")) {
      this.replicationSource = new LogReplicationSource(this.stores, () => config.role === "main" && config.backup !== null, log);
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
      mode: () => this.assetMode().mode,
      assets: this.stores?.assets ?? null,
      forwardTo: () => this.assetMode().to,
      secure: this.secure,
      afterCommit: (seq) => this.replicationSource?.waitApplied(seq, config.syncTimeoutMs) ?? Promise.resolve("none"),
      onChunkStored: (hash, bytes) => this.replicationSource?.offerChunk(hash, bytes),
    });
    this.endpoint = PeerEndpoint.listen({
      at: parseHostPort(config.peerListen)!,
      identity: options.identityView,
      secure: this.secure,
      accept: (path, connection) => {
        if (path === "/app") return this.gateway.acceptApp(connection);
        if (path === "/hub" && this.hub) return this.hub.acceptHub(connection);
        if (path === "/replicate" && this.hub) return this.hub.acceptReplication(connection);
        if (path === "/files") return this.files.accept(connection);
        if (path === "/assets") return this.assetService.accept(connection);
        if (path === "/replicate-log" && this.replicationSource) return this.replicationSource.accept(connection);
        return null;
      },
      onRefused: (address, error) => log.warn("peer refused", { from: address, code: error.code, message: error.message }),
    });
    const self = { host: "127.0.0.1", port: this.endpoint.port };
    const main = config.role === "main" || config.role === "server" ? self : config.main ? parseHostPort(config.main) : null;
    const backup = config.role === "backup" ? self : config.backup ? parseHostPort(config.backup) : null;
    this.servers = { main, backup };
  }

  static async start(options: PeerRuntimeOptions): Promise<PeerRuntime> {
    const runtime = new PeerRuntime(options);
    try {
      runtime.servers = { main: await resolveHost(runtime.servers.main), backup: await resolveHost(runtime.servers.backup) };
      await runtime.startFailover();
      runtime.mqtt = await startMqttFrontDoor(options.config, runtime.gateway, options.log);
    } catch (error) {
      runtime.stop();
      throw error;
    }
    return runtime;
  }

  private async startFailover(): Promise<void> {
    const { config, identity, networkKey, log, dataDir } = this.options;
    const peerAt = parseHostPort(config.peerListen)!;
    this.heartbeats = await HeartbeatSocket.bind({
      host: peerAt.host,
      port: this.endpoint.port,
      networkKey,
      onHeartbeat: (hb, from) => this.runner?.onHeartbeat(hb, from),
      flag: "--peer-listen",
    });
    const role = config.role === "server" ? "main" : (config.role as "main" | "backup" | "client");
    const other = (r: ServerRole) => (r === "main" ? this.servers.main : this.servers.backup);
    const peerServers = {
      main: role === "main" ? null : this.servers.main,
      backup: role === "backup" ? null : this.servers.backup,
    };
    this.runner = new FailoverRunner({
      role,
      id: identity.id,
      name: config.name,
      socket: this.heartbeats,
      servers: role === "client" ? this.servers : { main: role === "backup" ? this.servers.main : null, backup: role === "main" ? peerServers.backup : null },
      timings: { heartbeatMs: config.heartbeatMs, failoverTimeoutMs: config.failoverTimeoutMs },
      failback: config.failback,
      epochFile: role === "client" ? null : new EpochFile(dataDir),
      clock: systemClock,
      log,
      hooks: {
        startServing: (epoch) => {
          this.hub?.startServing(epoch);
          this.gateway.follow({ role: "self" });
          log.info("serving the Data Hub", { epoch });
        },
        stopServing: (epoch) => {
          this.hub?.stopServing();
          const otherRole: ServerRole = role === "main" ? "backup" : "main";
          const address = other(otherRole);
          this.gateway.follow(address && otherRole !== role ? { role: otherRole, address } : null);
          log.info("stopped serving the Data Hub", { epoch });
        },
        catchUp: (epoch) => this.catchUp(epoch),
        follow: (server, epoch) => {
          const address = server ? other(server) : null;
          this.gateway.follow(server && address ? { role: server, address } : null);
          log.info("following", { server, epoch });
        },
      },
    });
    if (role === "backup" && this.servers.main) {
      this.replication = new ReplicationLoop(this.servers.main, this.secure, this.hub!, config.heartbeatMs, log, {
        synced: () => this.runner?.feed({ type: "syncDone" }),
        broken: () => this.runner?.linkBroken("main"),
      });
      this.gateway.follow({ role: "main", address: this.servers.main });
      const hub = this.hub!;
      this.replicationSink = new LogReplicationSink(this.servers.main, this.secure, this.stores!, config.heartbeatMs, log, () => !hub.core.writable);
    }
    this.runner.start();
    if (role === "client") this.knockTimer = setInterval(() => this.knock(), config.failoverTimeoutMs);
    if (this.hub) {
      const hub = this.hub;
      this.trimTimer = setInterval(() => {
        hub.core.trimReplay(systemClock.now());
        hub.announcePresence();
      }, 1000);
    }
  }

  private trimTimer: ReturnType<typeof setInterval> | null = null;
  private knockTimer: ReturnType<typeof setInterval> | null = null;
  /** Servers that answered a knock during the current silence. */
  private readonly knocked = new Set<string>();

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
      const address = `${server.host}:${server.port}`;
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

  /**
   * Where show-file calls go now: the active main serves them; a client or an
   * idle backup forwards to the main; while the backup serves they are refused.
   */
  private filesMode(): FilesMode {
    const role = this.options.config.role;
    const writable = this.hub?.core.writable ?? false;
    if (role === "main" || role === "server") return writable ? { kind: "serve" } : { kind: "read-only" };
    if (role === "backup") return writable || !this.servers.main ? { kind: "read-only" } : { kind: "forward", to: this.servers.main };
    const following = this.gateway.following;
    if (following?.role === "backup") return { kind: "read-only" };
    return this.servers.main ? { kind: "forward", to: this.servers.main } : { kind: "no-server" };
  }

  /**
   * Assets: the active main serves; while the backup serves, its copy answers
   * reads and refuses uploads; clients and an idle backup forward to whichever
   * server is active.
   */
  private assetMode(): { mode: AssetMode; to: string | null } {
    const role = this.options.config.role;
    const writable = this.hub?.core.writable ?? false;
    const address = (at: HostPort | null) => (at ? `${at.host}:${at.port}` : null);
    if (role === "main" || role === "server") return { mode: writable ? "serve" : "read-only", to: null };
    if (role === "backup") return writable ? { mode: "read-only", to: null } : { mode: "forward", to: address(this.servers.main) };
    const following = this.gateway.following;
    return { mode: "forward", to: address(following?.role === "backup" ? this.servers.backup : this.servers.main) };
  }

  /** Main back after the backup served: copy what changed there, then the core decides to take over. */
  private async catchUp(_epoch: number): Promise<void> {
    const backup = this.servers.backup;
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

  /** A local app living in this process (the HTTP API) on this machine's uplink. */
  attachApp(name: string, deliver: (frame: FromHubFrame) => void): InProcessApp {
    return this.gateway.attachApp(name, deliver);
  }

  /** Someone allowed switching back to the main (manual failback). */
  switchBack(): void {
    this.runner?.feed({ type: "switchBack" });
  }

  stop(): void {
    if (this.trimTimer) clearInterval(this.trimTimer);
    if (this.knockTimer) clearInterval(this.knockTimer);
    this.runner?.stop();
    this.replication?.stop();
    this.replicationSink?.stop();
    this.files.close();
    void this.mqtt?.stop();
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
    private readonly main: HostPort,
    private readonly secure: SecureSocketOptions,
    private readonly hub: HubService,
    periodMs: number,
    private readonly log: Logger,
    private readonly signals: { synced: () => void; broken: () => void },
  ) {
    this.timer = setInterval(() => this.step(), periodMs);
  }

  private step(): void {
    if (this.stopped) return;
    if (this.hub.core.writable) return;
    if (this.connection === null) {
      if (this.waiting) return;
      this.waiting = true;
      connectSecure(`${this.main.host}:${this.main.port}`, "/replicate", this.secure, (connection) => ({
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
