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
import { AppError } from "../core/errors.ts";
import type { Clock } from "../core/clock.ts";
import { ackedRetentionMs } from "../hub/acked-writes.ts";
import { formatHostPort, parseHostPort, type Config, type HostPort } from "../core/config.ts";
import type { LicenseDocument } from "../core/license.ts";
import { assetRoute, failoverRole, filesRoute, pairedPeer, type UplinkTarget } from "../core/routing.ts";
import type { Lanes } from "../core/failover/index.ts";
import { HubCore } from "../hub/hub-core.ts";
import type { Logger } from "../log.ts";
import { AppGateway, type InProcessApp } from "../services/app-gateway.ts";
import type { FromHubFrame } from "../hub/frames.ts";
import { startMqttFrontDoor, type MqttFrontDoor } from "../services/mqtt-front-door.ts";
import { FailoverRunner, type PeerDelay } from "./failover-runner.ts";
import { HeartbeatSocket } from "../net/heartbeat-socket.ts";
import { newBootId } from "../net/heartbeat.ts";
import { HubService } from "../services/hub-service.ts";
import { fetchHubStateChanges, HubStateReplication } from "../services/hub-state-replication.ts";
import { PeerEndpoint, type PeerIdentity, type PeerPath } from "../net/peer-endpoint.ts";
import type { ConnectionEvents, SecureConnection, SecureSocketOptions } from "../net/secure-socket.ts";
import { NetworkKeyProbe } from "./network-key-probe.ts";
import { ServerIdentities } from "./server-identities.ts";
import { HeartbeatKeys } from "../net/heartbeat-keys.ts";
import { PairingKeeper } from "./pairing-keeper.ts";
import { neighbourRetransWarning, readNeighbourRetransMs } from "./neighbour-check.ts";
import { databasePath, openDatabase } from "../store/database.ts";
import { EpochFile } from "../store/epoch-file.ts";
import { HubStateStore } from "../store/hub-state-store.ts";
import { PairingFile, type PairingDetails } from "../store/pairing-file.ts";
import { createStores, type Stores } from "../store/stores.ts";
import { startChunkReclaim, type ReclaimLoop } from "../store/chunk-reclaim-loop.ts";
import { storageStatus, type StorageStatus } from "../core/storage-check.ts";
import { diskUsage } from "../store/disk-usage.ts";
import { laneLag, type LaneLag } from "../core/lane-lag.ts";
import { FilesService, type FilesMode } from "../services/files-service.ts";
import { AssetService } from "../services/asset-service.ts";
import { LogReplicationSink, LogReplicationSource, type BackupSync } from "../services/show-file-log-replication.ts";
import { PairingService } from "../services/pairing-service.ts";
import type { MachineIdentity } from "../store/machine-identity.ts";
import type { ChipText, PeerRefusal } from "../core/status.ts";
import { ConsoleActions, PERMISSION_REFRESH_MS } from "./console-actions.ts";
import { fetchShowFileLog, logEntryOf } from "../services/show-file-history.ts";
import type { LogEntry } from "../services/show-file-protocol.ts";

const systemClock: Clock = { now: () => performance.now() };
const systemTimers = {
  every(ms: number, run: () => void): () => void {
    const timer = setInterval(run, ms);
    return () => clearInterval(timer);
  },
};

export type PeerRuntimeOptions = {
  config: Config;
  dataDir: string;
  identity: MachineIdentity;
  networkKey: Uint8Array;
  /** This machine's vendor-signed license (sent as proof when pairing), and the key the other server's is checked with. */
  license: () => LicenseDocument | null;
  vendorPublicKey: Uint8Array;
  identityView: () => PeerIdentity;
  log: Logger;
  /** The machine's own Add Backup server and its removal (they also keep the setup), for level-3 clients asking the main. */
  backupChanges: { add(address: string): Promise<{ peerName: string }>; remove(): Promise<void> };
};

