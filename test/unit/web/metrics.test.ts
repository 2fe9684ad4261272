/** `GET /metrics` text from a status: lane lag, Data Hub clients and counters, Asset Hub cache (issue 12's list). */
import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { HubCore } from "../../../src/hub/hub-core.ts";
import { createLogger } from "../../../src/log.ts";
import { StatusHistory } from "../../../src/core/status-history.ts";
import { HubService } from "../../../src/services/hub-service.ts";
import { renderMetrics } from "../../../src/web/metrics.ts";
import { statusFixture } from "../../support/status-fixture.ts";

const history = () => new StatusHistory(1000).snapshot();
const lines = (text: string) => text.split("\n");

test("lane lag per lane, Data Hub clients and counters, the asset cache on both servers", () => {
  const usage = (cacheBytes: number) => ({ cacheBytes, freeBytes: 5e9, totalBytes: 1e10 });
  const text = renderMetrics(
    statusFixture({
      replication: { hubState: 4, log: 12 },
      hub: { clients: 3, received: { hello: 3, pub: 120, set: 4 }, deliveries: 360 },
      storage: { main: usage(2048), backup: usage(1024), warning: null },
    }, { kept: 250, keptDroppedEarly: 3 }),
    history(),
  );
  for (const line of [
    "understudy_hub_kept_frames 250",
    "understudy_hub_kept_dropped_early_total 3",
    'understudy_lane_lag{lane="hub_state"} 4',
    'understudy_lane_lag{lane="show_file_and_assets"} 12',
    "# TYPE understudy_hub_clients gauge",
    "understudy_hub_clients 3",
    "# TYPE understudy_hub_frames_received_total counter",
    'understudy_hub_frames_received_total{type="pub"} 120',
    'understudy_hub_frames_received_total{type="set"} 4',
    "understudy_hub_deliveries_total 360",
    'understudy_asset_cache_bytes{server="main"} 2048',
    'understudy_asset_cache_bytes{server="backup"} 1024',
    'understudy_disk_free_bytes{server="backup"} 5000000000',
  ]) {
    expect(lines(text)).toContain(line);
  }
});

test("a client has no Data Hub or cache of its own, and a lane not announced yet is left out, not shown as 0", () => {
  const text = renderMetrics(statusFixture({ role: "client", replication: { hubState: null, log: 3 }, hub: null, storage: null }), history());
  expect(text).not.toContain("understudy_hub_clients");
  expect(text).not.toContain("understudy_asset_cache_bytes");
  expect(text).not.toContain('lane="hub_state"');
  expect(lines(text)).toContain('understudy_lane_lag{lane="show_file_and_assets"} 3');
});

test("the hub counts frames by type and one delivery per subscriber of a message (presence is not a delivery)", () => {
  const hub = new HubService(new HubCore({ epoch: 1, writable: true }), nacl.randomBytes(32), createLogger(() => "json", () => {}));
  const subscribers = [1, 2, 3].map((i) => {
    const link = hub.attachLocal(() => {});
    link.send({ type: "hello", id: `node${i}`, name: `node${i}`, kind: "node" });
    link.send({ type: "sub", filter: "studio/#" });
    return link;
  });
  subscribers[0]!.send({ type: "pub", topic: "studio/cam1", data: { zoom: 2 }, origin: "o1", seq: 1 });
  subscribers[0]!.send({ type: "pub", topic: "elsewhere", data: 1, origin: "o1", seq: 2 });
  const counters = hub.counters();
  expect(counters.clients).toBe(3);
  expect(counters.received).toMatchObject({ hello: 3, sub: 3, pub: 2 });
  expect(counters.deliveries).toBe(3);
  subscribers[1]!.send({ type: "pub", topic: "studio/cam2", data: 1, origin: "o2", seq: 1 });
  expect(hub.counters().deliveries).toBe(6);
  subscribers[2]!.close();
  expect(hub.counters().clients).toBe(2);
});

test("a machine that sent claims it cannot back is counted by machine id; the others are not listed", () => {
  const peers = [
    { id: "0123456789abcdef", name: "rogue", role: "client", state: "follow-backup", address: "10.0.0.9:7401", delayMs: 1, lastHeardMsAgo: 10, unbackedClaims: 141 },
    { id: "fedcba9876543210", name: "render-1", role: "client", state: "follow-main", address: "10.0.0.5:7401", delayMs: 1, lastHeardMsAgo: 10, unbackedClaims: 0 },
  ];
  const text = renderMetrics(statusFixture({}, { peers }), history());
  expect(lines(text)).toContain('understudy_unbacked_claims_total{machine="0123456789abcdef",name="rogue"} 141');
  expect(text).not.toContain('name="render-1"} 0');
  expect(lines(text)).toContain("# TYPE understudy_unbacked_claims_total counter");
});
