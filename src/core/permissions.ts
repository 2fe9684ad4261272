/**
 * Permission levels of client machines (docs/design.md §Security), set on the main's
 * Machines panel: 1 sees only its own items, 2 (the default for a client the
 * main lists) sees the others read-only, 3 may edit everything, add or remove
 * the backup and switch back. A machine the main does not list (no level set,
 * not heard as a client) gets 1. A server's own pages may do everything.
 */
import { z } from "zod";
import { AppError } from "./errors.ts";

export const PERMISSION_LEVELS = [1, 2, 3] as const;
export type PermissionLevel = (typeof PERMISSION_LEVELS)[number];
export const DEFAULT_PERMISSION_LEVEL: PermissionLevel = 2;
/** A machine the main has never listed sees only its own items: holding the network key is not being one of the studio's clients. */
export const UNLISTED_PERMISSION_LEVEL: PermissionLevel = 1;

/** `id`'s level: the one set for it, else the default when the server lists it (hears it as a client), else level 1. */
export function levelOf(id: string, levels: Readonly<Record<string, PermissionLevel>>, listed: boolean): PermissionLevel {
  return levels[id] ?? (listed ? DEFAULT_PERMISSION_LEVEL : UNLISTED_PERMISSION_LEVEL);
}

export const permissionLevelSchema = z.coerce
  .number({ message: "Choose permission level 1, 2 or 3." })
  .int("Choose permission level 1, 2 or 3.")
  .min(1, "Choose permission level 1, 2 or 3.")
  .max(3, "Choose permission level 1, 2 or 3.")
  .transform((n) => n as PermissionLevel);

export const PERMISSION_WORDS: Record<PermissionLevel, string> = {
  1: "1 · own items only",
  2: "2 · sees others read-only",
  3: "3 · may change everything",
};

/** What a machine's pages may do: `null` is a server's own UI, which may do everything. */
export type Permission = PermissionLevel | null;

export const seesOthers = (p: Permission) => p === null || p >= 2;
export const maySwitchBack = (p: Permission) => p === null || p === 3;
export const mayChangeBackup = (p: Permission) => p === null || p === 3;

export class PermissionRefused extends AppError {
  constructor(level: PermissionLevel, what: string) {
    super("PERMISSION_REFUSED", `This machine has permission level ${level}, which may not ${what}. The main server's Machines panel sets each machine's level.`, {
      status: 403,
    });
  }
}
