/**
 * The filters a node's local apps subscribe to (hub-uplink.ts): their union is
 * what the node subscribes to upstream. Each app may hold `perApp` filters and
 * the node `total`, so one app cannot take every other app's share.
 */
import { LimitReached } from "./hub-errors.ts";
import { SubscriptionIndex } from "./subscription-index.ts";
import { DEFAULT_MAX_FILTERS, DEFAULT_MAX_FILTERS_PER_APP } from "./uplink-options.ts";

export class AppFilters<A> extends SubscriptionIndex<A> {
  private readonly perAppCount = new Map<A, number>();

  constructor(
    private readonly perApp = DEFAULT_MAX_FILTERS_PER_APP,
    private readonly total = DEFAULT_MAX_FILTERS,
  ) {
    super();
  }

  /** Adds `filter` for `app`: whether it is new upstream, or why it is refused (LIMIT_REACHED). */
  take(app: A, filter: string): { newUpstream: boolean } | LimitReached {
    const newUpstream = !this.has(filter);
    const newForApp = newUpstream || !this.subscribersOf(filter).includes(app);
    const mine = this.perAppCount.get(app) ?? 0;
    if (newForApp && mine >= this.perApp) return new LimitReached(`An app may hold at most ${this.perApp} subscriptions on this node; unsubscribe some first.`);
    if (newUpstream && this.filters().length >= this.total) return new LimitReached(`This node holds at most ${this.total} distinct subscriptions for all its apps together.`);
    if (newForApp) this.perAppCount.set(app, mine + 1);
    this.add(filter, app);
    return { newUpstream };
  }

  /** Drops `filter` for `app`; true when no app holds it any more (the node unsubscribes upstream). */
  release(app: A, filter: string): boolean {
    if (!this.subscribersOf(filter).includes(app)) return false;
    const mine = this.perAppCount.get(app) ?? 1;
    if (mine <= 1) this.perAppCount.delete(app);
    else this.perAppCount.set(app, mine - 1);
    return this.remove(filter, app);
  }

  /** Every app that holds any filter. */
  holders(): Set<A> {
    const apps = new Set<A>();
    for (const filter of this.filters()) for (const app of this.subscribersOf(filter)) apps.add(app);
    return apps;
  }
}
