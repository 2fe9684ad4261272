/**
 * Composition root: builds a machine's parts for its role and rebuilds them
 * when the setup pages change the role, without restarting the process.
 */
import { systemTimers, wallClock } from "../net/system-time.ts";
import nacl from "tweetnacl";
import { LICENSE_TYPE_LABELS } from "../core/license.ts";
import { formatHostPort, parseHostPort, uiHostNames, type ConfigKey } from "../core/config.ts";
import { roleChoices } from "../core/roles.ts";
import { failoverRole } from "../core/routing.ts";
import { baseChip, roleLabel, type MachineStatus } from "../core/status.ts";
import type { Logger } from "../log.ts";
import { MachineState, networkKeyFingerprint } from "./machine-state.ts";
import { COMMIT, VERSION } from "../version.ts";
import { createWebApp, type MachineControl } from "../web/app.tsx";
import type { RoleForm } from "../web/forms.ts";
import { staticAssets } from "../web/static-assets.ts";
import type { SetupFacts } from "../web/view-models/setup-view.ts";
import { PeerRuntime } from "./peer-runtime.ts";
import type { FailoverStatus } from "./peer-status.ts";
import { listenError } from "../net/listen-error.ts";
import { advertisedListenHost, Discovery, type DiscoveredMachine, type MachineAdvert } from "../net/discovery/discovery.ts";
import type { FromHubFrame } from "../hub/frames.ts";
import type { InProcessApp } from "../services/app-gateway.ts";
import { AppError, InvalidInput } from "../core/errors.ts";
import type { Permission, PermissionLevel } from "../core/permissions.ts";
import { HISTORY_SAMPLE_MS, StatusHistory, type HistorySnapshot } from "../core/status-history.ts";
import { loadStatusHistory, saveStatusHistory } from "../store/status-history-file.ts";
import type { LogEntry } from "../services/show-file-protocol.ts";
import type { RosterEntry } from "../services/console-service.ts";
import type { EngineBackups } from "../store/backup-groups-file.ts";
import { FolderSync, type FolderSyncView, type OwnNode } from "../services/show-folder/folder-sync.ts";
import { checkShowFolder } from "../services/show-folder/show-folder-setting.ts";
import { ReadOnlyWhileBackupServes } from "../services/files-service.ts";
import { secureDialer } from "../net/peer-net.ts";

export type NodeOptions = {
  dataDir: string;
  flags: Partial<Record<ConfigKey, string>>;
  env: Record<string, string | undefined>;
  vendorPublicKey: Uint8Array;
  log: Logger;
};

export class MachineNode implements MachineControl {
  readonly state: MachineState;
  private readonly log: Logger;
  /** The setup pages and API; tests call app.request() on it. */
  readonly app: ReturnType<typeof createWebApp>;
  private web: ReturnType<typeof Bun.serve> | null = null;
  private peer: PeerRuntime | null = null;
  private discovery: Discovery | null = null;
  private readonly recorder: StatusHistory;
  private stopHistory: (() => void) | null = null;
  /** The operator's show folder kept in step with the show file (the Synced storage panel). */
  private readonly sync: FolderSync;
  private readonly syncKeys = nacl.sign.keyPair();

  private constructor(state: MachineState, log: Logger) {
    this.state = state;
    this.log = log;
    this.app = createWebApp(this, staticAssets(), { log });
    this.recorder = new StatusHistory(state.snapshot.config.failoverTimeoutMs, loadStatusHistory(state.dataDir));
    this.sync = new FolderSync({
      dataDir: state.dataDir,
      settings: () => ({ folder: this.state.snapshot.config.showFolder, autoPull: this.state.snapshot.config.autoPull === "on" }),
      node: () => this.ownFiles(),
      readOnly: () => this.showFileReadOnly(),
      author: () => this.state.snapshot.config.name,
      log,
    });
  }

