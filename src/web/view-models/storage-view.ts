/**
 * The Synced storage panel's view-model: the status, the folder, the history
 * and what the panel offers (core/storage-offers.ts), built here once so the
 * templates only draw it.
 */
import type { MachineStatus } from "../../core/status.ts";
import { statusBarView, type StatusBarView } from "./status-bar-view.ts";
import { storageOffers, type StorageOffers } from "../../core/storage-offers.ts";
import type { LogEntry } from "../../services/show-file-protocol.ts";
import type { FolderSyncView, SyncJob } from "../../services/show-folder/folder-sync.ts";

export type { FolderSyncView, LogEntry, SyncJob };

export type StorageHistory = { entries: LogEntry[]; readOnly: boolean } | { error: string } | null;

/** Everything the panel shows; `sync` null on a stand-alone machine. */
export type StorageView = {
  status: MachineStatus;
  bar: StatusBarView;
  history: StorageHistory;
  sync: FolderSyncView | null;
  pinned: { folder: boolean; autoPull: boolean };
  offers: StorageOffers;
};

/** What a form left behind: what was typed, and the outcome in words. */
export type FormEcho = { value?: string; error?: string; saved?: string };

export function storageView(parts: Omit<StorageView, "offers" | "bar">): StorageView {
  return { ...parts, bar: statusBarView(parts.status), offers: storageOffers(parts.status, parts.sync, parts.pinned.autoPull) };
}
