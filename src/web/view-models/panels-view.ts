/**
 * The Status, Delays and Routing panels' view-models: the status bar, each
 * peer's delay verdict (core/delay-verdict.ts) and role in words
 * (core/machine-rows.ts), built once so the templates only draw them.
 */
import { delayVerdict, type DelayVerdict } from "../../core/delay-verdict.ts";
import { roleLabelOf, type MachineRow } from "../../core/machine-rows.ts";
import type { MachineStatus } from "../../core/status.ts";
import { HISTORY_SAMPLE_MS, type HistorySnapshot, type PeerDelayHistory } from "../../core/status-history.ts";
import { statusBarView, type StatusBarView } from "./status-bar-view.ts";

export type StatusPanelView = { status: MachineStatus; bar: StatusBarView; history: HistorySnapshot };
export type DelayRow = { peer: PeerDelayHistory; roleLabel: string; verdict: DelayVerdict };
export type DelaysView = { status: MachineStatus; bar: StatusBarView; rows: DelayRow[] };
export type RoutingView = { status: MachineStatus; bar: StatusBarView; rows: MachineRow[] };

export function statusPanelView(status: MachineStatus, history: HistorySnapshot): StatusPanelView {
  return { status, bar: statusBarView(status), history };
}

export function delaysView(status: MachineStatus, history: HistorySnapshot): DelaysView {
  const now = new Map((status.failover?.peers ?? []).map((p) => [p.id, p]));
  const rows = history.peers.map((peer) => ({
    peer,
    roleLabel: roleLabelOf(peer.role),
    verdict: delayVerdict({ now: now.get(peer.id) ?? null, samples: peer.samples, heardWithinMs: history.heardWithinMs, sampleMs: HISTORY_SAMPLE_MS }),
  }));
  return { status, bar: statusBarView(status), rows };
}

export function routingView(status: MachineStatus, rows: MachineRow[]): RoutingView {
  return { status, bar: statusBarView(status), rows };
}
