/**
 * The main keeps the pairing its setup asks for: with the backup named there
 * it runs the pairing exchange until it succeeds; with another one named it
 * removes the old one first; with none it removes the backup it had; and it
 * runs the exchange again when the core finds the backup has dropped the
 * pairing (`pairAgain`, from the pairAgain effect). Retries
 * back off with jitter up to PAIRING_RETRY_MAX_MS, and a failure is logged
 * once per distinct message, so a refused backup does not flood the log.
 */
import type { Clock } from "../core/clock.ts";
import { formatHostPort, parseHostPort, type HostPort } from "../core/config.ts";
import type { Logger } from "../log.ts";
import { systemClock } from "../net/system-time.ts";
import type { PairingDetails } from "../store/pairing-file.ts";
import type { PairedPeer, PairingService } from "../services/pairing-service.ts";

export const PAIRING_RETRY_FIRST_MS = 1000;
export const PAIRING_RETRY_MAX_MS = 5000;

export type PairingKeeperOptions = {
  /** The backup address the setup names, or null. */
  wanted: () => HostPort | null;
  current: () => PairingDetails | null;
  exchange: Pick<PairingService, "pair" | "unpair">;
  paired: (peer: PairedPeer, address: string) => void;
  unpaired: () => void;
  log: Logger;
  clock?: Clock;
  /** Uniform in [0, 1), for the retry's jitter (a seeded generator in the simulator). */
  random?: () => number;
};

export class PairingKeeper {
  private busy = false;
  private retryAt = 0;
  private delay = PAIRING_RETRY_FIRST_MS;
  private lastError = "";
  /** The backup said it is not paired with this main: run the exchange even though a pairing is recorded. */
  private again = false;
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(private readonly options: PairingKeeperOptions) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  pairAgain(): void {
    this.again = true;
  }

  /** One attempt, unless one is running or the backoff says wait. Returns the attempt (for tests). */
  step(): Promise<void> | null {
    if (this.busy || this.clock.now() < this.retryAt) return null;
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
        this.retryAt = this.clock.now() + this.delay * (0.75 + this.random() / 2);
        this.delay = Math.min(PAIRING_RETRY_MAX_MS, this.delay * 2);
      },
    );
  }

  private async attempt(): Promise<void> {
    const { wanted, current, exchange, log } = this.options;
    const wantAt = wanted();
    const want = wantAt === null ? null : formatHostPort(wantAt);
    const have = current();
    if (have && have.address !== want) {
      // An address the file holds is one this machine wrote; one it cannot read is let go without a word to it.
      const haveAt = parseHostPort(have.address);
      if (haveAt) await exchange.unpair(haveAt);
      this.options.unpaired();
      log.info("removed the backup", { backup: have.peerName, address: have.address });
    }
    // A pairing recorded before the servers kept each other's machine key is run again to learn it.
    if (wantAt === null || (have && have.address === want && have.peerKey !== null && !this.again)) return;
    const peer = await exchange.pair(wantAt);
    this.again = false;
    this.options.paired(peer, formatHostPort(wantAt));
    log.info("paired with the backup", { backup: peer.peerName, id: peer.peerId, address: formatHostPort(wantAt) });
  }
}
