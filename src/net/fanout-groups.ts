/**
 * Bun topics for hub fan-out (docs/design.md §Data Hub): a message for N
 * subscribers is sealed once and handed to Bun once, as `server.publish` to a
 * topic whose members are exactly those N connections, so the bytes are not
 * copied per socket in JS. A topic stands for one set of connection ids (its
 * name is the sorted ids), so it never needs updating: when subscriptions
 * change, another set (another topic) is used. A closing socket leaves its
 * topics in Bun by itself; the groups holding it are forgotten here.
 * At most `maxGroups` are kept, least recently used first out.
 */
import type { TopicMember } from "./secure-socket.ts";

export const DEFAULT_MAX_FANOUT_GROUPS = 256;

type Group = { readonly topic: string; readonly members: readonly TopicMember[]; readonly ids: readonly string[] };

export class FanoutGroups {
  private readonly groups = new Map<string, Group>();
  private readonly byConnection = new Map<string, Set<string>>();
  private readonly maxGroups: number;

  constructor(maxGroups = DEFAULT_MAX_FANOUT_GROUPS) {
    this.maxGroups = Math.max(1, maxGroups);
  }

  get size(): number {
    return this.groups.size;
  }

  /**
   * Publishes `sealed` to exactly the connections `ids` through one Bun topic; false when some
   * connection cannot join topics (then the caller writes to each).
   */
  publish(ids: readonly string[], connection: (id: string) => TopicMember | undefined, sealed: Uint8Array): boolean {
    const key = [...ids].sort().join(" ");
    let group = this.groups.get(key);
    if (group) {
      this.groups.delete(key); // re-insert: most recently used last
      this.groups.set(key, group);
    } else {
      const members: TopicMember[] = [];
      for (const id of ids) {
        const member = connection(id);
        if (!member) return false;
        members.push(member);
      }
      group = { topic: `hub:${key}`, members, ids: [...ids] };
      for (const member of members) member.subscribe(group.topic);
      this.groups.set(key, group);
      for (const id of ids) {
        let keys = this.byConnection.get(id);
        if (!keys) this.byConnection.set(id, (keys = new Set()));
        keys.add(key);
      }
      if (this.groups.size > this.maxGroups) this.evict(this.groups.keys().next().value as string);
    }
    return group.members[0]!.publishSealed(group.topic, sealed);
  }

  /** A connection closed: the groups holding it are gone (Bun already dropped its subscriptions). */
  forget(id: string): void {
    for (const key of this.byConnection.get(id) ?? []) this.evict(key, id);
    this.byConnection.delete(id);
  }

  private evict(key: string, closed?: string): void {
    const group = this.groups.get(key);
    if (!group) return;
    this.groups.delete(key);
    group.members.forEach((member, i) => {
      const id = group.ids[i]!;
      if (id === closed) return;
      if (member.open) member.unsubscribe(group.topic);
      this.byConnection.get(id)?.delete(key);
    });
  }
}
