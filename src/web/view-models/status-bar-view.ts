/**
 * The status bar's view-model: the machine's name, role and version and the
 * chip core/console-chip.ts chooses, built once so the bar only draws it.
 */
import { consoleChip, type ConsoleChip } from "../../core/console-chip.ts";
import type { MachineStatus } from "../../core/status.ts";

export type StatusBarView = { name: string; roleLabel: string; version: string; chip: ConsoleChip };

export function statusBarView(status: MachineStatus): StatusBarView {
  return { name: status.name, roleLabel: status.roleLabel, version: status.version, chip: consoleChip(status) };
}
