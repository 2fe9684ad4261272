/**
 * `GET /metrics` in the Prometheus text format (version 0.0.4): failovers and
 * failbacks this machine saw, its epoch, who serves, the round-trip histogram
 * per peer, each replication lane's lag, the local apps on its Data Hub link,
 * and on servers the Data Hub's clients, message counters (for Prometheus's
 * `rate()`) and message rates over the last ten seconds (for a glance without
 * a Prometheus), and the Asset Hub cache.
 */
import type { MachineStatus } from "../core/status.ts";
import type { DiskUsage } from "../core/storage-check.ts";
import { RTT_BUCKETS_MS, type HistorySnapshot } from "../core/status-history.ts";

const LANE_NAMES = { hubState: "hub_state", log: "show_file_and_assets" } as const;

const round = (n: number) => Math.round(n * 10) / 10;

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
  metric(
    "understudy_unbacked_claims_total",
    "counter",
    "Heartbeat claims a machine sent that no server's signature backs (an epoch, a server it follows, hearing the main): a key holder speaking beyond what the servers signed.",
    (f?.peers ?? []).filter((p) => (p.unbackedClaims ?? 0) > 0).map((p) => `understudy_unbacked_claims_total{machine="${label(p.id)}",name="${label(p.name)}"} ${p.unbackedClaims}`),
  );
  const lag = s.replication;
  const lanes = lag
    ? (["hubState", "log"] as const).flatMap((lane) => (lag[lane] === null ? [] : [`understudy_lane_lag{lane="${LANE_NAMES[lane]}"} ${lag[lane]}`]))
    : [];
  metric("understudy_lane_lag", "gauge", "Entries the backup's copy lacks, per replication lane (hub_state; show_file_and_assets: the log that carries both).", lanes);
  metric("understudy_local_apps", "gauge", "Local apps connected to this machine's node.", [`understudy_local_apps ${f?.localApps ?? 0}`]);
  metric("understudy_hub_queued_frames", "gauge", "Messages from local apps waiting for a Data Hub.", [`understudy_hub_queued_frames ${f?.queued ?? 0}`]);
  metric("understudy_hub_kept_frames", "gauge", "Messages the active hub acknowledged, kept by this node to resend after a switch of server.", [`understudy_hub_kept_frames ${f?.kept ?? 0}`]);
  metric(
    "understudy_hub_kept_dropped_early_total",
    "counter",
    "Kept messages let go before their time because the count or byte bound was reached: a switch right then could lose them.",
    [`understudy_hub_kept_dropped_early_total ${f?.keptDroppedEarly ?? 0}`],
  );
  const hub = s.hub;
  if (hub) {
    metric("understudy_hub_clients", "gauge", "Connections to this server's Data Hub (node uplinks, this machine's own included).", [`understudy_hub_clients ${hub.clients}`]);
    metric(
      "understudy_hub_frames_received_total",
      "counter",
      "Frames this server's Data Hub took since it started, by type (pub and set are the messages).",
      Object.entries(hub.received).map(([type, n]) => `understudy_hub_frames_received_total{type="${label(type)}"} ${n}`),
    );
    metric("understudy_hub_deliveries_total", "counter", "Messages and state values this server's Data Hub handed to subscribers since it started (one to N subscribers counts N).", [
      `understudy_hub_deliveries_total ${hub.deliveries}`,
    ]);
    if (hub.retained) hubRetainedMetrics(metric, hub.retained);
    const rates = h.hubRates;
    metric(
      "understudy_hub_messages_per_second",
      "gauge",
      "Messages (pub and set) this server's Data Hub took (in) and handed to subscribers (out) per second, over the last 10 s.",
      rates ? [`understudy_hub_messages_per_second{direction="in"} ${round(rates.receivedPerSec)}`, `understudy_hub_messages_per_second{direction="out"} ${round(rates.deliveredPerSec)}`] : [],
    );
  }
  const storage = s.storage;
  if (storage) {
    const perServer = (name: string, bytes: (u: DiskUsage) => number) =>
      (["main", "backup"] as const).flatMap((server) => {
        const usage = storage[server];
        return usage ? [`${name}{server="${server}"} ${bytes(usage)}`] : [];
      });
    const cache = perServer("understudy_asset_cache_bytes", (u) => u.cacheBytes);
    const free = perServer("understudy_disk_free_bytes", (u) => u.freeBytes);
    metric("understudy_asset_cache_bytes", "gauge", "Bytes in the Asset Hub cache (assets and show-file contents), on the main and the backup as far as known here.", cache);
    metric("understudy_disk_free_bytes", "gauge", "Free bytes on the disk holding the data dir, on the main and the backup as far as known here.", free);
  }
  return `${out.join("\n")}\n`;
}

type MetricFn = (name: string, type: "counter" | "gauge" | "histogram", help: string, lines: string[]) => void;

/** Retained state held against its bounds, and per machine: who is filling the hub (hub/retained-shares.ts). */
function hubRetainedMetrics(metric: MetricFn, r: NonNullable<NonNullable<MachineStatus["hub"]>["retained"]>): void {
  metric("understudy_hub_retained_keys", "gauge", "Live retained keys this server's Data Hub holds, in total and per machine that wrote them.", [
    `understudy_hub_retained_keys ${r.keys}`,
    ...r.machines.map((m) => `understudy_hub_retained_keys{machine="${label(m.name)}"} ${m.keys}`),
  ]);
  metric("understudy_hub_retained_bytes", "gauge", "Bytes of retained keys and values (JSON) this server's Data Hub holds, in total and per machine that wrote them.", [
    `understudy_hub_retained_bytes ${r.bytes}`,
    ...r.machines.map((m) => `understudy_hub_retained_bytes{machine="${label(m.name)}"} ${m.bytes}`),
  ]);
  metric("understudy_hub_retained_limit", "gauge", "The hub's bounds on retained state: keys and bytes in total.", [
    `understudy_hub_retained_limit{unit="keys"} ${r.maxKeys}`,
    `understudy_hub_retained_limit{unit="bytes"} ${r.maxBytes}`,
  ]);
  metric("understudy_hub_retained_refused_on_import_total", "counter", "Retained values from the other server not kept here because they did not fit the shares.", [
    `understudy_hub_retained_refused_on_import_total ${r.refusedOnImport}`,
  ]);
}
