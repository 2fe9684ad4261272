/**
 * The status chip every machine shows, computed from its own failover state.
 * Same wording everywhere, so a studio engineer reads the same words on the
 * main, the backup and every client.
 */
import { isDown } from "../failure-detector.ts";
import { syncProgress, type BackupState } from "./backup.ts";
import type { ClientState } from "./client.ts";
import type { MainState } from "./main.ts";
import { otherActiveEpoch } from "./server-common.ts";
import type { BeatBody } from "./types.ts";
import type { ChipText } from "../status.ts";

export type ChipKind =
  | "no-backup"
  | "backup-syncing"
  | "backup-idle"
  | "backup-active"
  | "main-unreachable-from-backup"
  | "main-isolated"
  | "no-server";

export interface StatusChip {
  readonly kind: ChipKind;
  readonly text: ChipText;
  /** 0..1 while the backup's copy is catching up. */
  readonly progress: number | null;
}

export const CHIP_TEXT: Readonly<Record<ChipKind, ChipText>> = {
  "no-backup": "No backup",
  "backup-syncing": "Backup is syncing",
  "backup-idle": "Backup is idle",
  "backup-active": "Backup is active",
  "main-unreachable-from-backup": "Main unreachable from backup",
  "main-isolated": "Main isolated",
  "no-server": "No server reachable",
};

function chip(kind: ChipKind, progress: number | null = null): StatusChip {
  return { kind, text: CHIP_TEXT[kind], progress };
}

/** The chip as the backup's own heartbeat describes it (what the main and clients show). */
function fromBackupBeat(beat: BeatBody | null): StatusChip {
  if (beat === null || beat.role !== "backup") return chip("no-backup");
  switch (beat.state) {
    case "active":
      return chip("backup-active");
    case "syncing":
      return chip("backup-syncing", beat.syncProgress);
    case "idle":
      return beat.condition === "main-unreachable-from-backup" ? chip("main-unreachable-from-backup") : chip("backup-idle");
    default:
      return chip("no-backup");
  }
}

export function statusChip(s: MainState | BackupState | ClientState, now: number): StatusChip {
  switch (s.role) {
    case "backup":
      return backupChip(s);
    case "main":
      return mainChip(s, now);
    case "client":
      return clientChip(s, now);
  }
}

function backupChip(s: BackupState): StatusChip {
  switch (s.phase.kind) {
    case "unpaired":
      return chip("no-backup");
    case "syncing":
      return chip("backup-syncing", syncProgress(s));
    case "idle":
      return s.phase.condition === null ? chip("backup-idle") : chip("main-unreachable-from-backup");
    case "active":
      return chip("backup-active");
  }
}

function mainChip(s: MainState, now: number): StatusChip {
  if (s.peerId === null) return chip("no-backup");
  if (s.phase.kind === "isolated") return chip("main-isolated");
  // Also true when the backup is heard only through clients that follow it.
  if (otherActiveEpoch(s, "main", now) !== null) return chip("backup-active");
  // A backup silent for a timeout is, for now, no backup at all.
  if (isDown(s.other.live, now, s.timings)) return chip("no-backup");
  return fromBackupBeat(s.other.beat);
}

function clientChip(s: ClientState, now: number): StatusChip {
  // A failback underway (the backup stepped down for the main's newer term) is not "No server reachable" until a timeout passes.
  const switching = s.switchingSince != null && now - s.switchingSince < s.timings.failoverTimeoutMs;
  if (s.following === null && switching) return chip("backup-active");
  if (s.following === null && (s.knows.main || s.knows.backup)) return chip("no-server");
  const backup = s.servers.backup;
  if (backup.beat === null || isDown(backup.live, now, s.timings)) return chip("no-backup");
  return fromBackupBeat(backup.beat);
}
