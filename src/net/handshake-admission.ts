/**
 * What a connection may cost this machine before it is authenticated. There
 * is no socket before that: the dialer's proof travels in the upgrade request
 * (handshake.ts), so a stranger costs one HMAC and a refused key holder
 * (bad, replayed or stale proof) never gets a socket that could buffer
 * anything. What is left to bound is the Ed25519 work of key holders: a token
 * bucket per source address first, then in total. Refusals are cheap (a 403 or
 * 503 before the upgrade); `RefusalLog` reports them once per source per
 * minute with a count. docs/design.md §Security.
 */
import type { Clock } from "../core/clock.ts";
import type { AppError } from "../core/errors.ts";
import { RepeatFilter } from "../core/repeat-filter.ts";
import { SourceRateLimit, type SourceLimits } from "../core/rate-limit.ts";

/**
 * Handshakes reaching the signature step (only machines that proved the key with
 * a fresh proof get there). One costs ≈ 2 ms of the main thread: the total burst
 * keeps a stall well below the failover timeout, and a machine may still
 * reconnect all its lanes at once after a failover and forward a burst of its
 * apps' calls (each `understudy push` or `asset get` is a new connection to the main).
 */
export const DEFAULT_HANDSHAKE_LIMITS: SourceLimits = {
  perSource: { burst: 32, perSecond: 16 },
  total: { burst: 32, perSecond: 200 },
  maxSources: 4096,
};

export type AdmissionLimits = { handshakes: SourceLimits };
export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = { handshakes: DEFAULT_HANDSHAKE_LIMITS };

/** Spends handshake tokens, per source first (a source out of its own tokens takes none from the total); the caller refuses when it says no. */
export class HandshakeAdmission {
  private readonly rate: SourceRateLimit;

  constructor(
    private readonly clock: Clock,
    limits: AdmissionLimits = DEFAULT_ADMISSION_LIMITS,
  ) {
    this.rate = new SourceRateLimit(limits.handshakes, clock.now());
  }

  /** The network key was proven with a fresh proof: may this source have the signature work now? */
  admitSignature(source: string): boolean {
    return this.rate.take(source, this.clock.now()) === "ok";
  }
}

/**
 * Refusals reported once per source and code per minute, with how many were
 * not reported in between: a backup on another key retrying every 100 ms, or a
 * flood, is one line a minute, not thirty a second.
 */
export class RefusalLog {
  private readonly filter = new RepeatFilter();

  constructor(
    private readonly clock: Clock,
    private readonly report: (address: string, error: AppError, suppressed: number) => void,
  ) {}

  refused(address: string, error: AppError): void {
    const verdict = this.filter.note(`${sourceAddress(address)} ${error.code}`, this.clock.now());
    if (verdict.report) this.report(address, error, verdict.suppressed);
  }
}

/** "10.0.0.2:51234" → "10.0.0.2", "[::1]:7401" → "::1": limits count per address, not per port. */
export function sourceAddress(address: string): string {
  const bracketed = /^\[([^\]]+)\]:\d+$/.exec(address);
  if (bracketed) return bracketed[1]!;
  const colon = address.lastIndexOf(":");
  return colon > 0 && address.indexOf(":") === colon ? address.slice(0, colon) : address;
}