export type FailoverStatus = {
  state: string;
  epoch: number;
  activeEpoch: number | null;
  chip: ChipText;
  chipProgress: number | null;
  localApps: number;
  activeServer: "main" | "backup" | "self" | null;
  hubConnected: boolean;
  queued: number;
  /** Acknowledged messages kept for a resend, and how many were let go before their time. */
  kept: number;
  keptDroppedEarly: number;
  peers: PeerDelay[];
  pairing: PairingDetails | null;
  refusal: PeerRefusal | null;
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
  /** Switch back and permission levels, for the console (machine/console-actions.ts). */
  readonly console: ConsoleActions;
  private replicationSource: LogReplicationSource | null = null;
  private replicationSink: LogReplicationSink | null = null;
  /** Unused chunks (aborted uploads, pushes that never came) given back after the grace period. */
  private reclaim: ReclaimLoop | null = null;
  private heartbeats: HeartbeatSocket | null = null;
  /** Pair keys for heartbeats (net/heartbeat-keys.ts): the paired server's and, on clients, the servers' are pinned. */
  private readonly heartbeatKeys: HeartbeatKeys;
  /** Clients: which machines the servers are, from a signed handshake with their addresses. */
  private readonly serverIdentities: ServerIdentities | null;
  private runner: FailoverRunner | null = null;
  private replication: HubStateReplication | null = null;
  /** Local apps in any language: the MQTT front door on loopback (--mqtt-listen). */
  private mqtt: MqttFrontDoor | null = null;
  /** The addresses the setup names (resolved); the main's backup entry is what pairing aims at. */
  private servers: Servers;
  private timers: (() => void)[] = [];
  /** The main's: keeps the pairing its setup asks for. */
  private keeper: PairingKeeper | null = null;

  private constructor(options: PeerRuntimeOptions) {
    this.options = options;
    const { config, identity, networkKey, log } = options;
    this.role = failoverRole(config.role) as "main" | "backup" | "client";
    this.secure = { networkKey, machine: identity };
    const isServer = this.role !== "client";
    this.pairingFile = isServer ? new PairingFile(options.dataDir) : null;
    this.heartbeatKeys = new HeartbeatKeys(identity, systemClock);
    const pairedKey = this.pairingFile?.peerKey() ?? null;
    if (pairedKey) this.heartbeatKeys.pin(pairedKey);
    this.serverIdentities = isServer
      ? null
      : new ServerIdentities(
          { networkKey, machine: identity },
          {
            identified: (_role, peer) => this.heartbeatKeys.pin(peer.publicKey),
            refused: (address, error) => this.gateway.refusals.failed(address, error, "peer refused"),
          },
        );
    this.console = new ConsoleActions({
      role: this.role,
      dataDir: options.dataDir,
      secure: this.secure,
      failoverState: () => this.runner?.status().state ?? null,
      allowSwitchBack: () => this.runner?.feed({ type: "switchBack" }),
      hearsClient: (id) => this.runner?.status().peers.some((p) => p.id === id && p.role === "client") ?? false,
      heardClients: () =>
        (this.runner?.status().peers ?? [])
          .filter((p) => p.role === "client" && p.lastHeardMsAgo <= options.config.failoverTimeoutMs)
          .map((p) => ({ id: p.id, name: p.name, address: p.address, state: p.state, localApps: p.localApps })),
      mainAddress: () => (this.servers.main ? formatHostPort(this.servers.main) : null),
      backupAddress: () => (this.servers.backup ? formatHostPort(this.servers.backup) : null),
      pairedWith: () => this.pairingFile?.read()?.peerId ?? null,
      backupChanges: options.backupChanges,
    });
    if (isServer) {
      this.db = openDatabase(databasePath(options.dataDir));
      this.hub = new HubService(new HubCore({ epoch: new EpochFile(options.dataDir).read(), persistence: new HubStateStore(this.db) }), networkKey, log);
      this.stores = createStores(this.db);
      this.reclaim = startChunkReclaim(this.stores, config.chunkGraceMs, log);
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
      retainAckedMs: ackedRetentionMs(config),
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
        licenseDocument: () => options.license(),
        vendorPublicKey: () => options.vendorPublicKey,
        now: () => Date.now(),
        peerPort: () => this.endpoint.port,
        expectedMain: () => this.servers.main,
        pairedWith: () => this.pairingFile?.read()?.peerId ?? null,
        pairedKey: () => this.pairingFile?.details()?.peerKey ?? null,
        acceptMain: (peer) => {
          this.heartbeatKeys.pin(peer.peerKey);
          this.pairingFile?.expect({ ...peer, address: this.servers.main ? formatHostPort(this.servers.main) : peer.address });
          this.runner?.feed({ type: "paired", peerId: peer.peerId });
          this.pairingFile?.rememberKey(peer.peerId, peer.peerKey);
          this.runner?.setServers(this.runnerServers());
        },
        dropMain: () => {
          this.runner?.feed({ type: "unpaired" });
          this.runner?.setServers(this.runnerServers());
        },
      },
      this.secure,
      log,
    );
    // The peer port's routing table: each path and the service that takes it (null: not on this role).
    const services: Record<PeerPath, ((c: SecureConnection) => ConnectionEvents) | null> = {
      "/app": (c) => this.gateway.acceptApp(c),
      "/hub": this.hub ? (c) => this.hub!.acceptHub(c) : null,
      "/replicate": this.hub ? (c) => this.hub!.acceptReplication(c) : null,
      "/files": (c) => this.files.accept(c),
      "/assets": (c) => this.assetService.accept(c),
      "/replicate-log": this.replicationSource ? (c) => this.replicationSource!.accept(c) : null,
      "/pair": isServer ? (c) => this.pairing.accept(c) : null,
      "/console": this.console.service,
    };
    this.endpoint = PeerEndpoint.listen({
      at: parseHostPort(config.peerListen)!,
      identity: options.identityView,
      secure: this.secure,
      accept: (path, connection) => services[path]?.(connection) ?? null,
      onRefused: (address, error, suppressed) =>
        log.warn("peer refused", { from: address, code: error.code, message: error.message, ...(suppressed > 0 ? { repeated: suppressed } : {}) }),
    });
    this.servers = { main: parseHostPort(config.main ?? ""), backup: parseHostPort(config.backup ?? "") };
  }

  static async start(options: PeerRuntimeOptions): Promise<PeerRuntime> {
    const runtime = new PeerRuntime(options);
    try {
      runtime.servers = { main: await resolveHost(runtime.servers.main), backup: await resolveHost(runtime.servers.backup) };
      await runtime.startFailover();
      const retransMs = readNeighbourRetransMs();
      const warning = retransMs === null ? null : neighbourRetransWarning(retransMs, options.config.failoverTimeoutMs);
      if (warning) options.log.warn("network setting", { message: warning });
      runtime.mqtt = await startMqttFrontDoor(options.config, runtime.gateway, options.log);
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
    // A backup whose setup names no main follows the one that paired with it (its address was checked then).
    if (this.role === "backup") return { main: this.servers.main ?? parseHostPort(this.pairingFile?.details()?.address ?? ""), backup: null };
    return this.servers;
  }

  private async startFailover(): Promise<void> {
    const { config, identity, networkKey, log, dataDir } = this.options;
    const peerAt = parseHostPort(config.peerListen)!;
    const heartbeats = await HeartbeatSocket.bind({
      host: peerAt.host,
      port: this.endpoint.port,
      networkKey,
      keys: this.heartbeatKeys,
      onHeartbeat: (hb, from, sealedBy) => this.runner?.onHeartbeat(hb, from, sealedBy),
      flag: "--peer-listen",
    });
    this.heartbeats = heartbeats;
    const isServer = this.role !== "client";
    this.runner = new FailoverRunner({
      role: this.role,
      id: identity.id,
      name: config.name,
      boot: newBootId(),
      transport: { send: (hb, to, toId) => void heartbeats.send(hb, [to], toId) },
      servers: this.runnerServers(),
      timings: { heartbeatMs: config.heartbeatMs, failoverTimeoutMs: config.failoverTimeoutMs },
      failback: config.failback,
      epochStore: isServer ? new EpochFile(dataDir) : null,
      pairingStore: this.pairingFile,
      clock: systemClock,
      timers: systemTimers,
      log,
      lanes: isServer ? () => this.lanes() : undefined,
      localApps: () => this.gateway.appCount,
      knownServers: () => this.serverIdentities?.known() ?? { main: null, backup: null },
      keyKnown: (id) => this.heartbeatKeys.forReceiver(id) !== null,
      signer: this.heartbeatKeys,
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
        pairAgain: () => this.keeper?.pairAgain(),
      },
    });
    if (this.role === "backup") {
      const hub = this.hub!;
      const following = () => this.paired() && !hub.core.writable;
      this.replication = new HubStateReplication(() => this.servers.main, this.secure, hub, config.heartbeatMs, following, {
        synced: () => this.runner?.feed({ type: "syncDone" }),
        broken: () => this.runner?.linkBroken("main"),
      });
      if (this.servers.main) {
        this.replicationSink = new LogReplicationSink(this.servers.main, this.secure, this.stores!, config.heartbeatMs, log, following);
      }
    }
    this.runner.start();
    if (this.role === "main") this.keepPaired();
    // A backup that hears no server checks the main's network key, so a mismatch is shown, not silent;
    // a client learns who its servers are (which also shows a mismatch), at once and while it does not hear one.
    if (this.role === "backup") {
      const probe = new NetworkKeyProbe(this.secure, (address, error) => this.gateway.refusals.failed(address, error, "peer refused"));
      this.every(config.failoverTimeoutMs, () => this.probeKeys(probe));
    }
    if (this.serverIdentities) {
      this.identifyServers();
      this.every(config.failoverTimeoutMs, () => this.identifyServers());
    }
    if (this.role !== "main") this.every(PERMISSION_REFRESH_MS, () => this.console.refreshLevel());
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
    return pairedPeer(this.runner?.current ?? null) !== null;
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

  /** The main keeps the pairing its setup asks for (machine/pairing-keeper.ts). */
  private keepPaired(): void {
    const keeper = (this.keeper = new PairingKeeper({
      wanted: () => (this.servers.backup ? formatHostPort(this.servers.backup) : null),
      current: () => this.pairingFile!.details(),
      exchange: this.pairing,
      paired: (peer, address) => {
        this.heartbeatKeys.pin(peer.peerKey);
        this.pairingFile!.expect({ ...peer, address });
        this.runner?.feed({ type: "paired", peerId: peer.peerId });
        this.pairingFile!.rememberKey(peer.peerId, peer.peerKey);
        this.runner?.setServers(this.runnerServers());
      },
      unpaired: () => {
        this.runner?.feed({ type: "unpaired" });
        this.runner?.setServers(this.runnerServers());
      },
      log: this.options.log,
    }));
    keeper.step();
    this.every(250, () => keeper.step());
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
    this.identifyServers();
  }

  /** A client dials each server it does not know yet, or has not heard for a timeout (machine/server-identities.ts). */
  private identifyServers(): void {
    const identities = this.serverIdentities;
    if (!identities || !this.runner) return;
    identities.addressesChanged(this.servers);
    const known = identities.known();
    const peers = this.runner.status().peers;
    const due = (role: "main" | "backup"): HostPort | null => {
      const id = known[role];
      const heard = id !== null && peers.some((p) => p.id === id && p.lastHeardMsAgo < this.options.config.failoverTimeoutMs);
      return heard ? null : this.servers[role];
    };
    identities.step({ main: due("main"), backup: due("backup") });
  }

  /** A backup that hears no server checks the main's network key (machine/network-key-probe.ts). */
  private probeKeys(probe: NetworkKeyProbe): void {
    const heard = this.runner?.status().peers.some((p) => p.role !== "client" && p.lastHeardMsAgo < this.options.config.failoverTimeoutMs);
    probe.step(heard === true, [this.servers.main, this.servers.backup]);
  }

  /** Where show-file calls go now (core/routing.ts filesRoute). */
  private filesMode(): FilesMode {
    const route = filesRoute(this.runner?.current ?? null, systemClock.now(), this.servers.main !== null);
    if (route.kind !== "forward") return route;
    return { kind: "forward", to: this.servers[route.to]! };
  }

  /**
   * The show file's last revisions, for the Synced storage panel: from this
   * server's store, or from the main. `readOnly` while the backup serves
   * (push and pull wait for the main).
   */
  async showFileHistory(limit: number): Promise<{ entries: LogEntry[]; readOnly: boolean }> {
    const route = this.filesMode();
    if (this.stores) return { entries: this.stores.showFile.log(limit).map(logEntryOf), readOnly: route.kind === "read-only" };
    if (route.kind === "forward") return { entries: await fetchShowFileLog(formatHostPort(route.to), this.secure, limit), readOnly: false };
    if (route.kind === "read-only") return { entries: [], readOnly: true };
    throw new AppError("NO_SERVER", "No server answers yet: check the main server's IP on the setup page.", { status: 503 });
  }

  /** Main back after the backup served: copy what changed there, then the core decides to take over. */
  private async catchUp(): Promise<void> {
    const backup = this.runnerServers().backup;
    if (!backup || !this.hub) return;
    const changes = await fetchHubStateChanges(backup, this.secure, this.hub.core.lastVersion);
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
      chipProgress: s.chip.progress,
      localApps: this.gateway.appCount,
      activeServer: following?.role ?? null,
      hubConnected: this.gateway.connected,
      queued: this.gateway.uplink.queuedFrames,
      kept: this.gateway.uplink.ackedKept,
      keptDroppedEarly: this.gateway.uplink.ackedDroppedEarly,
      peers: s.peers,
      pairing: this.pairingFile?.details() ?? null,
      refusal: this.gateway.refusals.current(),
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

  /** The Asset Hub cache and free disk here and on the other server, with the backup's space warning. */
  storageStatus(): StorageStatus | null {
    if (!this.db) return null;
    const here = diskUsage(this.db);
    return this.replicationSink ? storageStatus(this.replicationSink.mainUsage, here) : storageStatus(here, this.replicationSource?.backupUsage ?? null);
  }

  /** Paired servers: how far the backup's copy is behind per lane, from the lanes both announce. */
  replicationLag(): LaneLag | null {
    const s = this.runner?.current;
    if (!s || s.role === "client" || !this.pairingFile?.read()) return null;
    const other = s.other.beat?.lanes ?? null;
    return s.role === "main" ? laneLag(s.lanes, other) : laneLag(other, s.lanes);
  }

  /** Servers: the Data Hub's connections and message counters. */
  hubCounters(): ReturnType<HubService["counters"]> | null {
    return this.hub?.counters() ?? null;
  }

  /** A local app living in this process (the HTTP API) on this machine's uplink. */
  attachApp(name: string, deliver: (frame: FromHubFrame) => void): InProcessApp {
    return this.gateway.attachApp(name, deliver);
  }

  /**
   * Add Backup server (the main's Machines panel): the pairing exchange runs
   * now, so the operator reads a refusal in plain words (PairingRefused)
   * instead of finding it in the log. A paired backup must be removed first.
   */
  async addBackup(address: string): Promise<{ peerName: string }> {
    if (this.role !== "main") throw new BackupChangeRefused("Only the main server adds a backup server.");
    const have = this.pairingFile!.details();
    if (have) throw new BackupChangeRefused(`${have.peerName || have.address} is the backup server now: remove it first, then add another.`);
    const at = await resolveHost(parseHostPort(address));
    const text = formatHostPort(at!);
    const peer = await this.pairing.pair(text);
    this.servers = { ...this.servers, backup: at };
    this.heartbeatKeys.pin(peer.peerKey);
    this.pairingFile!.expect({ ...peer, address: text });
    this.runner?.feed({ type: "paired", peerId: peer.peerId });
    this.runner?.setServers(this.runnerServers());
    return { peerName: peer.peerName };
  }

  /** Removes the paired backup (the delete icon on its row): tells it, then forgets it. */
  async removeBackup(): Promise<void> {
    if (this.role !== "main") throw new BackupChangeRefused("Only the main server removes its backup server.");
    this.servers = { ...this.servers, backup: null };
    const have = this.pairingFile!.details();
    if (!have) return;
    await this.pairing.unpair(have.address);
    this.runner?.feed({ type: "unpaired" });
    this.runner?.setServers(this.runnerServers());
  }

  /** "Forget this main" on the backup's own page: it lets go of its main, which must pair again (and prove itself) to be followed. */
  forgetMain(): void {
    if (this.role !== "backup") throw new BackupChangeRefused("Only a backup server forgets its main.");
    if (!this.pairingFile?.details()) return;
    this.runner?.feed({ type: "unpaired" });
    this.runner?.setServers(this.runnerServers());
  }

  stop(): void {
    for (const stop of this.timers) stop();
    this.reclaim?.stop();
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

export class BackupChangeRefused extends AppError {
  constructor(message: string) {
    super("BACKUP_CHANGE_REFUSED", message, { status: 409 });
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
