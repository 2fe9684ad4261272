/**
 * Heartbeats refused for speaking as a server without its machine key (core/heartbeat-trust.ts),
 * counted per sender, and the one warning about each: a few are normal while two machines learn
 * each other's keys (a start, a restart), more mean another key holder speaks in a server's name.
 */
import type { KnownServers } from "../core/heartbeat-trust.ts";

/** Senders counted, at most; each is warned about once. */
const MAX_WARNED_IMPOSTORS = 64;
/** Refused heartbeats from one sender before the warning. */
export const IMPOSTOR_WARN_AFTER = 10;

export class ImpostorTally {
  readonly #bySender = new Map<string, number>();
  /** Heartbeats refused, in all. */
  refused = 0;

  /** Counts one refused heartbeat; the warning to log, once per sender, when it has sent IMPOSTOR_WARN_AFTER. */
  refuse(hb: { readonly id: string; readonly role: string }, known: KnownServers): string | null {
    this.refused++;
    const count = (this.#bySender.get(hb.id) ?? 0) + 1;
    if (count > IMPOSTOR_WARN_AFTER || (!this.#bySender.has(hb.id) && this.#bySender.size >= MAX_WARNED_IMPOSTORS)) return null;
    this.#bySender.set(hb.id, count);
    if (count < IMPOSTOR_WARN_AFTER) return null;
    const as =
      hb.id === known.main ? "the main server" : hb.id === known.backup ? "the backup server" : hb.role === "client" ? "a client" : `a ${hb.role} server this machine does not know`;
    return `Ignoring heartbeats that speak for ${as} (${hb.id}) without its machine key: another machine holding the network key sends them, or that server is not the one this machine paired with or was set up with.`;
  }
}
