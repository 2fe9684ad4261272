/**
 * What the operator console may ask of a machine on the network beyond its
 * own settings: switching back (on the main, or a level-3 client asking the
 * main over `/console`) and permission levels (kept by the main and copied by
 * its paired backup every PERMISSION_REFRESH_MS; each client asks the main for
 * its own, or the backup when the main does not answer, and keeps the last
 * answer while neither does). The render engines' backup groups travel with
 * the levels: kept by the main, copied by the backup in the same step, saved
 * by a level-3 client through the main. A manual engine switch runs on the
 * server that serves (its engine runner); a level-3 client asks the main, or
 * the backup when the main does not answer or does not serve.
 */
import { AppError } from "../core/errors.ts";
import type { Failback, MainEvent } from "../core/failover/types.ts";
import { DEFAULT_PERMISSION_LEVEL, mayChangeBackup, maySwitchBack, PermissionRefused, seesOthers, type Permission, type PermissionLevel } from "../core/permissions.ts";
import type { HostPort } from "../core/config.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import { KeptCalls } from "../net/kept-calls.ts";
import type { Timers } from "../core/clock.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { acceptConsole, acceptLevelQuestions, askAddBackup, askEngineHealth, askSwitchEngine, type EngineSwitch, askAllLevels, askGroups, askLevel, askRemoveBackup, askSaveGroups, askSwitchBack, type RosterEntry } from "../services/console-service.ts";
import { PermissionsFile } from "../store/permissions-file.ts";
import { BackupGroupsFile, NO_ENGINE_BACKUPS, type EngineBackups } from "../store/backup-groups-file.ts";
import { checkGroup } from "../core/backup-groups.ts";
import type { LearnedBackupWord } from "../store/learned-backup-file.ts";
import type { EngineWatch } from "./engine-watch.ts";
import type { EngineWatchWireView } from "../core/engine-watch-view.ts";

export const PERMISSION_REFRESH_MS = 2000;

export type ConsoleActionsOptions = {
  role: "main" | "backup" | "client";
  dataDir: string;
  /** Dials the servers (the machine's PeerNet); calls go over one kept connection per server (net/kept-calls.ts). */
  net: PeerDialer;
  timers: Timers;
  /** The failover state name now ("standby", "active", …), null before the runner runs. */
  failoverState: () => string | null;
  /** Feeds the main's core an operator's event (switch back, a new failback setting). */
  feedMain: (event: MainEvent) => void;
  /** The main hears this client now. */
  hearsClient: (machineId: string) => boolean;
  /** A server: the clients it hears now (id, name, address, state, local apps). */
  heardClients: () => Omit<RosterEntry, "level">[];
  /** Where the main is, for a client; null when its setup names none. */
  mainAddress: () => HostPort | null;
  /** Where the backup is, for a client; null when its setup names none. */
  backupAddress: () => HostPort | null;
  /** A server: the machine id it is paired with, or null. */
  pairedWith: () => string | null;
  /** The main: its paired backup's peer address and machine id, told to clients with their level. */
  pairedBackupAt: () => LearnedBackupWord | null;
  /** A client: what its main said about its backup (null: none), signed by the handshake with the main's address. */
  mainSaysBackup: (backup: LearnedBackupWord | null) => Promise<void>;
  /** The main's own Add Backup server and its removal (what its Machines panel does), for level-3 clients. */
  backupChanges: { add(address: string): Promise<{ peerName: string }>; remove(): Promise<void> };
};

export class ConsoleActions {
  private readonly permissions: PermissionsFile | null;
  private readonly groupsFile: BackupGroupsFile | null;
  private level: PermissionLevel = DEFAULT_PERMISSION_LEVEL;
  /** A client: the other clients, as the server that last answered hears them. */
  private others: RosterEntry[] = [];
  /** One question at a time: a main that does not answer holds one for up to CONSOLE_CALL_TIMEOUT_MS. */
  private asking = false;
  /** A server's engine runner, set by the runtime when it starts it (machine/engine-watch.ts). */
  engines: EngineWatch | null = null;

  private readonly calls: KeptCalls;

  constructor(private readonly options: ConsoleActionsOptions) {
    this.calls = new KeptCalls(options.net, options.timers);
    this.permissions = options.role === "client" ? null : new PermissionsFile(options.dataDir);
    this.groupsFile = options.role === "client" ? null : new BackupGroupsFile(options.dataDir);
  }

  /** `/console`: the main's, or the backup's level answers from its copy; a client does not serve it. */
  get service(): ((connection: SecureConnection) => ConnectionEvents) | null {
    if (!this.permissions) return null;
    if (this.options.role === "backup") return (connection) =>
        acceptLevelQuestions(connection, () => this.levels(), () => this.roster(), () => this.localGroups(), {
          switchEngine: (change) => this.switchEngineHere(change),
          engineHealth: () => this.engineHealthHere(),
        });
    const { backupChanges } = this.options;
    return (connection) =>
      acceptConsole(connection, {
        levels: () => this.levels(),
        roster: () => this.roster(),
        switchBack: () => this.switchBackHere(),
        addBackup: (address) => backupChanges.add(address),
        removeBackup: () => backupChanges.remove(),
        pairedBackup: () => this.options.pairedWith(),
        pairedBackupAt: () => this.options.pairedBackupAt(),
        groups: () => this.localGroups(),
        saveGroups: (groups) => this.saveGroupsHere(groups),
        switchEngine: (change) => this.switchEngineHere(change),
        engineHealth: () => this.engineHealthHere(),
      });
  }

