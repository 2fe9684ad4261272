/**
 * How often the failover runner answers a heartbeat at once (failover-runner.ts answer): each
 * kind of answer at most once per sender per half heartbeat period (a challenge just sent must
 * not hold back the answer to the peer's challenge: that costs a period after a cut heals; nor
 * may one lost in a cut hold back the next, whose heartbeat comes a little under a period later
 * when its trip was shorter), and a bounded number in all, so a spoofed flood cannot amplify.
 */

/** Heartbeats answered at most per heartbeat period, in all. */
export const MAX_CHALLENGES_PER_PERIOD = 64;

export class AnswerBudget {
  private readonly lastAt = new Map<string, number>();
  private window = { startedAt: -Infinity, count: 0 };

  constructor(
    private readonly periodMs: number,
    /** Keys remembered at most; the oldest is forgotten first. */
    private readonly maxKeys: number,
  ) {}

  /** Whether an answer of kind `key` (a sender, and which kind) may go now; if so, it is counted. */
  take(key: string, now: number): boolean {
    if ((this.lastAt.get(key) ?? -Infinity) > now - this.periodMs / 2) return false;
    if (now - this.window.startedAt >= this.periodMs) this.window = { startedAt: now, count: 0 };
    if (this.window.count >= MAX_CHALLENGES_PER_PERIOD) return false;
    this.window.count++;
    this.lastAt.set(key, now);
    if (this.lastAt.size > this.maxKeys) this.lastAt.delete(this.lastAt.keys().next().value!);
    return true;
  }
}
