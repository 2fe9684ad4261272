/** @jsxImportSource hono/jsx */
import { expect, test } from "bun:test";
import type { HistorySnapshot } from "../../../src/core/status-history.ts";
import type { DiscoveredMachine } from "../../../src/net/discovery/discovery.ts";
import { machineRows, SERVER_VIEWER } from "../../../src/core/machine-rows.ts";
import { DiscoveredList, MachinesPage, MachinesTable } from "../../../src/web/views/machines.tsx";
import { machinesView } from "../../../src/web/view-models/machines-view.ts";
import { DelayTable, RoutingTable, StatusFacts } from "../../../src/web/views/panels.tsx";
import { SLOW_RTT_MS } from "../../../src/core/delay-verdict.ts";
import { PushControls, StorageStatus } from "../../../src/web/views/storage.tsx";
import { storageView } from "../../../src/web/view-models/storage-view.ts";
import { delaysView, routingView, statusPanelView } from "../../../src/web/view-models/panels-view.ts";
import { consoleChip } from "../../../src/core/console-chip.ts";
import type { FolderSyncView } from "../../../src/services/show-folder/folder-sync.ts";
import { peer, statusFixture } from "../../support/status-fixture.ts";

test("Routing: each machine's Data Hub from its own state, and the local apps each machine says it has", () => {
  const status = statusFixture({}, {
    peers: [
      peer({ state: "idle" }),
      peer({ id: "c1", name: "render-1", role: "client", state: "follow-main", localApps: 5 }),
      peer({ id: "c2", name: "cg-2", role: "client", state: "follow-none", localApps: 1, lastHeardMsAgo: 5000 }),
    ],
  });
  const html = String(<RoutingTable view={routingView(status, machineRows(status, [], 1000))} />);
  const row = (name: string) => html.slice(html.indexOf(`<td>${name}</td>`)).split("</tr>")[0]!;
  expect(row("studio-main")).toContain("its own (serving)");
  expect(row("studio-main")).toContain(">2<");
  expect(row("backup")).toContain("the main server&#39;s");
  expect(row("render-1")).toContain("the main server&#39;s");
  expect(row("render-1")).toContain(">5<");
  expect(row("cg-2")).toContain(">–<"); // not heard: its count is not known
});

test("Delays: the worst of the last minute, machines slow for most of the last 10 s marked, a line with a gap where a peer was not heard", () => {
  const history: HistorySnapshot = {
    hubRates: null,
    failovers: 0,
    failbacks: 0,
    last: null,
    heardWithinMs: 1000,
    peers: [
      { id: "b0b0b0b0b0b0b0b0", name: "backup", role: "backup", samples: [0.4, 0.5, null, 48], worstMs: 48, buckets: [], count: 3, sumMs: 48.9 },
      { id: "c1", name: "render-1", role: "client", samples: [1, 25, 30, 28, SLOW_RTT_MS * 3], worstMs: SLOW_RTT_MS * 3, buckets: [], count: 5, sumMs: 114 },
    ],
  };
  const status = statusFixture({}, { peers: [peer({ state: "idle", delayMs: 0.5 }), peer({ id: "c1", name: "render-1", role: "client", state: "follow-main", delayMs: 30 })] });
  const html = String(<DelayTable view={delaysView(status, history)} />);
  expect(html).toContain('<tr data-machine-id="c1" data-delay="slow" class="slow">');
  // One 48 ms spike is not "slow".
  expect(html).toContain('<tr data-machine-id="b0b0b0b0b0b0b0b0" data-delay="ok">');
  expect(html).toContain("Backup server");
  expect(html).toContain("slow (typically 28 ms)");
  expect(html.match(/<polyline/g)!.length).toBe(2); // one line each; the backup's lone sample after its gap is a dot
  expect(html).toContain("<circle");
});

test("Delays: a main not heard for 35 s says so in red, not its last round trip", () => {
  const history: HistorySnapshot = {
    hubRates: null,
    failovers: 0,
    failbacks: 0,
    last: null,
    heardWithinMs: 1000,
    peers: [{ id: "m", name: "studio-main", role: "main", samples: [0.7, 0.7, null, null], worstMs: 0.7, buckets: [], count: 2, sumMs: 1.4 }],
  };
  const status = statusFixture({ role: "client", roleLabel: "Client" }, { activeServer: "backup", peers: [peer({ id: "m", name: "studio-main", role: "main", delayMs: 0.7, lastHeardMsAgo: 35_200 })] });
  const html = String(<DelayTable view={delaysView(status, history)} />);
  const row = html.slice(html.indexOf('data-machine-id="m"')).split("</tr>")[0]!;
  expect(row).toContain('class="not-heard"');
  // "Round trip now" says it is not heard; only "Worst, last minute" keeps the 0.7 ms of before.
  expect(row).toContain('<td>Main server</td><td class="num"><strong class="dead-text">not heard for 35 s</strong></td><td class="num">0.7 ms</td>');
});

