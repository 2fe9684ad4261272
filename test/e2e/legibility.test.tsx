/** @jsxImportSource hono/jsx */
/**
 * Legible from two metres (issue 18 finding 10): each panel, drawn from
 * fixtures with the worst content an operator meets (a dead backup, long
 * names, IPv6 addresses, a disabled Push Changes), in Chromium at 1920×1080
 * with the real stylesheet. Measured: body text of tables and reasons at
 * 20 px or more, dead machines in red, disabled buttons not in the primary
 * colour, nothing wider than its card or the window. Screenshots go to a temp
 * dir (printed), never into the repo.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { SERVER_VIEWER } from "../../src/core/machine-rows.ts";
import type { HistorySnapshot } from "../../src/core/status-history.ts";
import type { DiscoveredMachine } from "../../src/net/discovery/discovery.ts";
import type { FolderSyncView } from "../../src/services/show-folder/folder-sync.ts";
import { machinesView } from "../../src/web/view-models/machines-view.ts";
import { storageView } from "../../src/web/view-models/storage-view.ts";
import { delaysView, routingView, statusPanelView } from "../../src/web/view-models/panels-view.ts";
import { MachinesPage } from "../../src/web/views/machines.tsx";
import { DelaysPage, RoutingPage, StatusPage } from "../../src/web/views/panels.tsx";
import { StoragePage } from "../../src/web/views/storage.tsx";
import { chromiumSkipReason, launchChromium, loopbackContext } from "../support/browser.ts";
import { peer, statusFixture } from "../support/status-fixture.ts";

const skipReason = chromiumSkipReason();
if (skipReason) console.warn(`test/e2e/legibility.test.tsx: ${skipReason}`);

const SHOTS = mkdtempSync(join(tmpdir(), "understudy-legibility-"));
const CSS = readFileSync(join(import.meta.dir, "../../static/style.css"), "utf8");
const MIN_BODY_PX = 20;

const found = (over: Partial<DiscoveredMachine>): DiscoveredMachine => ({
  id: "d0d0d0d0d0d0d0d0", name: "studio-b", role: "backup", license: "server-with-failover", version: "0.1.0", fingerprint: "0011223344556677", epoch: 0, addresses: ["10.0.0.2"], port: 7401, keyMismatch: false, lastSeen: 0, ...over,
});

/** A main whose backup died 35 s ago, with clients and a long list of machines found on the network. */
function pages(): Record<string, string> {
  const status = statusFixture(
    { chip: "No backup" },
    {
      peers: [
        peer({ lastHeardMsAgo: 35_000, state: "idle" }),
        peer({ id: "c1", name: "graphics-render-node-with-a-very-long-name-01", role: "client", state: "follow-main", delayMs: 0.6, localApps: 4 }),
        peer({ id: "c2", name: "cg-2", role: "client", state: "follow-main", delayMs: 31 }),
        // Heard, but its own state says it is isolated: red like a dead one.
        peer({ id: "c3", name: "cg-isolated", role: "client", state: "isolated", delayMs: 0.8 }),
      ],
    },
  );
  const discovered = {
    discovery: "on" as const,
    machines: [
      found({ name: "studio-backup-rack-2-control-room-left", addresses: ["10.0.0.2", "192.168.100.200", "fe80::1c2b:3aff:fe4d:5e6f%enp3s0f1", "2001:db8:1234:5678:9abc:def0:1234:5678"] }),
      found({ id: "e1", name: "other-network-machine", addresses: ["10.0.0.3"], keyMismatch: true, fingerprint: "ffeeddccbbaa9988" }),
      found({ id: "f1", name: "render-7", role: "client", addresses: ["10.0.0.4"] }),
    ],
  };
  const history: HistorySnapshot = {
    hubRates: null,
    failovers: 1,
    failbacks: 0,
    last: { at: "2026-12-07T04:00:00.000Z", server: "backup", tookMs: 1040, why: "The main server stopped answering; it was last heard 1040 ms before." },
    heardWithinMs: 1000,
    peers: [
      { id: "b0b0b0b0b0b0b0b0", name: "backup", role: "backup", samples: [0.4, 0.5, ...new Array(35).fill(null)], worstMs: 0.5, buckets: [], count: 2, sumMs: 0.9 },
      { id: "c2", name: "cg-2", role: "client", samples: new Array(30).fill(31), worstMs: 31, buckets: [], count: 30, sumMs: 930 },
      { id: "c3", name: "cg-isolated", role: "client", samples: new Array(30).fill(0.8), worstMs: 0.8, buckets: [], count: 30, sumMs: 24 },
    ],
  };
  const view = machinesView(status, discovered, 1000, SERVER_VIEWER);
  const sync: FolderSyncView = {
    folder: "/srv/show", autoPull: false, problem: null, base: 3, head: 3, toPush: [], toPushCount: 0, toPull: [], history: [], unreachable: null, skipped: null, job: null, outcome: null,
  };
  // The same main before it has a backup: Add Backup server in its row, the found backups each with an Add button.
  const alone = statusFixture({ chip: "No backup", backup: null }, { pairing: null, peers: status.failover!.peers.filter((p) => p.role === "client") });
  return {
    machines: String(<MachinesPage view={view} />),
    "machines-add": String(<MachinesPage view={machinesView(alone, discovered, 1000, SERVER_VIEWER)} />),
    delays: String(<DelaysPage view={delaysView(status, history)} />),
    status: String(<StatusPage view={statusPanelView(status, history)} />),
    routing: String(<RoutingPage view={routingView(status, view.rows)} />),
    storage: String(<StoragePage view={storageView({ status, history: null, sync, pinned: { folder: false, autoPull: false } })} />),
  };
}

