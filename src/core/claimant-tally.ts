/**
 * Machines that sent claims they could not back (core/signed-claims.ts): a
 * count per machine id for /metrics and the Machines panel, and a log line
 * per machine at most once a minute, with how many since the last one, so a
 * claimant flooding every heartbeat period is named without flooding the log.
 */

/** How often one claimant is named in the log. */
export const CLAIMANT_LOG_EVERY_MS = 60_000;
/** Claimants tracked at most; past that only the total grows. */
const MAX_CLAIMANTS = 256;

type Entry = { total: number; sinceLog: number; loggedAt: number };

export class ClaimantTally {
  readonly #by = new Map<string, Entry>();
  /** Unbacked claims from every machine, also those past MAX_CLAIMANTS. */
  total = 0;

  /** Counts one; returns the log line when it is due (the first one, then once a minute). */
  record(id: string, what: string, now: number): string | null {
    this.total++;
    let e = this.#by.get(id);
    if (e === undefined) {
      if (this.#by.size >= MAX_CLAIMANTS) return null;
      this.#by.set(id, (e = { total: 0, sinceLog: 0, loggedAt: -Infinity }));
    }
    e.total++;
    e.sinceLog++;
    if (now - e.loggedAt < CLAIMANT_LOG_EVERY_MS) return null;
    const n = e.sinceLog;
    e.sinceLog = 0;
    e.loggedAt = now;
    return `Machine ${id} sent ${n === 1 ? "a claim" : `${n} claims`} it cannot back (${what}): it holds the network key but speaks beyond what the servers signed. Its claims are ignored; check that machine.`;
  }

  /** Unbacked claims per machine id, since this process started. */
  counts(): ReadonlyMap<string, number> {
    return new Map([...this.#by].map(([id, e]) => [id, e.total]));
  }
}