test("Add Backup server is an in-row form on the right of the Main server row, preserved across live updates; the datalist offers the backups found with the same key", () => {
  const found = (over: Partial<DiscoveredMachine>): DiscoveredMachine => ({
    id: "d0d0d0d0d0d0d0d0", name: "studio-b", role: "backup", license: "server-with-failover", version: "0.1.0", fingerprint: "0011223344556677", epoch: 0, addresses: ["10.0.0.2"], port: 7401, keyMismatch: false, lastSeen: 0, ...over,
  });
  const status = statusFixture({ chip: "No backup", backup: null }, { pairing: null, peers: [] });
  const discovered = { discovery: "on" as const, machines: [found({}), found({ id: "e", name: "other-key", addresses: ["10.0.0.3"], keyMismatch: true }), found({ id: "f", role: "client", addresses: ["10.0.0.4"] })] };
  const view = machinesView(status, discovered, 1000, SERVER_VIEWER);
  const table = String(<MachinesTable view={view} />);
  const mainRow = table.slice(table.indexOf(`data-machine-id="${status.id}"`)).split("</tr>")[0]!;
  expect(mainRow).toContain('<div id="add-backup" class="row-form" hx-preserve="true">');
  expect(mainRow).toContain('data-testid="add-backup"');
  expect(mainRow).toContain('list="backup-candidates"');
  const page = String(<MachinesPage view={view} />);
  expect(page.match(/ id="add-backup"/g)).toHaveLength(1); // no card under the table any more
  const list = String(<DiscoveredList {...view.discovered} />);
  expect(list).toContain('<option value="10.0.0.2:7401">studio-b</option>');
  expect(list).not.toContain('<option value="10.0.0.3');
  expect(list).not.toContain("10.0.0.4"); // a client is not a backup: not listed
  expect(list).toContain("Network key differs (0011223344556677)");
});

test("Found on the network lists backups only, once each, IPv6 in brackets, link-local listed but not offered, an Add button where the page may add", () => {
  const found = (over: Partial<DiscoveredMachine>): DiscoveredMachine => ({
    id: "d0d0d0d0d0d0d0d0", name: "studio-b", role: "backup", license: "server-with-failover", version: "0.1.0", fingerprint: "0011223344556677", epoch: 0, addresses: ["fd00::2"], port: 7401, keyMismatch: false, lastSeen: 5, ...over,
  });
  const status = statusFixture({ chip: "No backup", backup: null }, { pairing: null, peers: [] });
  const machines = [found({}), found({ id: "c", name: "studio-b-old", lastSeen: 1 }), found({ id: "l", name: "studio-ll", addresses: ["fe80::9"] }), found({ id: "m", name: "studio-main", role: "main", addresses: ["10.0.0.1"] })];
  const list = String(<DiscoveredList {...machinesView(status, { discovery: "on", machines }, 1000, SERVER_VIEWER).discovered} />);
  const rows = list.split("<tr").slice(2);
  expect(rows).toHaveLength(2);
  expect(list).toContain("[fd00::2]:7401");
  expect(list).not.toContain("studio-b-old"); // the same address under an older id: the machine set up again
  expect(list).not.toContain("studio-main");
  expect(list).toContain("[fe80::9]:7401");
  expect(list).toContain("answers only on a link-local address");
  expect(list.match(/data-testid="add-found-backup"/g)).toHaveLength(1);
  const onBackup = statusFixture({ role: "backup", roleLabel: "Backup server", chip: "No backup", backup: null }, { pairing: null, peers: [] });
  expect(String(<DiscoveredList {...machinesView(onBackup, { discovery: "on", machines }, 1000, SERVER_VIEWER).discovered} />)).not.toContain("add-found-backup");
});

test("Synced storage: while the backup serves, push and pull wait with the documented reason", () => {
  const onBackup = statusFixture({ role: "client", chip: "Backup is active", showFile: null }, { activeServer: "backup", pairing: null, showFileReadOnly: true });
  const status = (s: ReturnType<typeof statusFixture>) => {
    const view = storageView({ status: s, history: null, sync: null, pinned: { folder: false, autoPull: false } });
    return String(<StorageStatus status={view.status} readOnly={view.offers.readOnly} />);
  };
  expect(status(onBackup)).toContain("The main server is down: file changes can&#39;t be pushed or pulled until it is back");
  expect(status(statusFixture())).toContain('data-testid="storage-open"');
});

test("Synced storage: Push Changes waits for something to push, and says so", () => {
  const sync: FolderSyncView = {
    folder: "/srv/show", autoPull: false, problem: null, base: 3, head: 3, toPush: [], toPushCount: 0, toPull: [], history: [], unreachable: null, skipped: null, job: null, outcome: null,
  };
  const view = (over: Partial<FolderSyncView>) => String(<PushControls view={storageView({ status: statusFixture(), history: null, sync: { ...sync, ...over }, pinned: { folder: false, autoPull: false } })} />);
  expect(view({})).toContain("Nothing to push: the folder has no changes.");
  expect(view({})).toContain("disabled");
  expect(view({ toPush: [{ kind: "changed", path: "rundown.txt" }], toPushCount: 1 })).not.toContain("disabled");
  // Not scanned yet: the button is not held back on a guess.
  expect(view({ toPush: null })).not.toContain("Nothing to push");
});

test("the Status panel and the status bar draw words their view-models chose (a syncing backup, the main serving, the chip)", () => {
  const status = statusFixture({ role: "backup", roleLabel: "Backup server", replication: null, showFile: { head: 3, backup: { state: "syncing", behindBy: 2, progress: 0.42 } } }, { activeServer: "main", pairing: { peerId: "a0a0a0a0a0a0a0a0", peerName: "main", address: "10.0.0.1:7401", confirmed: true, hubCopied: false } });
  const view = statusPanelView(status, { hubRates: null, failovers: 0, failbacks: 0, last: null, heardWithinMs: 1000, peers: [] });
  expect(view.words).toEqual({ activeServer: "the main server", backupCopy: "copying, 42 %", hubCopy: "first copy in progress", laneLag: "–" });
  expect(view.bar.chip).toEqual(consoleChip(status));
  const html = String(<StatusFacts view={view} />);
  expect(html).toContain("copying, 42 %");
  expect(html).toContain(`<dd>${view.bar.chip.text}</dd>`);
});
