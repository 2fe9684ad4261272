/**
 * This server's pairing with the other one (docs/design.md §Pairing), on
 * either side: adopting the partner a pairing exchange just proved (one
 * sequence, whoever ran the exchange), dropping it, the main keeping the
 * pairing its setup asks for, and the main's Add Backup / Remove Backup.
 */
import { AppError } from "../core/errors.ts";
import { formatHostPort, parseHostPort, type HostPort } from "../core/config.ts";
import type { Clock, Timers } from "../core/clock.ts";
import type { Logger } from "../log.ts";
import type { HeartbeatKeys } from "../net/heartbeat-keys.ts";
import type { PairedPeer, PairingService } from "../services/pairing-service.ts";
import type { PairingFile } from "../store/pairing-file.ts";
import { PairingKeeper } from "./pairing-keeper.ts";
import { resolveHost } from "./resolve-host.ts";

/** How often the main's keeper looks at the pairing its setup asks for. */
export const KEEP_PAIRED_STEP_MS = 250;

export type PartnershipOptions = {
  role: "main" | "backup" | "client";
  /** Null on clients: they pair with nobody. */
  pairingFile: Pick<PairingFile, "details" | "expect" | "rememberKey"> | null;
  heartbeatKeys: Pick<HeartbeatKeys, "pin">;
  exchange: Pick<PairingService, "pair" | "unpair">;
  /** Tells the core (the runner's feed). */
  feed: (event: { type: "paired"; peerId: string } | { type: "unpaired" }) => void;
  /** The pairing changed: heartbeats go where the core now says, and a backup's copy starts afresh. */
  changed: () => void;
  /** The backup address the main's setup names now, and changing it. */
  wantedBackup: () => HostPort | null;
  setWantedBackup: (at: HostPort | null) => void;
  log: Logger;
  timers: Timers;
  /** For the keeper's back-off (the system's by default). */
  clock?: Clock;
  /** The keeper's jitter, uniform in [0, 1) (Math.random by default). */
  random?: () => number;
  /** An address typed on Add Backup, resolved (machine/resolve-host.ts by default; the simulator's names need no DNS). */
  resolve?: (at: HostPort | null) => Promise<HostPort | null>;
};

export class Partnership {
  private keeper: PairingKeeper | null = null;
  private stopKeeper: (() => void) | null = null;
  /** Bumped by every Remove Backup: an Add Backup whose exchange was still running then pairs nothing. */
  private removals = 0;

  constructor(private readonly o: PartnershipOptions) {}

  /** The partner of a pairing exchange that just succeeded: its key pinned and kept, the core told, heartbeats moved. */
  adopt(peer: PairedPeer, address: string): void {
    this.o.heartbeatKeys.pin(peer.peerKey);
    this.o.pairingFile?.expect({ ...peer, address });
    this.o.feed({ type: "paired", peerId: peer.peerId });
    this.o.pairingFile?.rememberKey(peer.peerId, peer.peerKey);
    this.o.changed();
  }

  /** The pairing is gone (removed on the main, dropped by the main on the backup, or let go by the keeper). */
  drop(): void {
    this.o.feed({ type: "unpaired" });
    this.o.changed();
  }

  /** The paired server's address as recorded, or null. */
  pairedAddress(): HostPort | null {
    const address = this.o.pairingFile?.details()?.address ?? null;
    return address === null ? null : parseHostPort(address);
  }

  /** The main keeps the pairing its setup asks for (machine/pairing-keeper.ts). */
  keep(): void {
    const keeper = (this.keeper = new PairingKeeper({
      wanted: () => this.o.wantedBackup(),
      current: () => this.o.pairingFile!.details(),
      exchange: this.o.exchange,
      paired: (peer, address) => this.adopt(peer, address),
      unpaired: () => this.drop(),
      log: this.o.log,
      clock: this.o.clock,
      random: this.o.random,
    }));
    keeper.step();
    this.stopKeeper = this.o.timers.every(KEEP_PAIRED_STEP_MS, () => keeper.step());
  }

  /** The core found the backup dropped the pairing: run the exchange again. */
  pairAgain(): void {
    this.keeper?.pairAgain();
  }

  /**
   * Add Backup server (the main's Machines panel): the pairing exchange runs
   * now, so the operator reads a refusal in plain words (PairingRefused)
   * instead of finding it in the log. A paired backup must be removed first.
   * Removed while its exchange ran, it is not adopted: the main tells the
   * backup it is removed (the operator's last word counts).
   */
  async addBackup(address: string): Promise<{ peerName: string }> {
    if (this.o.role !== "main") throw new BackupChangeRefused("Only the main server adds a backup server.");
    const have = this.o.pairingFile!.details();
    if (have) throw new BackupChangeRefused(`${have.peerName || have.address} is the backup server now: remove it first, then add another.`);
    const at = (await (this.o.resolve ?? resolveHost)(parseHostPort(address)))!;
    const removals = this.removals;
    const peer = await this.o.exchange.pair(at);
    if (this.removals !== removals) {
      await this.o.exchange.unpair(at);
      throw new BackupChangeRefused(`${peer.peerName || formatHostPort(at)} was removed while it was being added, so it is not the backup server: add it again to pair it.`);
    }
    this.o.setWantedBackup(at);
    this.adopt(peer, formatHostPort(at));
    return { peerName: peer.peerName };
  }

  /** Removes the paired backup (the delete icon on its row): tells it, then forgets it. */
  async removeBackup(): Promise<void> {
    if (this.o.role !== "main") throw new BackupChangeRefused("Only the main server removes its backup server.");
    this.removals += 1;
    this.o.setWantedBackup(null);
    const have = this.o.pairingFile!.details();
    if (!have) return;
    const haveAt = parseHostPort(have.address);
    if (haveAt) await this.o.exchange.unpair(haveAt);
    this.drop();
  }

  /** "Forget this main" on the backup's own page: it lets go of its main, which must pair again (and prove itself) to be followed. */
  forgetMain(): void {
    if (this.o.role !== "backup") throw new BackupChangeRefused("Only a backup server forgets its main.");
    if (!this.o.pairingFile?.details()) return;
    this.drop();
  }

  stop(): void {
    this.stopKeeper?.();
  }
}

export class BackupChangeRefused extends AppError {
  constructor(message: string) {
    super("BACKUP_CHANGE_REFUSED", message, { status: 409 });
  }
}