  /** Loads the data dir, checks the setup and opens the ports. Throws an AppError saying what is wrong. */
  static async start(options: NodeOptions): Promise<MachineNode> {
    const state = new MachineState({ ...options, now: () => wallClock.now() });
    const node = new MachineNode(state, options.log);
    const ui = parseHostPort(state.snapshot.config.uiListen)!;
    try {
      node.web = Bun.serve({ hostname: ui.host, port: ui.port, reusePort: false, fetch: node.app.fetch, development: false });
    } catch (error) {
      throw listenError(error, ui, "--ui-listen");
    }
    try {
      await node.applyRole();
    } catch (error) {
      await node.web!.stop(true);
      throw error;
    }
    // A failover or failback seen is saved at once: a restarted machine still tells it.
    node.stopHistory = systemTimers.every(HISTORY_SAMPLE_MS, () => node.recorder.record(node.status(), wallClock.now()) && saveStatusHistory(state.dataDir, node.recorder.durable(), options.log));
    node.sync.start();
    const snap = state.snapshot;
    options.log.info("started", {
      name: snap.config.name,
      id: snap.identity.id,
      role: snap.config.role,
      ui: node.uiUrl,
      peer: node.peer?.net.address ?? null,
      data: state.dataDir,
      version: VERSION,
    });
    return node;
  }

  get uiUrl(): string {
    const server = this.web!;
    return `http://${formatHostPort({ host: server.hostname ?? "127.0.0.1", port: server.port ?? 0 })}`;
  }

  status(): MachineStatus {
    const { config, identity, license } = this.state.snapshot;
    const peer = this.peer?.status() ?? null;
    const failover = peer?.failover ?? null;
    return {
      id: identity.id,
      name: config.name,
      role: config.role,
      roleLabel: roleLabel(config.role),
      chip: failover?.chip ?? baseChip(config.role),
      version: VERSION,
      commit: COMMIT,
      license: license && { type: license.type, holder: license.holder, expiresAt: license.expiresAt },
      networkKeyFingerprint: networkKeyFingerprint(this.state.snapshot),
      main: config.main,
      backup: config.backup,
      peerListen: this.peer?.net.address ?? null,
      showFile: peer?.showFile ?? null,
      storage: peer?.storage ?? null,
      replication: peer?.replication ?? null,
      hub: peer?.hub ?? null,
      failover: failover && failoverFacts(failover, config.failoverTimeoutMs),
      engines: this.peer?.engines?.alerts() ?? [],
    };
  }

  setupView(): SetupFacts {
    const snap = this.state.snapshot;
    const { config, license, pinned } = snap;
    return {
      status: this.status(),
      license: license && { type: license.type, typeLabel: LICENSE_TYPE_LABELS[license.type], holder: license.holder, expiresAt: license.expiresAt },
      roles: roleChoices(license, config.name, wallClock.now()),
      role: config.role,
      main: config.main,
      backup: config.backup,
      keyFingerprint: networkKeyFingerprint(snap),
      networkKey: snap.networkKey && ["main", "server", "standalone"].includes(config.role) ? Buffer.from(snap.networkKey).toString("base64") : null,
      failback: failoverRole(config.role) === "main" ? config.failback : null,
      pinned: { role: pinned.has("role"), main: pinned.has("main"), backup: pinned.has("backup"), license: pinned.has("license"), key: pinned.has("key"), failback: pinned.has("failback") },
    };
  }

  saveLicense(text: string): void {
    const snap = this.state.saveLicense(text);
    this.applyDiscovery();
    this.log.info("license saved", { type: snap.license?.type, holder: snap.license?.holder });
  }

  async saveNetworkKey(text: string | null): Promise<void> {
    const snap = this.state.saveNetworkKey(text);
    // Used at once: the runtime re-keys in place (the Data Hub keeps serving); a role waiting for its key starts now.
    if (snap.networkKey && this.peer) this.peer.setNetworkKey(snap.networkKey);
    else await this.applyRole();
    this.applyDiscovery();
    this.log.info("network key saved", { fingerprint: networkKeyFingerprint(snap) });
  }

