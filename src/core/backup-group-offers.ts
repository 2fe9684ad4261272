/**
 * What the Backup groups panel offers, and why not when it doesn't: the
 * groups are kept by the main and copied by its backup (docs/design.md
 * §Security: level 3 may change everything), so they are edited on the main's
 * own pages or by a client at permission level 3, and shown read-only elsewhere.
 */
import { mayChangeBackup, maySwitchBack, type Permission } from "./permissions.ts";
import type { MachineStatus } from "./status.ts";

/** Null when this page may create, edit and delete groups; otherwise why not, in words. */
export function backupGroupEditRefusal(s: MachineStatus, permission: Permission): string | null {
  if (s.failover === null) return "A stand-alone machine has no render engines to back up: make it a server or a client on the setup page.";
  if (s.role === "backup") return "This backup server holds a copy of the main's backup groups: change them on the main server.";
  if (s.role === "client" && !mayChangeBackup(permission)) {
    return `This machine has permission level ${permission}: backup groups are changed on the main server or by a client at level 3.`;
  }
  return null;
}

/** Main-engine rows the group form offers; a group uses as many as it fills. */
export const MAIN_ROWS = 4;

/**
 * Null when this page may switch engines by hand: the active server's own pages, or a client at
 * level 3 (it asks the servers, and the one that serves says why not if it does not switch); otherwise why not.
 */
export function engineSwitchRefusal(s: MachineStatus, permission: Permission, active: boolean): string | null {
  if (s.failover === null) return "A stand-alone machine switches no engines.";
  if (permission !== null) {
    return maySwitchBack(permission)
      ? null
      : `This machine has permission level ${permission}: engines are switched on the Health panel of the server that serves the network, or by a client at level 3.`;
  }
  if (!active) return "This server does not serve the network now: the server that serves switches the engines.";
  return null;
}
