import { expect, test } from "bun:test";
import { durableHistorySchema, HISTORY_SAMPLES, KEPT_FAILOVER_RECORDS, RATE_WINDOW_SAMPLES, StatusHistory } from "../../../src/core/status-history.ts";
import { renderMetrics } from "../../../src/web/metrics.ts";
import { peer, statusFixture } from "../../support/status-fixture.ts";

const T0 = Date.UTC(2026, 10, 30, 10, 0, 0);

test("keeps the last minute of round trips per peer, with the worst and gaps where it was not heard", () => {
  const h = new StatusHistory(1000);
  h.record(statusFixture({}, { peers: [peer({ delayMs: 0.5 })] }), T0);
  h.record(statusFixture({}, { peers: [peer({ delayMs: 4 })] }), T0 + 1000);
  h.record(statusFixture({}, { peers: [peer({ delayMs: 9, lastHeardMsAgo: 5000 })] }), T0 + 2000);
  const [p] = h.snapshot().peers;
  expect(p!.samples).toEqual([0.5, 4, null]);
  expect(p!.worstMs).toBe(4);
  expect(p!.count).toBe(2);
  for (let i = 0; i < HISTORY_SAMPLES + 5; i++) h.record(statusFixture({}, { peers: [peer({ delayMs: 1 })] }), T0 + 3000 + i * 1000);
  const after = h.snapshot().peers[0]!;
  expect(after.samples.length).toBe(HISTORY_SAMPLES);
  expect(after.worstMs).toBe(1);
});

test("a peer gone for a whole minute is forgotten", () => {
  const h = new StatusHistory(1000);
  h.record(statusFixture({}, { peers: [peer()] }), T0);
  for (let i = 1; i <= HISTORY_SAMPLES; i++) h.record(statusFixture({}, { peers: [] }), T0 + i * 1000);
  expect(h.snapshot().peers).toEqual([]);
});

test("counts failovers and failbacks and says when and why the last one happened", () => {
  const h = new StatusHistory(1000);
  const onMain = statusFixture({ role: "client", roleLabel: "Client" }, { activeServer: "main", peers: [peer({ id: "m", name: "main", role: "main", lastHeardMsAgo: 20 })] });
  const onBackup = statusFixture({ role: "client", roleLabel: "Client" }, { activeServer: "backup", peers: [peer({ id: "m", name: "main", role: "main", lastHeardMsAgo: 1040 })] });
  h.record(onMain, T0);
  expect(h.snapshot()).toMatchObject({ failovers: 0, failbacks: 0, last: null });
  h.record(onBackup, T0 + 1000);
  expect(h.snapshot()).toMatchObject({ failovers: 1, failbacks: 0, last: { server: "backup", tookMs: 1040, at: "2026-11-30T10:00:01.000Z" } });
  expect(h.snapshot().last!.why).toContain("last heard 1040 ms before");
  h.record(statusFixture({ role: "client" }, { activeServer: null }), T0 + 2000);
  h.record(onMain, T0 + 3000);
  expect(h.snapshot()).toMatchObject({ failovers: 1, failbacks: 1, last: { server: "main" } });
});

test("the Data Hub's message rates over the last ten seconds, started afresh when the hub restarts", () => {
  const h = new StatusHistory(1000);
  const hub = (pub: number, set: number, deliveries: number) => statusFixture({ hub: { clients: 2, received: { hello: 2, pub, set }, deliveries } });
  h.record(hub(0, 0, 0), T0);
  expect(h.snapshot().hubRates).toBeNull();
  for (let i = 1; i <= RATE_WINDOW_SAMPLES + 5; i++) h.record(hub(i * 90, i * 10, i * 300), T0 + i * 1000);
  expect(h.snapshot().hubRates).toEqual({ receivedPerSec: 100, deliveredPerSec: 300 });
  h.record(hub(5, 0, 5), T0 + 20_000);
  expect(h.snapshot().hubRates).toBeNull();
  h.record(hub(55, 0, 105), T0 + 22_000);
  expect(h.snapshot().hubRates).toEqual({ receivedPerSec: 25, deliveredPerSec: 50 });
  const text = renderMetrics(hub(55, 0, 105), h.snapshot());
  expect(text).toContain('understudy_hub_messages_per_second{direction="in"} 25');
  expect(text).toContain('understudy_hub_messages_per_second{direction="out"} 50');
  h.record(statusFixture({ hub: null }), T0 + 23_000);
  expect(h.snapshot().hubRates).toBeNull();
});