  /** Failback on the main's setup page: saved and applied now (docs/design.md §Failover); the same value again changes nothing. */
  saveFailback(failback: "auto" | "manual"): void {
    this.state.saveSettings({ failback });
    this.peer?.console.setFailback(failback);
    this.log.info("failback set", { failback });
  }

  /**
   * Saving settings is an event, not a restart: unchanged settings do nothing;
   * new server addresses are applied in place (the main re-pairs, the Data Hub
   * keeps serving); only a new role builds the network runtime anew.
   */
  async saveRole(form: RoleForm): Promise<void> {
    const before = this.state.snapshot.config;
    const snap = this.state.saveSettings({ role: form.role, main: form.main, backup: form.backup });
    const after = snap.config;
    if (after.role === before.role && after.main === before.main && after.backup === before.backup) return;
    // The same failover role (a "server" becoming a "main" that may pair, or new addresses): applied in place.
    if (this.peer && failoverRole(after.role) === failoverRole(before.role)) {
      await this.peer.updateServers(after.main, after.backup);
      this.applyDiscovery();
    } else await this.applyRole(true);
    this.log.info("settings applied", { from: before.role, to: after.role, main: after.main, backup: after.backup });
  }

  discovered(): { discovery: "on" | "off" | "standalone"; machines: DiscoveredMachine[] } {
    const { config } = this.state.snapshot;
    if (config.role === "standalone") return { discovery: "standalone", machines: [] };
    return { discovery: config.discovery, machines: this.discovery?.list() ?? [] };
  }

  attachHubApp(name: string, deliver: (frame: FromHubFrame) => void): InProcessApp | null {
    return this.peer?.attachApp(name, deliver) ?? null;
  }

  /** The Synced storage panel's history; a stand-alone machine has no show file. */
  async showFileHistory(limit: number): Promise<{ entries: LogEntry[]; readOnly: boolean } | null> {
    return this.peer ? this.peer.showFileHistory(limit) : null;
  }

  folderSync(): FolderSyncView | null {
    return this.peer ? this.sync.view() : null;
  }

  showFolderPinned(): boolean {
    return this.state.snapshot.pinned.has("showFolder");
  }

  autoPullPinned(): boolean {
    return this.state.snapshot.pinned.has("autoPull");
  }

  /** The show folder from the Synced storage page: an existing folder outside the data dir (InvalidInput on field "folder"). */
  setShowFolder(folder: string): void {
    if (this.showFolderPinned()) throw new AppError("SHOW_FOLDER_FIXED", "The show folder is fixed by --show-folder (or UNDERSTUDY_SHOW_FOLDER): change it there and restart.", { status: 409 });
    this.sync.assertIdle();
    this.state.saveSettings({ showFolder: checkShowFolder(folder, this.state.dataDir) });
    this.log.info("show folder set", { folder });
    this.sync.settingsChanged();
  }

  /** Push and pull wait for the main now: the one rule (core/routing.ts showFileReadOnly), as the status carries it. */
  private showFileReadOnly(): boolean {
    return this.peer?.status()?.failover.showFileReadOnly ?? false;
  }

  /** Auto-Pull on or off; like Push and Pull, not while the backup serves. */
  setAutoPull(on: boolean): void {
    if (this.autoPullPinned()) throw new AppError("AUTO_PULL_FIXED", "Auto-Pull is fixed by --auto-pull (or UNDERSTUDY_AUTO_PULL): change it there and restart.", { status: 409 });
    if (this.showFileReadOnly()) throw new ReadOnlyWhileBackupServes();
    this.state.saveSettings({ autoPull: on ? "on" : "off" });
    this.log.info("auto-pull", { on });
    this.sync.settingsChanged();
  }

  startPush(comment: string): void {
    this.sync.startPush(comment);
  }

  startPull(): void {
    this.sync.startPull();
  }