  /** Closes the kept connections to the servers. */
  stop(): void {
    this.calls.stop();
  }

  /** Switch back (manual failback); resolves with what happened, in words for the page. */
  async switchBack(): Promise<string> {
    const { role } = this.options;
    if (role === "main") return this.switchBackHere();
    if (role === "client") {
      if (!maySwitchBack(this.level)) throw new PermissionRefused(this.level, "switch the network back to the main server");
      const main = this.options.mainAddress();
      if (!main) throw new AppError("NO_MAIN_SET", "This client has no main server's IP to ask: set it on the setup page.", { status: 409 });
      return askSwitchBack(this.calls, main);
    }
    throw new AppError("NOTHING_TO_SWITCH_BACK", "Switching back is done on the main server, once it is back and waits for it, or on a client with permission level 3.", { status: 409 });
  }

  /** A level-3 client's Add Backup server: the main does it. */
  addBackup(address: string): Promise<{ peerName: string }> {
    return this.askMainTo("add a backup server", (main) => askAddBackup(this.calls, main, address));
  }

  /** A level-3 client removes the backup: the main does it. */
  removeBackup(): Promise<void> {
    return this.askMainTo("remove the backup server", (main) => askRemoveBackup(this.calls, main));
  }

  private async askMainTo<T>(what: string, ask: (main: HostPort) => Promise<T>): Promise<T> {
    if (this.options.role !== "client") throw new AppError("NOT_A_CLIENT", `Only the main server, or a client with permission level 3, may ${what}.`, { status: 409 });
    if (!mayChangeBackup(this.level)) throw new PermissionRefused(this.level, what);
    const main = this.options.mainAddress();
    if (!main) throw new AppError("NO_MAIN_SET", "This client has no main server's IP to ask: set it on the setup page.", { status: 409 });
    return ask(main);
  }

  /** The failback setting saved on the main's setup page, applied now (a waiting main goes back when it turns automatic). */
  setFailback(failback: Failback): void {
    if (this.options.role === "main") this.options.feedMain({ type: "setFailback", failback });
  }

  /** A server's groups (the main's, or the backup's copy of them); none on a client, which asks (`groups`). */
  localGroups(): EngineBackups {
    return this.groupsFile?.read() ?? NO_ENGINE_BACKUPS;
  }

  /** Every backup group, as this machine's pages show them: a client asks its servers (from level 2). */
  async groups(): Promise<EngineBackups> {
    if (this.options.role !== "client") return this.localGroups();
    const servers = [this.options.mainAddress(), this.options.backupAddress()].filter((a): a is HostPort => a !== null);
    let last: unknown = new AppError("NO_MAIN_SET", "This client has no main server's IP to ask: set it on the setup page.", { status: 409 });
    for (const server of servers) {
      try {
        return await askGroups(this.calls, server);
      } catch (error) {
        last = error;
      }
    }
    throw last;
  }

  /** Saves every group (the panel's create, edit and delete): on the main, or a level-3 client through the main. */
  async saveGroups(backups: EngineBackups): Promise<void> {
    if (this.options.role === "client") return this.askMainTo("change the backup groups", (main) => askSaveGroups(this.calls, main, backups));
    this.saveGroupsHere(backups);
  }

  /**
   * What the Health panel shows of the engines: a server's own runner; a client (from level 2)
   * asks the main, or the backup when the main does not answer or does not serve; null when none says.
   */
  async engineHealth(): Promise<EngineWatchWireView | null> {
    if (this.options.role !== "client") return this.engines ? this.wireView(this.engines) : null;
    if (!seesOthers(this.level)) return null;
    for (const server of [this.options.mainAddress(), this.options.backupAddress()]) {
      if (server === null) continue;
      try {
        return await askEngineHealth(this.calls, server);
      } catch {
        // Not serving, not answering, or refusing: the other server, or none.
      }
    }
    return null;
  }

  private engineHealthHere(): EngineWatchWireView {
    if (!this.engines?.active) throw new AppError("NOT_ACTIVE", "This server does not serve the network now: the server that serves watches the engines.", { status: 409 });
    return this.wireView(this.engines);
  }

  private wireView(engines: EngineWatch): EngineWatchWireView {
    const { router, groups, ...rest } = engines.view();
    return { ...rest, groups: [...groups], router: { address: router.address, connected: router.connected, routes: [...router.routes], locks: [...router.locks] } };
  }

