/**
 * The main keeps the pairing its setup asks for: with the backup named there
 * it runs the pairing exchange until it succeeds; with another one named it
 * removes the old one first; with none it removes the backup it had; and it
 * runs the exchange again when the core finds the backup has dropped the
 * pairing (`pairAgain`, from the pairAgain effect). Retries
 * back off with jitter up to PAIRING_RETRY_MAX_MS, and a failure is logged
 * once per distinct message, so a refused backup does not flood the log.
 */
import type { Logger } from "../log.ts";
import { systemClock } from "../net/system-time.ts";
import type { PairingDetails } from "../store/pairing-file.ts";
import type { PairedPeer, PairingService } from "../services/pairing-service.ts";

export const PAIRING_RETRY_FIRST_MS = 1000;
export const PAIRING_RETRY_MAX_MS = 5000;

export type PairingKeeperOptions = {
  /** The backup address the setup names, or null. */
  wanted: () => string | null;
  current: () => PairingDetails | null;
  exchange: Pick<PairingService, "pair" | "unpair">;
  paired: (peer: PairedPeer, address: string) => void;
  unpaired: () => void;
  log: Logger;
  now?: () => number;
};

export class PairingKeeper {
  private busy = false;
  private retryAt = 0;
  private delay = PAIRING_RETRY_FIRST_MS;
  private lastError = "";
  /** The backup said it is not paired with this main: run the exchange even though a pairing is recorded. */
  private again = false;
  private readonly now: () => number;

  constructor(private readonly options: PairingKeeperOptions) {
    this.now = options.now ?? (() => systemClock.now());
  }

  pairAgain(): void {
    this.again = true;
  }

  /** One attempt, unless one is running or the backoff says wait. Returns the attempt (for tests). */
  step(): Promise<void> | null {
    if (this.busy || this.now() < this.retryAt) return null;
    this.busy = true;
    return this.attempt().then(
      () => {
        this.busy = false;
        this.delay = PAIRING_RETRY_FIRST_MS;
        this.lastError = "";
      },
      (error) => {
        this.busy = false;
        const message = (error as Error).message;
        if (message !== this.lastError) this.options.log.warn("pairing with the backup failed", { message });
        this.lastError = message;
        this.retryAt = this.now() + this.delay * (0.75 + Math.random() / 2);
        this.delay = Math.min(PAIRING_RETRY_MAX_MS, this.delay * 2);
      },
    );
  }

  private async attempt(): Promise<void> {
    const { wanted, current, exchange, log } = this.options;
    const want = wanted();
    const have = current();
    if (have && have.address !== want) {
      await exchange.unpair(have.address);
      this.options.unpaired();
      log.info("removed the backup", { backup: have.peerName, address: have.address });
    }
    // A pairing recorded before the servers kept each other's machine key is run again to learn it.
    if (want === null || (have && have.address === want && have.peerKey !== null && !this.again)) return;
    const peer = await exchange.pair(want);
    this.again = false;
    this.options.paired(peer, want);
    log.info("paired with the backup", { backup: peer.peerName, id: peer.peerId, address: want });
  }
}
