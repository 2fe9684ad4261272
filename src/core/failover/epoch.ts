/**
 * Epoch rules.
 *
 * An epoch is a persisted integer naming one serving term: every Data Hub
 * write and every announcement carries it, and clients follow the active
 * server with the highest epoch. Two servers with no working link between
 * them cannot agree on "the next number", so the number line is split:
 * **the main claims odd epochs, the backup even ones**. A server that becomes
 * active claims the smallest epoch it owns above every epoch it knows. Then
 * two servers can never be active at the same epoch, whatever the network
 * does, and a server never re-serves an epoch (a restart claims a new one),
 * so (epoch, seq) stamps from different terms never collide.
 *
 * In the normal alternation (main, backup, main, ...) this is exactly "+1
 * each time the active server changes"; it skips one only when a server
 * takes over from itself (a restart) or from a term it never heard of.
 */
import type { ServerRole } from "./types.ts";

/** The server that may claim this epoch. Epoch 0 means "none yet" and is nobody's. */
export function epochOwner(epoch: number): ServerRole | null {
  if (epoch <= 0) return null;
  return epoch % 2 === 1 ? "main" : "backup";
}

/** The smallest epoch above `known` that `role` owns: what it claims when it becomes active. */
export function claimEpoch(role: ServerRole, known: number): number {
  const next = Math.max(0, Math.floor(known)) + 1;
  return epochOwner(next) === role ? next : next + 1;
}
