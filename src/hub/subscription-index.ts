/**
 * Which subscribers a topic reaches: filter -> subscribers, each filter split
 * into levels once. Matching scans the distinct filters (a studio has tens to
 * hundreds), which is simpler than a trie and fast enough at 10k msgs/s.
 *
 * Used by the hub (subscribers are connection ids) and by a client node
 * (subscribers are local app ids). Filters must already be valid.
 *
 * Every message asks `match`, and a studio publishes to the same few hundred
 * topics over and over: answers are kept per topic (at most MAX_CACHED_TOPICS)
 * until the subscriptions change.
 */
import { levelsMatch, splitLevels } from "../core/topics.ts";

/** Topics whose subscribers are remembered at once; past it the memory starts over. */
export const MAX_CACHED_TOPICS = 4096;

export class SubscriptionIndex<S> {
  private readonly byFilter = new Map<string, { levels: string[]; subscribers: Set<S> }>();
  private readonly matched = new Map<string, readonly S[]>();

  /** Returns true when `filter` had no subscriber before (a node then subscribes upstream). */
  add(filter: string, subscriber: S): boolean {
    let entry = this.byFilter.get(filter);
    const isNew = entry === undefined;
    if (!entry) {
      entry = { levels: splitLevels(filter), subscribers: new Set() };
      this.byFilter.set(filter, entry);
    }
    if (!entry.subscribers.has(subscriber)) this.matched.clear();
    entry.subscribers.add(subscriber);
    return isNew;
  }

  /** Returns true when `filter` has no subscriber left (a node then unsubscribes upstream). */
  remove(filter: string, subscriber: S): boolean {
    const entry = this.byFilter.get(filter);
    if (!entry || !entry.subscribers.delete(subscriber)) return false;
    this.matched.clear();
    if (entry.subscribers.size > 0) return false;
    this.byFilter.delete(filter);
    return true;
  }

  /** Every subscriber with at least one filter matching `topic`, each once (shared: do not change it). */
  match(topic: string): readonly S[] {
    const known = this.matched.get(topic);
    if (known) return known;
    const topicLevels = splitLevels(topic);
    const found = new Set<S>();
    for (const { levels, subscribers } of this.byFilter.values()) {
      if (levelsMatch(levels, topicLevels)) for (const s of subscribers) found.add(s);
    }
    const answer = [...found];
    if (this.matched.size >= MAX_CACHED_TOPICS) this.matched.clear();
    this.matched.set(topic, answer);
    return answer;
  }

  /** Whether `subscriber` has a filter matching `topic`. */
  matches(subscriber: S, topic: string): boolean {
    const topicLevels = splitLevels(topic);
    for (const { levels, subscribers } of this.byFilter.values()) {
      if (subscribers.has(subscriber) && levelsMatch(levels, topicLevels)) return true;
    }
    return false;
  }

  /** The distinct filters, in the order they were first subscribed. */
  filters(): string[] {
    return [...this.byFilter.keys()];
  }

  /** Who subscribed to exactly `filter`. */
  subscribersOf(filter: string): S[] {
    return [...(this.byFilter.get(filter)?.subscribers ?? [])];
  }

  has(filter: string): boolean {
    return this.byFilter.has(filter);
  }
}
