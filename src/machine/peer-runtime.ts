/**
 * Everything a machine runs while it is on the network: the peer port (one
 * PeerNet), UDP heartbeats, the failover runner, the app gateway for its local
 * apps, and what its role's plan adds (role-plan.ts): on servers the Data Hub
 * with its SQLite state and pairing, on the main the feed to its backup, on
 * the backup the copy loops. The Data Hub side (the hub, its copy, the
 * catch-up, the gateway and its uplink) is data-hub-parts.ts, the same object
 * the simulator runs. Who serves, who follows whom, where heartbeats
 * and calls go and when the backup copies are decided by the core (through
 * the runner and core/routing.ts); this file only wires. Server addresses,
 * pairing and the network key change in place; only a role change builds a
 * new runtime.
 */
import { ackedRetentionMs } from "../hub/acked-writes.ts";
import { formatHostPort, parseHostPort, type Config, type HostPort } from "../core/config.ts";
import { sameNetworkKey } from "../core/keys.ts";
import { heardWithin } from "../core/heard.ts";
import type { LicenseDocument } from "../core/license.ts";
import { assetRoute, failoverRole, filesRoute, heartbeatTargets, pairedPeer, showFileReadOnly, type ServerAddresses } from "../core/routing.ts";
import type { Role } from "../core/failover/index.ts";
import type { Logger } from "../log.ts";
import type { InProcessApp } from "../services/app-gateway.ts";
import type { FromHubFrame } from "../hub/frames.ts";
import { startMqttFrontDoor, type MqttFrontDoor } from "../services/mqtt-front-door.ts";
import { FailoverRunner } from "./failover-runner.ts";
import { HeartbeatSocket } from "../net/heartbeat-socket.ts";
import { newBootId } from "../net/heartbeat.ts";
import type { PeerIdentity } from "../net/peer-endpoint.ts";
import type { PeerService } from "../net/peer-net.ts";
import { partnerOnly } from "./partner-only.ts";
import type { SecureSocketOptions } from "../net/secure-socket.ts";
import { SYSTEM_RUNTIME_ENV, type ListeningPeerNet, type RuntimeEnv } from "./runtime-env.ts";
import { NetworkKeyProbe } from "./network-key-probe.ts";
import { ServerIdentities } from "./server-identities.ts";
import { LearnedBackup } from "./learned-backup.ts";
import { mainCopySource } from "./server-copy.ts";
import { DataHubParts } from "./data-hub-parts.ts";
import { HeartbeatKeys } from "../net/heartbeat-keys.ts";
import { Partnership } from "./partnership.ts";
import { neighbourRetransWarning, readNeighbourRetransMs } from "./neighbour-check.ts";
import { EpochFile } from "../store/epoch-file.ts";
import { FilesService, type FilesMode } from "../services/files-service.ts";
import { AssetService } from "../services/asset-service.ts";
import { LogReplicationSink, LogReplicationSource } from "../services/show-file-log-replication.ts";
import { PairingService } from "../services/pairing-service.ts";
import type { MachineIdentity } from "../store/machine-identity.ts";
import { ConsoleActions, PERMISSION_REFRESH_MS } from "./console-actions.ts";
import { showFileHistory } from "../services/show-file-history.ts";
import type { LogEntry } from "../services/show-file-protocol.ts";
import { ROLE_PLANS, type RolePlan } from "./role-plan.ts";
import { engineWatchOnHub } from "./engine-hub.ts";
import type { EngineWatch } from "./engine-watch.ts";
import { peerStatus, type PeerStatus } from "./peer-status.ts";
import { resolveHost } from "./resolve-host.ts";
import { openServerData, serverLanes, type ServerData } from "./server-data.ts";

export type { FailoverStatus, PeerStatus } from "./peer-status.ts";

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
  /** Clocks, timers and the peer port; the system's by default (machine/runtime-env.ts). */
  env?: RuntimeEnv;
};

type Servers = ServerAddresses<HostPort>;