  /** A manual engine switch (the Health panel's buttons): this server's runner, or a level-3 client asking the servers. */
  async switchEngine(change: EngineSwitch): Promise<string> {
    if (this.options.role !== "client") return this.switchEngineHere(change);
    if (!maySwitchBack(this.level)) throw new PermissionRefused(this.level, "switch render engines");
    const servers = [this.options.mainAddress(), this.options.backupAddress()].filter((a): a is HostPort => a !== null);
    let last: unknown = new AppError("NO_MAIN_SET", "This client has no main server's IP to ask: set it on the setup page.", { status: 409 });
    for (const server of servers) {
      try {
        return await askSwitchEngine(this.calls, server, change);
      } catch (error) {
        // The main down, or not serving: the backup serves (or says why not).
        if (!(error instanceof AppError) || (error.code !== "MAIN_UNREACHABLE" && error.code !== "NOT_ACTIVE")) throw error;
        last = error;
      }
    }
    throw last;
  }

  private switchEngineHere(change: EngineSwitch): string {
    if (!this.engines) throw new AppError("NOT_A_SERVER", "Engines are switched on the Health panel of the server that serves the network.", { status: 409 });
    this.engines.manual(change.group, change.main, change.to);
    return change.to === "backup" ? "Switching to the backup engine…" : "Switching back to the main engine…";
  }

  /** The main keeps groups that pass the core's checks; a refusal changes nothing. */
  private saveGroupsHere(backups: EngineBackups): void {
    if (this.options.role !== "main" || !this.groupsFile) throw new AppError("NOT_THE_MAIN", "Backup groups are changed on the main server, or by a client with permission level 3.", { status: 409 });
    // Licenses differ is a warning, never a refusal: the Backup groups panel shows it from what the engines report (services/engine-licenses.ts).
    for (const group of backups.groups) checkGroup(group, backups.groups, () => undefined);
    this.groupsFile.replace(backups);
  }

  /** The main's own decision; repeated clicks after the switch are answered calmly. */
  private switchBackHere(): string {
    const state = this.options.failoverState();
    if (state === "standby") {
      this.options.feedMain({ type: "switchBack" });
      return "Switching back to the main server…";
    }
    if (state === "active") return "The main server serves the network.";
    throw new AppError("NOTHING_TO_SWITCH_BACK", "The main server is not waiting to switch back: it switches back by itself once it has caught up.", { status: 409 });
  }

  /** What this machine's pages may do: a server's own pages everything (null), a client what the main allows. */
  permission(): Permission {
    return this.options.role === "client" ? this.level : null;
  }

  /** The main: each client's level (absent: the default); the backup: its copy of them. */
  levels(): Record<string, PermissionLevel> {
    return this.permissions?.read() ?? {};
  }

  /**
   * A server: the clients it hears, with their levels. A client: the other
   * clients as its server hears them (none at level 1), for its Machines panel.
   */
  roster(): RosterEntry[] {
    if (this.options.role === "client") return this.others;
    const levels = this.levels();
    return this.options.heardClients().map((c) => ({ ...c, level: levels[c.id] ?? DEFAULT_PERMISSION_LEVEL }));
  }

  /** The main sets a client's level; only for a client it hears or already has a level for. */
  setLevel(machineId: string, level: PermissionLevel): void {
    if (this.options.role !== "main" || !this.permissions) throw new AppError("NOT_THE_MAIN", "Permission levels are set on the main server's Machines panel.", { status: 409 });
    if (!this.options.hearsClient(machineId) && !(machineId in this.levels())) {
      throw new AppError("UNKNOWN_MACHINE", "No client with that id is known to this main server: it must be running and heard first.", { status: 404 });
    }
    this.permissions.set(machineId, level);
  }

  /**
   * One step of a loop the runtime runs on clients and the backup: a client
   * asks the main its level, or the backup when the main does not answer; the
   * paired backup copies every level from the main. Failures keep what was known.
   */
  refreshLevel(): Promise<void> {
    if (this.asking || this.options.role === "main") return Promise.resolve();
    this.asking = true;
    const step = this.options.role === "backup" ? this.copyLevels() : this.askOwnLevel();
    return step.catch(() => {}).finally(() => (this.asking = false));
  }

  private async askOwnLevel(): Promise<void> {
    const main = this.options.mainAddress();
    const servers = [main, this.options.backupAddress()].filter((a): a is HostPort => a !== null);
    for (const server of servers) {
      try {
        const answer = await askLevel(this.calls, server);
        this.level = answer.level;
        this.others = answer.machines;
        // Only the main's word names the backup (the backup's answer leaves it out).
        if (server === main && answer.backup !== undefined) await this.options.mainSaysBackup(answer.backup);
        return;
      } catch {
        // Not answering (or not serving levels): ask the next server.
      }
    }
  }

  private async copyLevels(): Promise<void> {
    const main = this.options.mainAddress();
    if (!main || this.options.pairedWith() === null) return;
    this.permissions!.replace(await askAllLevels(this.calls, main));
    this.groupsFile!.replace(await askGroups(this.calls, main));
  }
}
