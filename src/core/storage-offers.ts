/**
 * What the Synced storage panel offers, and why not when it doesn't: Push,
 * Pull and the Auto-Pull switch. The panel only draws what this says.
 */
import type { MachineStatus } from "./status.ts";

/** The exact refusal while the backup serves (docs/design.md §Failover, step 4). */
export const READ_ONLY_MESSAGE = "The main server is down: file changes can't be pushed or pulled until it is back";

/**
 * The show file is read-only because the backup serves, as this machine's status says.
 * (docs/design.md §Failover, step 4; the runtime's own rule is `filesRoute` in routing.ts.)
 */
export function backupServes(s: MachineStatus): boolean {
  const active = s.failover?.activeServer ?? null;
  return active === "backup" || (active === "self" && s.role === "backup");
}

/** The show folder's state as far as the offers read it (services/show-folder's FolderSyncView is one). */
export type FolderState = {
  readonly folder: string | null;
  readonly autoPull: boolean;
  readonly problem: string | null;
  readonly toPush: readonly unknown[] | null;
  readonly toPushCount: number;
  readonly job: { readonly kind: "push" | "pull" } | null;
};

/** Each control's reason it cannot be used now, or null when it can. */
export type StorageOffers = {
  /** The show file is read-only while the backup serves. */
  readonly readOnly: boolean;
  readonly pull: string | null;
  readonly push: string | null;
  readonly autoPull: string | null;
};

/** `sync` null on a stand-alone machine; `autoPullPinned` when --auto-pull fixed the switch. */
export function storageOffers(s: MachineStatus, sync: FolderState | null, autoPullPinned: boolean): StorageOffers {
  const readOnly = backupServes(s);
  const blocked = syncBlocked(readOnly, sync);
  const push = blocked !== null || sync === null ? blocked : sync.toPush !== null && sync.toPushCount === 0 ? "Nothing to push: the folder has no changes." : null;
  // Turning Auto-Pull off is always allowed when nothing else forbids it; turning it on needs a working folder too.
  const autoPull = autoPullPinned ? "Set by --auto-pull on the command line." : readOnly ? `${READ_ONLY_MESSAGE}.` : sync?.autoPull ? null : blocked;
  return { readOnly, pull: blocked, push, autoPull };
}

function syncBlocked(readOnly: boolean, sync: FolderState | null): string | null {
  if (sync === null) return "A stand-alone machine has no synced storage.";
  if (readOnly) return `${READ_ONLY_MESSAGE}.`;
  if (sync.folder === null) return "Set the show folder first.";
  if (sync.problem !== null) return sync.problem;
  if (sync.job !== null) return `A ${sync.job.kind} is in progress.`;
  return null;
}
