/**
 * Which roles a machine may take, given its license. A fresh start without a
 * license is always allowed as stand-alone.
 */
import { AppError } from "./errors.ts";
import { checkLicenseInForce, LicenseRejected, type LicenseTerms, type LicenseType } from "./license.ts";

export const ROLES = ["standalone", "client", "server", "main", "backup"] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_LABELS: Record<Role, string> = {
  standalone: "Stand-alone",
  client: "Client",
  server: "Server",
  main: "Main server",
  backup: "Backup server",
};

/** License types that allow each role (docs/design.md §Roles and licenses). */
const ROLE_NEEDS: Record<Role, readonly LicenseType[]> = {
  standalone: ["standalone", "client", "server", "server-with-failover"],
  client: ["client", "server", "server-with-failover"],
  server: ["server", "server-with-failover"],
  main: ["server-with-failover"],
  backup: ["server-with-failover"],
};

export class RoleNotAllowed extends AppError {
  readonly role: Role;
  constructor(role: Role, message: string) {
    super("ROLE_NOT_ALLOWED", message, { status: 400 });
    this.name = "RoleNotAllowed";
    this.role = role;
  }
}

/** Throws RoleNotAllowed (saying what to do) unless `license` lets this machine take `role` at `now`. */
export function checkRole(role: Role, license: LicenseTerms | null, machineName: string, now: number): void {
  if (role === "standalone") return;
  const label = ROLE_LABELS[role];
  const needs = ROLE_NEEDS[role];
  const needText = needs.length === 1 ? `a "${needs[0]}" license` : `a ${needs.map((t) => `"${t}"`).join(" or ")} license`;
  if (license === null) {
    throw new RoleNotAllowed(role, `${label} needs ${needText}; this machine has none. Add a license on the setup page or with --license.`);
  }
  try {
    checkLicenseInForce(license, machineName, now);
  } catch (error) {
    if (error instanceof LicenseRejected) throw new RoleNotAllowed(role, `${label} is not available: ${error.message}`);
    throw error;
  }
  if (!needs.includes(license.type)) {
    const why = role === "main" || role === "backup" ? " A main and its backup must both run server-with-failover." : "";
    throw new RoleNotAllowed(role, `${label} needs ${needText}; this machine's license is "${license.type}".${why}`);
  }
}

export type RoleChoice = { role: Role; label: string; allowed: boolean; reason: string | null };

/** Every role with whether it is allowed and, if not, why: the setup page shows the reason beside it. */
export function roleChoices(license: LicenseTerms | null, machineName: string, now: number): RoleChoice[] {
  return ROLES.map((role) => {
    try {
      checkRole(role, license, machineName, now);
      return { role, label: ROLE_LABELS[role], allowed: true, reason: null };
    } catch (error) {
      if (!(error instanceof RoleNotAllowed)) throw error;
      return { role, label: ROLE_LABELS[role], allowed: false, reason: error.message };
    }
  });
}

/** Roles that serve the Data Hub and own or mirror the show file. */
export function isServerRole(role: Role): boolean {
  return role === "server" || role === "main" || role === "backup";
}

/** Which server addresses a role's setup uses (the role form drops the others). */
export const ROLE_ADDRESSES: Record<Role, { main: boolean; backup: boolean }> = {
  standalone: { main: false, backup: false },
  client: { main: true, backup: true },
  server: { main: false, backup: false },
  main: { main: false, backup: true },
  backup: { main: true, backup: false },
};