export class PeerRuntime {
  readonly net: ListeningPeerNet;
  private readonly env: RuntimeEnv;
  private readonly options: PeerRuntimeOptions;
  private readonly role: Role;
  private readonly plan: RolePlan;
  /** One options object for every dial and the listener: a new network key is set in it once (setNetworkKey). */
  private readonly secure: SecureSocketOptions;
  /** The Data Hub, its copy and catch-up, and the local apps' gateway (machine/data-hub-parts.ts). */
  private readonly dataHub: DataHubParts;
  private readonly data: ServerData | null;
  private readonly files: FilesService;
  private readonly assetService: AssetService;
  private readonly pairing: PairingService;
  /** Switch back and permission levels, for the console (machine/console-actions.ts). */
  readonly console: ConsoleActions;
  private readonly feed: LogReplicationSource | null;
  private sink: LogReplicationSink | null = null;
  private heartbeats: HeartbeatSocket | null = null;
  /** Pair keys for heartbeats (net/heartbeat-keys.ts): the paired server's and, on clients, the servers' are pinned. */
  private readonly heartbeatKeys: HeartbeatKeys;
  /** Clients: which machines the servers are, from a signed handshake with their addresses. */
  private readonly serverIdentities: ServerIdentities | null;
  /** Clients: the backup the main says it is paired with, followed when the setup names none. */
  private readonly learned: LearnedBackup | null;
  private setupBackup: HostPort | null = null;
  private runner: FailoverRunner | null = null;
  /** Servers: the render engines' failover, switching the router while this server serves (machine/engine-watch.ts). */
  engines: EngineWatch | null = null;
  /** Local apps in any language: the MQTT front door on loopback (--mqtt-listen). */
  private mqtt: MqttFrontDoor | null = null;
  /** The addresses the setup names (resolved); the main's backup entry is what pairing aims at. */
  private servers: Servers;
  private timers: (() => void)[] = [];
  /** Servers: the pairing with the other one. */
  private readonly partner: Partnership;

  private constructor(options: PeerRuntimeOptions) {
    this.options = options;
    const { config, identity, networkKey, log } = options;
    this.role = failoverRole(config.role)!;
    this.plan = ROLE_PLANS[this.role];
    this.secure = { networkKey, machine: identity };
    this.servers = { main: parseHostPort(config.main ?? ""), backup: parseHostPort(config.backup ?? "") };
    this.env = options.env ?? SYSTEM_RUNTIME_ENV;
    this.net = this.env.listen({
      at: parseHostPort(config.peerListen)!,
      identity: options.identityView,
      secure: this.secure,
      onRefused: (address, error, suppressed) =>
        log.warn("peer refused", { from: address, code: error.code, message: error.message, ...(suppressed > 0 ? { repeated: suppressed } : {}) }),
      authenticated: (peer) => this.heartbeatKeys?.learn(peer.publicKey),
    });
    this.heartbeatKeys = new HeartbeatKeys(identity, this.env.clock);
    this.data = this.plan.holdsData ? openServerData(options.dataDir, config.chunkGraceMs, log) : null;
    const pairedKey = this.data?.pairingFile.peerKey() ?? null;
    if (pairedKey) this.heartbeatKeys.pin(pairedKey);
    this.serverIdentities = this.plan.identifiesServers
      ? new ServerIdentities(this.net, {
          identified: (_role, peer) => this.heartbeatKeys.pin(peer.publicKey),
          refused: (address, error) => this.dataHub.gateway.refusals.failed(address, error, "peer refused"),
          disbelieved: (address, peer, expected) => log.warn("not the backup the main named", { address, machineId: peer.machineId, expected }),
        })
      : null;
    this.learned = this.role === "client" ? new LearnedBackup(options.dataDir, () => (this.useLearned(), this.applyServers())) : null;
    this.console = new ConsoleActions({
      role: this.role,
      dataDir: options.dataDir,
      net: this.net,
      timers: this.env.timers,
      failoverState: () => this.runner?.status().state ?? null,
      feedMain: (event) => this.runner?.feed(event),
      hearsClient: (id) => this.runner?.status().peers.some((p) => p.id === id && p.role === "client") ?? false,
      heardClients: () =>
        (this.runner?.status().peers ?? [])
          .filter((p) => p.role === "client" && heardWithin(p.lastHeardMsAgo, config.failoverTimeoutMs))
          .map((p) => ({ id: p.id, name: p.name, address: p.address, state: p.state, localApps: p.localApps })),
      mainAddress: () => this.servers.main,
      backupAddress: () => this.servers.backup,
      pairedWith: () => this.data?.pairingFile.read()?.peerId ?? null,
      pairedBackupAt: () => ((d) => (d ? { address: d.address, machineId: d.peerId } : null))(this.data?.pairingFile.details()),
      mainSaysBackup: (backup) => this.learned?.heard(backup) ?? Promise.resolve(),
      backupChanges: options.backupChanges,
    });
    this.feed = this.data && this.plan.feedsBackup ? new LogReplicationSource(this.data.stores, () => this.paired(), log) : null;
    this.files = new FilesService({ mode: () => this.filesMode(), stores: this.data?.stores ?? null, replication: this.feed, syncTimeoutMs: config.syncTimeoutMs, net: this.net });
    const data = this.data;
    this.dataHub = new DataHubParts({
      plan: this.plan,
      node: { id: identity.id, name: config.name },
      net: this.net,
      serve: (service) => this.net.serve(service),
      networkKey,
      hubState: data ? { persistence: data.hubState, epoch: data.epoch, copyMarks: data.copyMark } : null,
      current: () => this.runner?.current ?? null,
      serverAt: (role) => this.heartbeatTargets()[role],
      followAt: (role) => this.servers[role],
      runner: { feed: (event) => this.runner?.feed(event), linkBroken: (role) => this.runner?.linkBroken(role) },
      heartbeatMs: config.heartbeatMs,
      retainAckedMs: ackedRetentionMs(config),
      log,
      clock: this.env.clock,
      timers: this.env.timers,
    });
    this.assetService = new AssetService({
      mode: () => assetRoute(this.runner?.current ?? null, this.env.clock.now()).mode,
      assets: this.data?.stores.assets ?? null,
      forwardTo: () => ((to) => (to === null ? null : this.servers[to]))(assetRoute(this.runner?.current ?? null, this.env.clock.now()).to),
      net: this.net,
      afterCommit: (seq) => this.feed?.waitApplied(seq, config.syncTimeoutMs) ?? Promise.resolve("none"),
      onChunkStored: (hash, bytes) => this.feed?.offerChunk(hash, bytes),
    });
    this.pairing = new PairingService(
      {
        name: () => config.name,
        role: () => this.role,
        licenseDocument: () => options.license(),
        vendorPublicKey: () => options.vendorPublicKey,
        now: () => this.env.wall.now(),
        peerPort: () => this.net.port,
        expectedMain: () => this.servers.main,
        pairedWith: () => this.data?.pairingFile.read()?.peerId ?? null,
        pairedKey: () => this.data?.pairingFile.details()?.peerKey ?? null,
        acceptMain: (peer) => this.partner.adopt(peer, this.servers.main ? formatHostPort(this.servers.main) : peer.address),
        dropMain: () => this.partner.drop(),
      },
      this.net,
      log,
    );
    this.partner = new Partnership({
      role: this.role,
      pairingFile: this.data?.pairingFile ?? null,
      heartbeatKeys: this.heartbeatKeys,
      exchange: this.pairing,
      feed: (event) => this.runner?.feed(event),
      changed: () => {
        this.runner?.setServers(this.heartbeatTargets());
        this.dataHub.pairingChanged();
      },
      wantedBackup: () => this.servers.backup,
      setWantedBackup: (at) => (this.servers = { ...this.servers, backup: at }),
      log,
      timers: this.env.timers,
    });
    for (const service of this.services()) this.net.serve(service);
  }