describe.skipIf(skipReason !== null)("legible from two metres, in Chromium at 1920×1080", () => {
  let browser: Browser;
  let server: ReturnType<typeof Bun.serve>;
  const html = pages();

  beforeAll(async () => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === "/static/style.css") return new Response(CSS, { headers: { "content-type": "text/css" } });
        const page = html[path.slice(1)];
        // The live script is left out: the fixtures are still pictures.
        return page ? new Response(page.replace(/<script[^>]*src="\/static\/[^"]*"[^>]*><\/script>/g, ""), { headers: { "content-type": "text/html" } }) : new Response("", { status: 404 });
      },
    });
    browser = await launchChromium();
    console.log(`test/e2e/legibility.test.tsx: screenshots in ${SHOTS}`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop(true);
  });

  async function open(name: string): Promise<Page> {
    const { context } = await loopbackContext(browser);
    const page = await context.newPage();
    await page.setViewportSize({ width: 1920, height: 1080 });
    await page.goto(`http://127.0.0.1:${server.port}/${name}`);
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    return page;
  }

  /** Every visible piece of body text (table cells, facts, reasons, hints) smaller than MIN_BODY_PX, and everything wider than its card or the window. */
  const measure = (page: Page) =>
    page.evaluate((min) => {
      const small: string[] = [];
      for (const el of Array.from(document.querySelectorAll("main td, main th, main dd, main dt, main .reason, main .lead, main p, main li, main label")) as HTMLElement[]) {
        if (!el.offsetParent || !el.textContent?.trim()) continue;
        const px = parseFloat(getComputedStyle(el).fontSize);
        if (px < min) small.push(`${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 40)}" ${px}px`);
      }
      const overflowing: string[] = [];
      if (document.documentElement.scrollWidth > window.innerWidth) overflowing.push(`the page is ${document.documentElement.scrollWidth}px wide`);
      for (const card of Array.from(document.querySelectorAll(".card")) as HTMLElement[]) {
        if (card.scrollWidth > card.clientWidth + 1) overflowing.push(`#${card.id || card.className}: ${card.scrollWidth}px in ${card.clientWidth}px`);
        const box = card.getBoundingClientRect();
        for (const child of Array.from(card.querySelectorAll("table, form, p")) as HTMLElement[]) {
          const r = child.getBoundingClientRect();
          if (r.right > box.right + 1) overflowing.push(`#${card.id} ${child.tagName.toLowerCase()} ends at ${Math.round(r.right)}px, its card at ${Math.round(box.right)}px`);
        }
      }
      return { small, overflowing };
    }, MIN_BODY_PX);

  for (const name of ["machines", "machines-add", "delays", "status", "routing", "storage"]) {
    test(`${name}: body text at ${MIN_BODY_PX} px or more, nothing overflows`, async () => {
      const page = await open(name);
      const { small, overflowing } = await measure(page);
      expect(small).toEqual([]);
      expect(overflowing).toEqual([]);
      await page.context().close();
    });
  }

  test("a dead backup and an isolated machine are red on Machines, Delays and Routing, not dim grey; a healthy one is not", async () => {
    const red = (color: string) => {
      const [r, g, b] = color.match(/\d+/g)!.map(Number);
      return r! > 200 && r! - Math.max(g!, b!) > 80;
    };
    for (const name of ["machines", "delays", "routing"]) {
      const page = await open(name);
      const colorOf = (id: string) => page.locator(`tr[data-machine-id="${id}"] td`).first().evaluate((td) => getComputedStyle(td).color);
      for (const id of ["b0b0b0b0b0b0b0b0", "c3"]) expect({ page: name, id, red: red(await colorOf(id)) }).toEqual({ page: name, id, red: true });
      expect({ page: name, red: red(await colorOf("c2")) }).toEqual({ page: name, red: false });
      await page.context().close();
    }
  }, 30_000);

  test("a disabled Push Changes does not keep the primary colour", async () => {
    const page = await open("storage");
    const disabled = page.locator("button.primary:disabled").first();
    await disabled.waitFor();
    const [background, accent] = await disabled.evaluate((button) => [getComputedStyle(button).backgroundColor, getComputedStyle(document.documentElement).getPropertyValue("--accent").trim()]);
    const hex = (rgb: string) => `#${rgb.match(/\d+/g)!.slice(0, 3).map((n) => Number(n).toString(16).padStart(2, "0")).join("")}`;
    expect(hex(background!)).not.toBe(accent!.toLowerCase());
    await page.context().close();
  });
});
