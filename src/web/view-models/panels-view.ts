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

/** The Status panel's facts that are words chosen by a rule from the status. */
export type StatusWords = { activeServer: string; backupCopy: string; hubCopy: string; laneLag: string };
export type StatusPanelView = { status: MachineStatus; bar: StatusBarView; history: HistorySnapshot; words: StatusWords };
export type DelayRow = { peer: PeerDelayHistory; roleLabel: string; verdict: DelayVerdict };
export type DelaysView = { status: MachineStatus; bar: StatusBarView; rows: DelayRow[] };
export type RoutingView = { status: MachineStatus; bar: StatusBarView; rows: MachineRow[] };

function activeServerWords(s: MachineStatus): string {
  const active = s.failover?.activeServer ?? null;
  if (s.failover === null) return "none (stand-alone)";
  if (active === "self") return `this machine (${s.roleLabel})`;
  if (active === "main") return "the main server";
  if (active === "backup") return "the backup server";
  return "none reachable";
}

function backupCopyWords(s: MachineStatus): string {
  const b = s.showFile?.backup;
  if (!b) return "–";
  switch (b.state) {
    case "none":
      return "no backup";
    case "disconnected":
      return `not connected (${b.behindBy} behind)`;
    case "syncing":
      return `copying, ${Math.floor((b.progress ?? 0) * 100)} %`;
    case "in-sync":
      return "in sync (lag 0)";
    case "behind":
      return `behind by ${b.behindBy}`;
  }
}

/** Entries the backup lacks per lane, as the servers' heartbeats announce them; "–" where not known. */
function laneLagWords(s: MachineStatus): string {
  const lag = s.replication;
  if (!lag) return "–";
  const n = (v: number | null) => (v === null ? "not announced yet" : String(v));
  return `Data Hub state ${n(lag.hubState)} · show file and assets ${n(lag.log)}`;
}

export function statusPanelView(status: MachineStatus, history: HistorySnapshot): StatusPanelView {
  const f = status.failover;
  const hubCopy = f?.pairing ? (f.pairing.hubCopied || status.role !== "backup" ? "copied" : "first copy in progress") : "–";
  return { status, bar: statusBarView(status), history, words: { activeServer: activeServerWords(status), backupCopy: backupCopyWords(status), hubCopy, laneLag: laneLagWords(status) } };
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
