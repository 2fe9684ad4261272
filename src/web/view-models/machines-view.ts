/**
 * The Machines, Routing and Delays panels' view-model: the rows (core/machine-rows.ts)
 * and what the panel offers (core/machines-offers.ts), built here once from the
 * machine's status, so the templates only draw it.
 */
import { machineRows, type MachineRow, type Viewer } from "../../core/machine-rows.ts";
import { foundBackups, machinesOffers, type FoundBackup, type MachinesOffers } from "../../core/machines-offers.ts";
import type { MachineStatus } from "../../core/status.ts";
import type { DiscoveredMachine } from "../../net/discovery/discovery.ts";
import { statusBarView, type StatusBarView } from "./status-bar-view.ts";

export type Discovered = { discovery: "on" | "off" | "standalone"; machines: DiscoveredMachine[] };
/** "Found on the network": the backups found (core/machines-offers.ts foundBackups), and whether this page may add one. */
export type DiscoveredList = { discovery: Discovered["discovery"]; machines: FoundBackup[]; mayAdd: boolean };
export type MachinesView = { status: MachineStatus; bar: StatusBarView; rows: MachineRow[]; discovered: DiscoveredList; viewer: Viewer; offers: MachinesOffers };

export function machinesView(status: MachineStatus, discovered: Discovered, heardWithinMs: number, viewer: Viewer): MachinesView {
  const rows = machineRows(status, discovered.machines, heardWithinMs, viewer);
  const offers = machinesOffers(status, rows, viewer.permission, discovered.machines);
  const list = { discovery: discovered.discovery, machines: foundBackups(discovered.machines), mayAdd: offers.addBackup === "form" };
  return { status, bar: statusBarView(status), discovered: list, viewer, rows, offers };
}
