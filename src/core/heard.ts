/**
 * The one "heard within the timeout" rule (docs/design.md §Heartbeats and
 * freshness): a machine counts as heard when its last heartbeat came strictly
 * less than a timeout ago, as the failover core counts (heard at > now − T).
 * Every page, panel and loop that asks "do we hear it?" asks this.
 */
export function heardWithin(lastHeardMsAgo: number, timeoutMs: number): boolean {
  return lastHeardMsAgo < timeoutMs;
}