  /** The peer port's services for this role's plan: each declares its path. */
  private services(): PeerService[] {
    const console = this.console.service;
    return [
      this.dataHub.gateway.appService,
      this.files,
      this.assetService,
      ...(this.feed ? [partnerOnly(this.feed, () => this.runner?.current ?? null, this.options.log, () => this.env.clock.now())] : []),
      ...(this.plan.answersPairing ? [{ path: "/pair", accept: (c) => this.pairing.accept(c) }] satisfies PeerService[] : []),
      ...(console ? [{ path: "/console", accept: console }] satisfies PeerService[] : []),
    ];
  }

  static async start(options: PeerRuntimeOptions): Promise<PeerRuntime> {
    const runtime = new PeerRuntime(options);
    try {
      await runtime.learned?.load();
      await runtime.useSetup(runtime.servers.main, runtime.servers.backup);
      await runtime.startFailover();
      const retransMs = readNeighbourRetransMs();
      const warning = retransMs === null ? null : neighbourRetransWarning(retransMs, options.config.failoverTimeoutMs);
      if (warning) options.log.warn("network setting", { message: warning });
      runtime.mqtt = await startMqttFrontDoor(options.config, runtime.dataHub.gateway, options.log);
    } catch (error) {
      runtime.stop();
      throw error;
    }
    return runtime;
  }

  /** Where the runner sends heartbeats (core/routing.ts heartbeatTargets). */
  private heartbeatTargets(): Servers {
    return heartbeatTargets(this.role, this.servers, this.partner.pairedAddress());
  }