  /** This machine's own peer port, where the show folder's pushes and pulls start (loopback for a wildcard listen). */
  private ownFiles(): OwnNode | null {
    const { networkKey } = this.state.snapshot;
    if (!this.peer || networkKey === null) return null;
    const at = parseHostPort(this.peer.net.address)!;
    const host = at.host === "0.0.0.0" ? "127.0.0.1" : at.host === "::" ? "::1" : at.host;
    // Its own key pair, as a command's: a node refuses a connection from itself (same machine key).
    return { at: { host, port: at.port }, net: secureDialer({ networkKey, machine: this.syncKeys }), keyFingerprint: networkKeyFingerprint(this.state.snapshot)! };
  }

  history(): HistorySnapshot {
    return this.recorder.snapshot();
  }

  heardWithinMs(): number {
    return this.state.snapshot.config.failoverTimeoutMs;
  }

  /**
   * Add Backup server on the main's Machines panel: pairs now, then keeps the
   * address in config.json. A level-3 client asks the main to do it.
   */
  async addBackup(address: string): Promise<{ peerName: string }> {
    if (!this.peer) throw new InvalidInput("This machine is not on the network: make it the main server on its setup page first.", "address");
    if (this.state.snapshot.config.role === "client") return this.peer.console.addBackup(address);
    this.refuseIfBackupPinned();
    const added = await this.peer.addBackup(address);
    this.state.saveSettings({ backup: address });
    this.log.info("backup added", { backup: added.peerName, address });
    return added;
  }

  /** The delete icon on the Backup server row: unpairs it and forgets its address (a level-3 client asks the main). */
  async removeBackup(): Promise<void> {
    if (this.peer && this.state.snapshot.config.role === "client") return this.peer.console.removeBackup();
    this.refuseIfBackupPinned();
    if (!this.peer) return;
    await this.peer.removeBackup();
    this.state.saveSettings({ backup: null });
    this.log.info("backup removed");
  }

  /** "Forget this main" on a backup's own page (twice is fine: the second finds nothing to forget). */
  forgetMain(): void {
    if (this.state.snapshot.config.role !== "backup" || !this.peer) {
      throw new AppError("NOT_A_BACKUP", "Only a backup server forgets its main: this machine is not one.", { status: 409 });
    }
    this.peer.forgetMain();
    this.log.info("main forgotten on this backup's page");
  }

  private refuseIfBackupPinned(): void {
    if (this.state.snapshot.pinned.has("backup")) {
      throw new InvalidInput("This main's backup is fixed on its command line (--backup): change it there and restart.", "address");
    }
  }

  uiPassword(): string | null {
    return this.state.snapshot.config.uiPassword;
  }

  uiHostNames(): string[] {
    return uiHostNames(this.state.snapshot.config);
  }

  /** Builds the network runtime for the role (a stand-alone machine does not listen on the network); `rebuild` after a role change. */
  private async applyRole(rebuild = false): Promise<void> {
    const snap = this.state.snapshot;
    // Without the network key a role waits for it (the chip says so) rather than refusing to be saved.
    const wantPeer = snap.config.role !== "standalone" && snap.networkKey !== null;
    if (this.peer && (rebuild || !wantPeer)) {
      this.peer.stop();
      this.peer = null;
    }
    if (wantPeer && !this.peer) {
      this.peer = await PeerRuntime.start({
        config: snap.config,
        dataDir: this.state.dataDir,
        identity: snap.identity,
        networkKey: snap.networkKey as Uint8Array,
        license: () => this.state.snapshot.license ?? null,
        vendorPublicKey: this.state.vendorPublicKey,
        identityView: () => this.peerIdentity(),
        log: this.log,
        backupChanges: { add: (address) => this.addBackup(address), remove: () => this.removeBackup() },
      });
    }
    this.applyDiscovery();
  }

  /** Manual failback: the main's own UI, or a level-3 client asking the main. */
  async switchBack(): Promise<string> {
    if (!this.peer) throw new AppError("NOTHING_TO_SWITCH_BACK", "A stand-alone machine has no network to switch back.", { status: 409 });
    return this.peer.console.switchBack();
  }

  permission(): Permission {
    return this.peer?.console.permission() ?? null;
  }

  levels(): Record<string, PermissionLevel> {
    return this.peer?.console.levels() ?? {};
  }

