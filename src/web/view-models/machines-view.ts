/**
 * The Machines, Routing and Delays panels' view-model: the rows (core/machine-rows.ts)
 * and what the panel offers (core/machines-offers.ts), built here once from the
 * machine's status, so the templates only draw it.
 */
import { formatHostPort } from "../../core/config.ts";
import { machineRows, type MachineRow, type Viewer } from "../../core/machine-rows.ts";
import { machinesOffers, type MachinesOffers } from "../../core/machines-offers.ts";
import type { MachineStatus } from "../../core/status.ts";
import type { DiscoveredMachine } from "../../net/discovery/discovery.ts";
import { statusBarView, type StatusBarView } from "./status-bar-view.ts";

export type Discovered = { discovery: "on" | "off" | "standalone"; machines: DiscoveredMachine[] };
/** A machine found on the network, with its addresses written as an operator types them (IPv6 in brackets). */
export type DiscoveredRow = DiscoveredMachine & { addressText: string };
export type DiscoveredList = { discovery: Discovered["discovery"]; machines: DiscoveredRow[] };
export type MachinesView = { status: MachineStatus; bar: StatusBarView; rows: MachineRow[]; discovered: DiscoveredList; viewer: Viewer; offers: MachinesOffers };

export function machinesView(status: MachineStatus, discovered: Discovered, heardWithinMs: number, viewer: Viewer): MachinesView {
  const rows = machineRows(status, discovered.machines, heardWithinMs, viewer);
  const machines = discovered.machines.map((m) => ({ ...m, addressText: m.addresses.map((host) => formatHostPort({ host, port: m.port })).join(", ") }));
  return { status, bar: statusBarView(status), discovered: { discovery: discovered.discovery, machines }, viewer, rows, offers: machinesOffers(status, rows, viewer.permission, discovered.machines) };
}