  private async startFailover(): Promise<void> {
    const { config, identity, networkKey, log, dataDir } = this.options;
    const dataHub = this.dataHub;
    const { gateway, hub } = dataHub;
    const stores = this.data?.stores;
    const heartbeats = await HeartbeatSocket.bind({
      host: parseHostPort(config.peerListen)!.host,
      port: this.net.port,
      networkKey,
      keys: this.heartbeatKeys,
      onHeartbeat: (hb, from, sealedBy) => this.runner?.onHeartbeat(hb, from, sealedBy),
      onThreadFailure: (error) => log.warn(error.message),
      flag: "--peer-listen",
    });
    this.heartbeats = heartbeats;
    const engines = (this.console.engines = this.engines = this.plan.watchesEngines ? engineWatchOnHub({ clock: this.env.clock, wallNow: () => this.env.wall.now(), timers: this.env.timers, attachApp: (n, d) => gateway.attachApp(n, d), backups: () => this.console.localGroups(), heard: () => this.runner?.status().peers ?? [], log, stops: this.timers }).watch : null);
    this.runner = new FailoverRunner({
      role: this.role,
      id: identity.id,
      name: config.name,
      boot: newBootId(),
      transport: {
        send: (hb, to, toId) => void heartbeats.send(hb, [to], toId),
        sendAhead: (beats, to, toId) => heartbeats.sendAhead(beats, to, toId),
        dropAhead: () => heartbeats.dropAhead(),
      },
      servers: this.heartbeatTargets(),
      timings: { heartbeatMs: config.heartbeatMs, failoverTimeoutMs: config.failoverTimeoutMs },
      failback: config.failback,
      epochStore: this.data ? new EpochFile(dataDir) : null,
      pairingStore: this.data?.pairingFile ?? null,
      formerPartnerStore: this.data?.formerPartners ?? null,
      clock: this.env.clock,
      timers: this.env.timers,
      log,
      lanes: hub && stores ? () => serverLanes(hub.core, stores) : undefined,
      localApps: () => gateway.appCount,
      networkKey: () => this.secure.networkKey,
      knownServers: () => this.serverIdentities?.known() ?? { main: null, backup: null },
      unprovenServer: () => this.identifyServers(),
      keyKnown: (id) => this.heartbeatKeys.forReceiver(id) !== null,
      signer: this.heartbeatKeys,
      hooks: {
        startServing: (epoch) => (dataHub.startServing(epoch), engines?.activate()),
        stopServing: (epoch) => (dataHub.stopServing(epoch), engines?.deactivate()),
        catchUp: (_epoch, done) => void dataHub.catchUp().then(() => done(true), (error) => done(false, (error as Error).message)),
        uplink: (target) => dataHub.follow(target),
        pairAgain: () => this.partner.pairAgain(),
      },
    });
    if (this.plan.copiesMainLog && this.data) {
      const source = mainCopySource({ current: () => this.runner?.current ?? null, serverAt: (role) => this.heartbeatTargets()[role] });
      this.sink = new LogReplicationSink({ net: this.net, source, stores: this.data.stores, retryMs: config.heartbeatMs, log });
    }
    this.runner.start();
    if (this.plan.keepsPairing) this.partner.keep();
    // A backup hearing no server checks the main's key; a client learns who its servers are: either way a mismatch shows, at once and while it hears none.
    if (this.plan.probesKeys) {
      const probe = new NetworkKeyProbe(this.net, (address, error) => gateway.refusals.failed(address, error, "peer refused"));
      this.every(config.failoverTimeoutMs, () => probe.step(this.hearsAServer(), [this.servers.main, this.servers.backup]));
    }
    if (this.serverIdentities) {
      this.identifyServers();
      this.every(config.failoverTimeoutMs, () => this.identifyServers());
    }
    if (this.plan.refreshesLevel) this.every(PERMISSION_REFRESH_MS, () => this.console.refreshLevel());
  }

  private every(ms: number, run: () => void): void {
    this.timers.push(this.env.timers.every(ms, run));
  }

  private paired(): boolean {
    return pairedPeer(this.runner?.current ?? null) !== null;
  }

  private hearsAServer(): boolean {
    const timeout = this.options.config.failoverTimeoutMs;
    return this.runner?.status().peers.some((p) => p.role !== "client" && heardWithin(p.lastHeardMsAgo, timeout)) === true;
  }

  /**
   * New server addresses from the setup pages, applied without dropping the Data Hub: the main re-pairs (keepPaired), a backup
   * follows the new main (its copy loops read the address on every step), a client learns which servers it knows, and the hub
   * uplink dials the server it follows where the setup names it now (sim seed 1576).
   */
  async updateServers(main: string | null, backup: string | null): Promise<void> {
    await this.useSetup(parseHostPort(main ?? ""), parseHostPort(backup ?? ""));
    this.applyServers();
  }

