/**
 * The Machines, Routing and Delays panels' view-model: the rows (core/machine-rows.ts)
 * and what the panel offers (core/machines-offers.ts), built here once from the
 * machine's status, so the templates only draw it.
 */
import { machineRows, type MachineRow, type Viewer } from "../../core/machine-rows.ts";
import { machinesOffers, type MachinesOffers } from "../../core/machines-offers.ts";
import type { MachineStatus } from "../../core/status.ts";
import type { DiscoveredMachine } from "../../net/discovery/discovery.ts";

export type Discovered = { discovery: "on" | "off" | "standalone"; machines: DiscoveredMachine[] };
export type MachinesView = { status: MachineStatus; rows: MachineRow[]; discovered: Discovered; viewer: Viewer; offers: MachinesOffers };

export function machinesView(status: MachineStatus, discovered: Discovered, heardWithinMs: number, viewer: Viewer): MachinesView {
  const rows = machineRows(status, discovered.machines, heardWithinMs, viewer);
  return { status, discovered, viewer, rows, offers: machinesOffers(status, rows, viewer.permission, discovered.machines) };
}
