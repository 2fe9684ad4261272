/**
 * The setup page's view-model: the license, the role choices, the addresses
 * and the network key, with the settings that flags fixed.
 */
import type { RoleChoice } from "../../core/roles.ts";
import type { MachineStatus } from "../../core/status.ts";
import { statusBarView, type StatusBarView } from "./status-bar-view.ts";

export type LicenseSummary = { type: string; typeLabel: string; holder: string; expiresAt: string | null };

/** What the machine knows for its setup page (machine/machine-node.ts builds it). */
export type SetupFacts = {
  status: MachineStatus;
  license: LicenseSummary | null;
  roles: RoleChoice[];
  role: string;
  main: string | null;
  backup: string | null;
  keyFingerprint: string | null;
  /** The network key itself, on a main server (or a machine not yet given a role) so it can be pasted on the others. */
  networkKey: string | null;
  /** The main's failback; null where this machine is not a main (a server counts: it may be given a backup). */
  failback: "auto" | "manual" | null;
  /** Settings fixed by flags or environment, shown read-only with why. */
  pinned: { role: boolean; main: boolean; backup: boolean; license: boolean; key: boolean; failback: boolean };
};

export type SetupView = SetupFacts & { bar: StatusBarView };

export function setupView(facts: SetupFacts): SetupView {
  return { ...facts, bar: statusBarView(facts.status) };
}
