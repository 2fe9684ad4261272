/**
 * The setup pages' password when they listen beyond loopback: HTTP Basic,
 * compared in constant time (hashes of equal length through timingSafeEqual;
 * hono's basicAuth with a custom verifyUser would skip its own), failures
 * throttled per source (an IPv4 address, or an IPv6 /64: one host can hold a
 * whole /64), and logged once a minute per source with a count.
 *
 * There is no throttle for everyone together: guesses from many addresses
 * would then lock the operator out (20 a second from rotating addresses made
 * the right password 429 on every try). A source that guessed wrong too often
 * waits, even with the right password, so its guesses stay slow.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Clock } from "../core/clock.ts";
import { SourceRateLimit, type SourceLimits } from "../core/rate-limit.ts";
import { RepeatFilter } from "../core/repeat-filter.ts";
import type { Logger } from "../log.ts";

/** Wrong passwords allowed per source: a few typos at once, then one every 10 s; 2,000 guesses from one address take days, not 0.5 s. */
export const PASSWORD_FAILURE_LIMITS: SourceLimits = {
  perSource: { burst: 5, perSecond: 0.1 },
  total: null,
  maxSources: 4096,
};

export type PasswordVerdict = "ok" | "wrong" | "throttled";

export class PasswordGuard {
  private readonly failures: SourceRateLimit;
  private readonly reports = new RepeatFilter();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger | null,
    limits: SourceLimits = PASSWORD_FAILURE_LIMITS,
  ) {
    this.failures = new SourceRateLimit(limits, clock.now());
  }

  /** Checks the Authorization header of a request from `source` against `password`. */
  check(source: string, authorization: string | undefined, password: string): PasswordVerdict {
    const now = this.clock.now();
    source = throttleSource(source);
    if (this.failures.peek(source, now) !== "ok") {
      this.report(source, "throttled", now);
      return "throttled";
    }
    if (authorization !== undefined && passwordMatches(basicPassword(authorization), password)) return "ok";
    // No header at all is a browser asking for the dialog, not a guess.
    if (authorization === undefined) return "wrong";
    this.failures.take(source, now);
    this.report(source, "wrong", now);
    return "wrong";
  }

  /** Once a minute per kind, naming the latest source: guesses from rotating addresses are one line a minute, not one per address. */
  private report(source: string, what: "wrong" | "throttled", now: number): void {
    const verdict = this.reports.note(what, now);
    if (!verdict.report) return;
    const fields = { from: source, ...(verdict.suppressed > 0 ? { repeated: verdict.suppressed } : {}) };
    if (what === "wrong") this.log?.warn("setup pages: wrong password", fields);
    else this.log?.warn("setup pages: too many wrong passwords, refusing for now", fields);
  }
}

/** What one guesser is: its IPv4 address, or the /64 of its IPv6 address (an IPv4-mapped one is IPv4). */
export function throttleSource(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const [head = "", tail = ""] = address.toLowerCase().split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups = address.includes("::") ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** The password of a Basic Authorization header (the user name is ignored), or null. */
export function basicPassword(header: string): string | null {
  const match = /^Basic ([A-Za-z0-9+/=]{1,4096})$/i.exec(header.trim());
  if (!match) return null;
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : decoded.slice(colon + 1);
}

/** Constant time in the length and content of both: SHA-256 both sides, then compare 32 bytes. */
export function passwordMatches(given: string | null, password: string): boolean {
  if (given === null) return false;
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(password).digest();
  return timingSafeEqual(a, b);
}
