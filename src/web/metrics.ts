/**
 * `GET /metrics` in the Prometheus text format (version 0.0.4): failovers and
 * failbacks this machine saw, its epoch, who serves, the round-trip histogram
 * per peer, each replication lane's lag and the local apps on its Data Hub link.
 */
import type { MachineStatus } from "../core/status.ts";
import { RTT_BUCKETS_MS, type HistorySnapshot } from "../machine/status-history.ts";

const label = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export function renderMetrics(s: MachineStatus, h: HistorySnapshot): string {
  const out: string[] = [];
  const metric = (name: string, type: "counter" | "gauge" | "histogram", help: string, lines: string[]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
  };
  const f = s.failover;
  metric("understudy_failovers_total", "counter", "Times this machine saw the backup take over the network.", [`understudy_failovers_total ${h.failovers}`]);
  metric("understudy_failbacks_total", "counter", "Times this machine saw the main take the network back.", [`understudy_failbacks_total ${h.failbacks}`]);
  metric("understudy_epoch", "gauge", "The highest failover epoch this machine knows.", [`understudy_epoch ${f?.epoch ?? 0}`]);
  const active = f?.activeServer === "self" ? (s.role === "backup" ? "backup" : "main") : (f?.activeServer ?? null);
  metric(
    "understudy_active_server",
    "gauge",
    "1 for the server whose Data Hub this machine uses.",
    (["main", "backup"] as const).map((server) => `understudy_active_server{server="${server}"} ${active === server ? 1 : 0}`),
  );
  const rtt: string[] = [];
  for (const p of h.peers) {
    const who = `peer="${label(p.name)}",id="${label(p.id)}",role="${label(p.role)}"`;
    RTT_BUCKETS_MS.forEach((bound, i) => rtt.push(`understudy_peer_rtt_ms_bucket{${who},le="${bound}"} ${p.buckets[i]}`));
    rtt.push(`understudy_peer_rtt_ms_bucket{${who},le="+Inf"} ${p.buckets[RTT_BUCKETS_MS.length]}`);
    rtt.push(`understudy_peer_rtt_ms_sum{${who}} ${p.sumMs}`, `understudy_peer_rtt_ms_count{${who}} ${p.count}`);
  }
  metric("understudy_peer_rtt_ms", "histogram", "Heartbeat round trip to each peer, in milliseconds.", rtt);
  const lanes: string[] = [];
  if (s.showFile) lanes.push(`understudy_lane_lag{lane="show_file"} ${s.showFile.backup.behindBy}`);
  if (f?.pairing && s.role === "backup") lanes.push(`understudy_lane_lag{lane="hub_state"} ${f.pairing.hubCopied ? 0 : 1}`);
  metric("understudy_lane_lag", "gauge", "How far the backup's copy is behind, per replication lane (entries).", lanes);
  metric("understudy_local_apps", "gauge", "Local apps connected to this machine's node.", [`understudy_local_apps ${f?.localApps ?? 0}`]);
  metric("understudy_hub_queued_frames", "gauge", "Messages from local apps waiting for a Data Hub.", [`understudy_hub_queued_frames ${f?.queued ?? 0}`]);
  return `${out.join("\n")}\n`;
}