  /** The setup's addresses, resolved; a client whose setup names no backup follows the one its main named. */
  private async useSetup(main: HostPort | null, backup: HostPort | null): Promise<void> {
    this.setupBackup = await resolveHost(backup);
    this.servers = { main: await resolveHost(main), backup: this.learned ? (this.learned.backup(this.setupBackup)?.address ?? null) : this.setupBackup };
  }

  private useLearned(): void {
    if (this.learned) this.servers = { ...this.servers, backup: this.learned.backup(this.setupBackup)?.address ?? null };
  }

  private applyServers(): void {
    this.runner?.setServers(this.heartbeatTargets());
    if (this.runner) this.dataHub.follow(this.runner.uplink);
    this.identifyServers();
  }

  /**
   * A network key saved on this running machine, used at once: heartbeats and
   * the peer port take it, the Data Hub keeps serving but closes its sessions,
   * the local apps reconnect, every link this machine dialled dials again
   * under the new key (peer-net.ts closeDialled), and every connection others
   * dialled here is closed for them to dial again under theirs (closeAccepted):
   * a holder of the old key keeps nothing open. The same key saved again
   * changes nothing.
   */
  setNetworkKey(networkKey: Uint8Array): void {
    if (sameNetworkKey(this.secure.networkKey, networkKey)) return;
    this.net.setNetworkKey(networkKey);
    this.heartbeats?.setNetworkKey(networkKey);
    this.dataHub.setNetworkKey(networkKey);
    this.sink?.restart();
    this.net.closeDialled("The network key changed; reconnecting with the new one.");
    this.net.closeAccepted("The network key changed here; dial again with the new one.");
  }

  /** A client dials each server it does not know yet, or has not heard for a timeout (machine/server-identities.ts). */
  private identifyServers(): void {
    const identities = this.serverIdentities;
    if (!identities || !this.runner) return;
    const peers = this.runner.status().peers;
    const timeout = this.options.config.failoverTimeoutMs;
    const expected = { main: null, backup: this.learned?.backup(this.setupBackup)?.machineId ?? null };
    identities.refresh(this.servers, expected, (id) => peers.some((p) => p.id === id && heardWithin(p.lastHeardMsAgo, timeout)));
  }

  /** Where show-file calls go now (core/routing.ts filesRoute). */
  private filesMode(): FilesMode {
    const route = filesRoute(this.runner?.current ?? null, this.env.clock.now(), this.servers.main !== null);
    if (route.kind !== "forward") return route;
    return { kind: "forward", to: this.servers[route.to]! };
  }

  /** The show file's last revisions for the Synced storage panel (services/show-file-history.ts). */
  showFileHistory(limit: number): Promise<{ entries: LogEntry[]; readOnly: boolean }> {
    return showFileHistory(this.filesMode(), this.data?.stores.showFile ?? null, this.net, limit);
  }

  /** Everything this runtime adds to the machine's status, assembled once (machine/peer-status.ts). */
  status(): PeerStatus | null {
    if (!this.runner) return null;
    const readOnly = showFileReadOnly(this.runner.current, this.env.clock.now(), this.servers.main !== null);
    const d = this.data;
    return peerStatus({ runner: this.runner, gateway: this.dataHub.gateway, hub: this.dataHub.hub, db: d?.db ?? null, stores: d?.stores ?? null, pairingFile: d?.pairingFile ?? null, source: this.feed, sink: this.sink, showFileReadOnly: readOnly });
  }

  /** A local app living in this process (the HTTP API) on this machine's uplink. */
  attachApp(name: string, deliver: (frame: FromHubFrame) => void): InProcessApp {
    return this.dataHub.gateway.attachApp(name, deliver);
  }

  /** The main's Add Backup and Remove Backup, the backup's "Forget this main" (machine/partnership.ts). */
  readonly addBackup = (address: string): Promise<{ peerName: string }> => this.partner.addBackup(address);
  readonly removeBackup = (): Promise<void> => this.partner.removeBackup();
  readonly forgetMain = (): void => this.partner.forgetMain();

  stop(): void {
    for (const stop of this.timers) stop();
    this.partner.stop();
    this.console.stop();
    this.data?.reclaim.stop();
    this.runner?.stop();
    this.sink?.stop();
    this.files.close();
    void this.mqtt?.stop();
    this.dataHub.stop();
    void this.heartbeats?.close();
    this.net.stop();
    this.data?.db.close();
  }
}
