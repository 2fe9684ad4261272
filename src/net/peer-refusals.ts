/**
 * Refused connections to servers, on the refused side: back off with jitter
 * (a backup on another key retried every 100 ms, forever), log repeats once a
 * minute, and remember the last refusal so this machine's chip and Machines
 * panel say why, with both fingerprints.
 */
import type { Clock } from "../core/clock.ts";
import { RepeatFilter } from "../core/repeat-filter.ts";
import type { PeerRefusal } from "../core/status.ts";
import type { Logger } from "../log.ts";
import { NetworkKeyMismatch, PeerRefused } from "./errors.ts";

/** First wait after a refusal; doubles per refusal in a row up to MAX_REFUSAL_BACKOFF_MS. */
export const MIN_REFUSAL_BACKOFF_MS = 500;
export const MAX_REFUSAL_BACKOFF_MS = 8_000;

/** The wait before try number `refusals + 1`: exponential, with jitter over its upper half so refused machines do not retry in step. */
export function refusalBackoffMs(refusals: number, random: () => number): number {
  if (refusals <= 0) return 0;
  const ceiling = Math.min(MAX_REFUSAL_BACKOFF_MS, MIN_REFUSAL_BACKOFF_MS * 2 ** (refusals - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** The server answered and said no (as opposed to nothing answering, which is retried at the normal pace). */
export function isRefusal(error: unknown): error is NetworkKeyMismatch | PeerRefused {
  return error instanceof NetworkKeyMismatch || error instanceof PeerRefused;
}

export class PeerRefusals {
  private readonly state = new Map<string, { refusals: number; until: number }>();
  private readonly logged = new RepeatFilter();
  private last: PeerRefusal | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  /** Milliseconds to wait before trying `address` again (0: now). */
  waitMs(address: string): number {
    const entry = this.state.get(address);
    return entry ? Math.max(0, entry.until - this.clock.now()) : 0;
  }

  /**
   * A try at `address` failed: refusals back off and are remembered; every failure is logged
   * under `event`, the first at once, repeats once a minute with a count.
   */
  failed(address: string, error: unknown, event: string): void {
    const now = this.clock.now();
    const code = (error as { code?: string }).code ?? "ERROR";
    const verdict = this.logged.note(`${event} ${address} ${code}`, now);
    if (verdict.report) {
      this.log.warn(event, { server: address, code, message: (error as Error).message, ...(verdict.suppressed > 0 ? { repeated: verdict.suppressed } : {}) });
    }
    if (!isRefusal(error)) return;
    const refusals = (this.state.get(address)?.refusals ?? 0) + 1;
    this.state.set(address, { refusals, until: now + refusalBackoffMs(refusals, this.random) });
    const mismatch = error instanceof NetworkKeyMismatch ? error : null;
    this.last = {
      peer: address,
      code: error.code,
      message: error.message,
      peerFingerprint: mismatch?.peerFingerprint ?? null,
      localFingerprint: mismatch?.localFingerprint ?? null,
    };
  }

  /** A connection to `address` worked: no more waiting, and its refusal is no longer shown; its next failure is logged at once. */
  succeeded(address: string, event: string): void {
    this.state.delete(address);
    if (this.last?.peer === address) this.last = null;
    this.logged.clearPrefix(`${event} ${address} `);
  }

  /** The refusal to show, or null. */
  current(): PeerRefusal | null {
    return this.last;
  }
}
