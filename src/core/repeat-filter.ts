/**
 * Log de-duplication: the first occurrence of a key is reported at once, later
 * ones within `windowMs` are only counted and reported with the next report
 * after the window ("refused 412 times in the last minute"). Pure; time passed in.
 */
export const DEFAULT_REPEAT_WINDOW_MS = 60_000;
/** Keys remembered at most; a spray of sources cannot grow memory. */
export const MAX_REPEAT_KEYS = 4096;

export type RepeatVerdict = { report: true; suppressed: number } | { report: false };

export class RepeatFilter {
  private readonly seen = new Map<string, { since: number; suppressed: number }>();

  constructor(private readonly windowMs = DEFAULT_REPEAT_WINDOW_MS) {}

  /** Whether to log this occurrence of `key` now; `suppressed` = occurrences not logged since the last report. */
  note(key: string, now: number): RepeatVerdict {
    const entry = this.seen.get(key);
    if (entry && now - entry.since < this.windowMs) {
      entry.suppressed += 1;
      return { report: false };
    }
    const suppressed = entry?.suppressed ?? 0;
    this.seen.delete(key);
    if (this.seen.size >= MAX_REPEAT_KEYS) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, { since: now, suppressed: 0 });
    return { report: true, suppressed };
  }

  /** Forget every key that starts with `prefix` (the condition cleared): their next occurrence is reported at once. */
  clearPrefix(prefix: string): void {
    for (const key of this.seen.keys()) if (key.startsWith(prefix)) this.seen.delete(key);
  }
}