test("/metrics text: counters, epoch, active server, a cumulative RTT histogram per peer", () => {
  const h = new StatusHistory(1000);
  for (const ms of [0.3, 0.7, 30]) h.record(statusFixture({}, { peers: [peer({ delayMs: ms })] }), T0);
  const text = renderMetrics(statusFixture(), h.snapshot());
  for (const line of [
    "# TYPE understudy_failovers_total counter",
    "understudy_epoch 3",
    'understudy_active_server{server="main"} 1',
    'understudy_active_server{server="backup"} 0',
    'understudy_peer_rtt_ms_bucket{peer="backup",id="b0b0b0b0b0b0b0b0",role="backup",le="0.5"} 1',
    'understudy_peer_rtt_ms_bucket{peer="backup",id="b0b0b0b0b0b0b0b0",role="backup",le="1"} 2',
    'understudy_peer_rtt_ms_bucket{peer="backup",id="b0b0b0b0b0b0b0b0",role="backup",le="+Inf"} 3',
    'understudy_peer_rtt_ms_count{peer="backup",id="b0b0b0b0b0b0b0b0",role="backup"} 3',
    'understudy_lane_lag{lane="show_file_and_assets"} 0',
    "understudy_local_apps 2",
  ]) {
    expect(text).toContain(line);
  }
  expect(text.endsWith("\n")).toBe(true);
});

test("the failover counts and records outlive a restart: a new history restored from durable() tells the last failover", () => {
  const onMain = statusFixture({ role: "client", roleLabel: "Client" }, { activeServer: "main", peers: [peer({ id: "m", name: "main", role: "main", lastHeardMsAgo: 20 })] });
  const onBackup = statusFixture({ role: "client", roleLabel: "Client" }, { activeServer: "backup", peers: [peer({ id: "m", name: "main", role: "main", lastHeardMsAgo: 1040 })] });
  const h = new StatusHistory(1000);
  expect(h.record(onMain, T0)).toBe(false);
  expect(h.record(onBackup, T0 + 1000)).toBe(true);
  expect(h.record(onBackup, T0 + 2000)).toBe(false);
  const kept = h.durable();
  expect(durableHistorySchema.parse(JSON.parse(JSON.stringify(kept)))).toEqual(kept);
  const restarted = new StatusHistory(1000, kept);
  expect(restarted.snapshot()).toMatchObject({ failovers: 1, failbacks: 0, last: { server: "backup", at: "2026-11-30T10:00:01.000Z" } });
  // The first sample after a restart is where it starts, not a failover.
  expect(restarted.record(onMain, T0 + 10_000)).toBe(false);
  expect(restarted.snapshot().failbacks).toBe(0);
});

test("the kept records are bounded", () => {
  const h = new StatusHistory(1000);
  const on = (active: "main" | "backup") => statusFixture({ role: "client", roleLabel: "Client" }, { activeServer: active, peers: [] });
  for (let i = 0; i < KEPT_FAILOVER_RECORDS * 3; i++) h.record(on(i % 2 === 0 ? "main" : "backup"), T0 + i * 1000);
  const kept = h.durable();
  expect(kept.records).toHaveLength(KEPT_FAILOVER_RECORDS);
  expect(kept.failovers + kept.failbacks).toBe(KEPT_FAILOVER_RECORDS * 3 - 1);
  expect(kept.records.at(-1)!.at).toBe(new Date(T0 + (KEPT_FAILOVER_RECORDS * 3 - 1) * 1000).toISOString());
  expect(durableHistorySchema.safeParse({ ...kept, records: [...kept.records, kept.records[0]] }).success).toBe(false);
});