  otherClients(): RosterEntry[] {
    return this.state.snapshot.config.role === "client" ? (this.peer?.console.roster() ?? []) : [];
  }

  setLevel(machineId: string, level: PermissionLevel): void {
    if (!this.peer) throw new AppError("NOT_THE_MAIN", "Permission levels are set on the main server's Machines panel.", { status: 409 });
    this.peer.console.setLevel(machineId, level);
    this.log.info("permission level set", { machine: machineId, level });
  }

  backupGroups(): Promise<EngineBackups> {
    if (!this.peer) throw new AppError("STAND_ALONE", "A stand-alone machine has no render engines to back up: make it a server or a client first.", { status: 409 });
    return this.peer.console.groups();
  }

  saveBackupGroups(backups: EngineBackups): Promise<void> {
    if (!this.peer) throw new AppError("STAND_ALONE", "A stand-alone machine has no render engines to back up: make it a server or a client first.", { status: 409 });
    return this.peer.console.saveGroups(backups);
  }

  /** The render engines' failover as this server runs it (machine/engine-watch.ts), or a client's view of the serving server's. */
  engineHealth() {
    return this.peer?.console.engineHealth() ?? Promise.resolve(null);
  }

  switchEngine(group: string, main: string, to: "backup" | "main"): Promise<string> {
    if (!this.peer) throw new AppError("STAND_ALONE", "A stand-alone machine switches no engines: make it a server or a client first.", { status: 409 });
    return this.peer.console.switchEngine({ group, main, to });
  }

  /** Advertises and browses while the machine is on the network and discovery is on; follows role changes. */
  private applyDiscovery(): void {
    const { config } = this.state.snapshot;
    const advert = this.peer && config.discovery === "on" ? this.advert() : null;
    if (advert === null) {
      void this.discovery?.stop();
      this.discovery = null;
      return;
    }
    if (this.discovery) {
      const { id: _id, ...changes } = advert;
      this.discovery.update(changes);
      return;
    }
    this.discovery = new Discovery({
      self: advert,
      port: this.peer!.net.port,
      interface: config.discoveryInterface ?? undefined,
      log: this.log,
    });
    this.discovery.start();
    // The epoch changes with every failover; the TXT record follows within a second.
    this.stopAdvert ??= systemTimers.every(1000, () => {
      const advert = this.advert();
      if (this.discovery && advert && advert.epoch !== this.advertisedEpoch) {
        this.advertisedEpoch = advert.epoch;
        this.discovery.update({ epoch: advert.epoch });
      }
    });
  }

  private stopAdvert: (() => void) | null = null;
  private advertisedEpoch = 0;

  private advert(): MachineAdvert | null {
    const s = this.status();
    if (s.networkKeyFingerprint === null) return null;
    return { id: s.id, name: s.name, role: s.role, license: s.license?.type ?? "none", version: s.version, fingerprint: s.networkKeyFingerprint, epoch: s.failover?.epoch ?? 0, at: advertisedListenHost(s.peerListen) };
  }

  private peerIdentity() {
    const s = this.status();
    return { id: s.id, name: s.name, role: s.role, version: s.version, networkKeyFingerprint: s.networkKeyFingerprint, license: s.license?.type ?? null };
  }

  /** Closes the ports; the data dir is consistent after every write, so nothing else is owed. */
  async stop(): Promise<void> {
    this.stopHistory?.();
    this.sync.stop();
    this.stopAdvert?.();
    this.stopAdvert = null;
    await this.discovery?.stop();
    this.discovery = null;
    this.peer?.stop();
    this.peer = null;
    await this.web?.stop(true);
    this.web = null;
    this.log.info("stopped");
  }
}

/** The status's failover facts: the peer runtime's, less its raw chip (the status carries it above), with the timeout pages judge "heard" by. */
function failoverFacts({ chip: _chip, ...facts }: FailoverStatus, timeoutMs: number): NonNullable<MachineStatus["failover"]> {
  return { ...facts, timeoutMs };
}
