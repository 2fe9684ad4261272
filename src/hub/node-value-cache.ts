/**
 * The retained values a client node holds for its apps' subscriptions.
 * It answers a second app subscribing to what the node already follows (the
 * hub sends current values only for a filter new to the connection), and
 * filters out values the node has already delivered (the same version again
 * after a re-subscribe). Deleted keys are dropped. Bounded by what the apps
 * subscribe to, which the hub bounds (its retained key limit).
 */
import { levelsMatch, splitLevels } from "../core/topics.ts";
import type { Version } from "./frames.ts";
import { compareVersions } from "./retained-state.ts";

export type CachedValue = { readonly key: string; readonly value: unknown; readonly version: Version };

export class NodeValueCache {
  private readonly values = new Map<string, CachedValue>();

  keys(): string[] {
    return [...this.values.keys()];
  }

  /** A pushed value is news unless the node holds this version or a newer one. */
  isNews(key: string, version: Version): boolean {
    const cached = this.values.get(key);
    return !cached || compareVersions(version, cached.version) > 0;
  }

  /**
   * After a switch the active server is the truth, older or newer: a held key
   * whose answer differs (another version, or deleted there) must be re-delivered.
   */
  differsFromServer(key: string, value: unknown, version: Version): boolean {
    const cached = this.values.get(key);
    return cached !== undefined && (value === null || compareVersions(version, cached.version) !== 0);
  }

  /** Records a delivered value; null (deleted) forgets the key. */
  remember(key: string, value: unknown, version: Version): void {
    if (value === null) this.values.delete(key);
    else this.values.set(key, { key, value, version });
  }

  /** Held values whose key matches `filter`. */
  matching(filter: string): CachedValue[] {
    const levels = splitLevels(filter);
    return [...this.values.values()].filter((v) => levelsMatch(levels, splitLevels(v.key)));
  }

  /** Drops keys no app follows any more. */
  keepOnly(isFollowed: (key: string) => boolean): void {
    for (const key of [...this.values.keys()]) if (!isFollowed(key)) this.values.delete(key);
  }
}
