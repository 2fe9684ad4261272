/**
 * High-water marks of (origin, seq): the highest seq seen from each publisher.
 * A publisher sends its seqs in rising order and resends unacknowledged ones
 * in the same order after a switch, so "seq ≤ mark" means "already seen".
 *
 * Bounded: origins are per publisher run, so old ones pile up; the least
 * recently heard is forgotten first. Forgetting an origin can at worst let one
 * resend through twice, never lose a message.
 */

export const DEFAULT_MAX_TRACKED_ORIGINS = 10_000;

export class OriginMarks {
  // Map order is recency order: touching an origin moves it to the end.
  private readonly marks = new Map<string, number>();
  private readonly maxOrigins: number;

  constructor(maxOrigins = DEFAULT_MAX_TRACKED_ORIGINS) {
    this.maxOrigins = Math.max(1, maxOrigins);
  }

  /** The highest seq seen from `origin`, or 0. */
  get(origin: string): number {
    return this.marks.get(origin) ?? 0;
  }

  isDuplicate(origin: string, seq: number): boolean {
    return seq <= this.get(origin);
  }

  /** Raises the mark to `seq` (never lowers it) and makes `origin` the most recent. */
  record(origin: string, seq: number): void {
    const mark = Math.max(seq, this.get(origin));
    this.marks.delete(origin);
    this.marks.set(origin, mark);
    if (this.marks.size > this.maxOrigins) {
      const oldest = this.marks.keys().next().value as string;
      this.marks.delete(oldest);
    }
  }

  get size(): number {
    return this.marks.size;
  }

  /** Forgets every mark: the next seq from any origin counts as new. */
  clear(): void {
    this.marks.clear();
  }
}
