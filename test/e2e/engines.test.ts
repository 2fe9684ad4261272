/**
 * Render-engine backups as the vendor documents them, in Chromium, on real
 * executables (docs/design.md §Render-engine backups): a main and a backup
 * server, three engine machines (clients: render-1, render-2 and the backup
 * engine render-spare) and a simulated Videohub on loopback. The router is
 * set on the main's Backup groups panel with "Test connection" and "Enable
 * Videohub connection", the group created there; a destination another
 * router client locked shows on the Health panel before any failure; render-1
 * killed (kill -9) puts the backup's source on its destination (read from the
 * simulated router's own state) and the open Health panel says so without a
 * reload; render-1 back, the main engine returns after the hold time.
 * Screenshots go to a temp dir (printed), never into the repo.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromiumSkipReason, launchChromium, loopbackContext } from "../support/browser.ts";
import { Cluster } from "../support/cluster.ts";
import { VideohubSim } from "../support/videohub-sim.ts";
import { waitFor } from "../support/wait-for.ts";

const skipReason = chromiumSkipReason();
if (skipReason) console.warn(`test/e2e/engines.test.ts: ${skipReason}`);

const SHOTS = mkdtempSync(join(tmpdir(), "understudy-engines-"));
/** Zero-based, as the simulator keeps them: destination 5 (render-1's), 6 (render-2's); sources 1, 2, 9 (render-spare's). */
const DEST_RENDER_1 = 4;
const DEST_RENDER_2 = 5;
const SOURCE_RENDER_1 = 0;
const SOURCE_SPARE = 8;

describe.skipIf(skipReason !== null)("render-engine backups in Chromium", () => {
  let browser: Browser;
  let context: BrowserContext;
  let blocked: string[];
  let cluster: Cluster;
  let sim: VideohubSim;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    sim = new VideohubSim().start();
    sim.routes[DEST_RENDER_1] = SOURCE_RENDER_1;
    sim.routes[DEST_RENDER_2] = 1;
    cluster = await Cluster.start({ clients: ["render-1", "render-2", "render-spare"] });
    browser = await launchChromium();
    ({ context, blocked } = await loopbackContext(browser));
    console.log(`test/e2e/engines.test.ts: screenshots in ${SHOTS}`);
  }, 120_000);

  afterAll(async () => {
    const bounded = (work: Promise<unknown> | undefined) => Promise.race([work?.catch(() => undefined), Bun.sleep(10_000)]);
    await bounded(context?.close());
    await bounded(browser?.close());
    await bounded(cluster?.shutdown());
    sim?.stop();
  }, 120_000);

  async function open(path: string): Promise<Page> {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1600, height: 1000 });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${cluster.machine("main").ui}${path}`);
    return page;
  }

  test("the router: Test connection says what it found and saves nothing; Enable Videohub connection saves it", async () => {
    await cluster.waitAll("every machine linked", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 60_000 });
    const page = await open("/backup-groups");
    await page.locator("#router").fill(`127.0.0.1:${sim.port}`);
    await page.getByRole("button", { name: "Test connection" }).click();
    const tested = page.getByTestId("router-test");
    await tested.waitFor();
    expect(await tested.textContent()).toContain(`Connected to 127.0.0.1:${sim.port}: Understudy Sim Videohub, 12 inputs, 12 outputs; no destination is locked`);
    expect(await page.locator("#router").inputValue()).toBe(`127.0.0.1:${sim.port}`);
    await page.screenshot({ path: join(SHOTS, "router-tested.png"), fullPage: true });
    expect(sim.clientCount).toBe(0);

    await page.getByLabel("Enable Videohub connection").check();
    await page.getByRole("button", { name: "Save router" }).click();
    await page.getByTestId("router-saved").waitFor();
    await waitFor("the main server connects to the router", () => sim.clientCount === 1, 20_000);
    await page.close();
  }, 120_000);

  test("a group created on the page: render-1 and render-2 backed up by render-spare", async () => {
    const page = await open("/backup-groups");
    await page.locator("#name").fill("Green");
    await page.locator("#main0").selectOption({ label: "render-1" });
    await page.getByLabel("Main engine 1: router sources").fill("1");
    await page.getByLabel("Main engine 1: destinations").fill("5");
    await page.locator("#main1").selectOption({ label: "render-2" });
    await page.getByLabel("Main engine 2: router sources").fill("2");
    await page.getByLabel("Main engine 2: destinations").fill("6");
    await page.locator("#backup").selectOption({ label: "render-spare" });
    await page.getByLabel("Backup engine: router sources").fill("9");
    await page.locator("#holdSeconds").fill("2");
    await page.getByRole("button", { name: "Create backup group" }).click();
    expect(await page.getByTestId("group-saved").textContent()).toContain("Backup group Green created.");
    const group = page.getByTestId("backup-group");
    expect(await group.textContent()).toContain("render-spare");
    await page.screenshot({ path: join(SHOTS, "group-created.png"), fullPage: true });
    await page.close();
  }, 120_000);

  let health: Page;
  const row = (name: string) => health.getByTestId("engine-row").filter({ hasText: name }).first();

  test("a destination another router client locked shows on the Health panel before any engine fails", async () => {
    health = await open("/health");
    await row("render-1").getByTestId("engine-state").filter({ hasText: "render-1 – OK" }).waitFor({ timeout: 20_000 });
    await row("render-1").getByTestId("engine-routes").filter({ hasText: "Destination 5 ← source 1" }).waitFor({ timeout: 20_000 });
    sim.lockByOther(DEST_RENDER_2);
    const warning = health.getByTestId("health-warning").filter({ hasText: "Destination 6 (fed by render-2) is LOCKED by another router client" });
    await warning.waitFor({ timeout: 20_000 });
    expect(await row("render-2").getByTestId("engine-routes").textContent()).toContain("LOCKED by another client");
    await health.screenshot({ path: join(SHOTS, "health-locked-before-failure.png"), fullPage: true });
  }, 60_000);

  test("render-1 killed: the router puts render-spare's source on its destination, and the open Health panel says so", async () => {
    await health.evaluate(() => ((window as unknown as { marker: number }).marker = 7));
    await cluster.kill("render-1");
    await waitFor("the simulated router's destination 5 shows render-spare's source 9", () => sim.routes[DEST_RENDER_1] === SOURCE_SPARE, 30_000);
    expect(sim.routes[DEST_RENDER_2]).toBe(1);
    await row("render-1").getByTestId("engine-state").filter({ hasText: "render-1 – FAILED (silent) → switched to render-spare" }).waitFor({ timeout: 20_000 });
    await row("render-1").getByTestId("engine-routes").filter({ hasText: "Destination 5 ← source 9" }).waitFor({ timeout: 20_000 });
    await health.getByTestId("status-chip").filter({ hasText: "render-1 – FAILED → switched to render-spare" }).waitFor({ timeout: 20_000 });
    expect(await health.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(7);
    // The engine state is the longest chip there is: it wraps rather than push the page wider than the window.
    expect(await health.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await health.screenshot({ path: join(SHOTS, "health-render-1-failed.png"), fullPage: true });
  }, 120_000);

  test("render-1 back: after the hold time the router gives destination 5 back to render-1", async () => {
    await cluster.restart("render-1");
    await waitFor("the simulated router's destination 5 shows render-1's source 1 again", () => sim.routes[DEST_RENDER_1] === SOURCE_RENDER_1, 40_000);
    await row("render-1").getByTestId("engine-state").filter({ hasText: "render-1 – OK" }).waitFor({ timeout: 20_000 });
    await row("render-1").getByTestId("engine-routes").filter({ hasText: "Destination 5 ← source 1" }).waitFor({ timeout: 20_000 });
    await health.screenshot({ path: join(SHOTS, "health-render-1-back.png"), fullPage: true });
    // One switch each way, no flapping (a request repeated before its confirmation came is the same switch).
    const asked = sim.requests.filter((r) => r.startsWith(`${DEST_RENDER_1} `));
    // A flap is told with the main's switches, each with its reason and time.
    if (asked.length !== 2) console.log(`route requests for destination 5: ${JSON.stringify(asked)}\n${cluster.logs("main").map((l) => JSON.stringify(l)).filter((l) => l.includes("router switched")).join("\n")}`);
    expect(asked.filter((r, i) => r !== asked[i - 1])).toEqual([`${DEST_RENDER_1} ${SOURCE_SPARE}`, `${DEST_RENDER_1} ${SOURCE_RENDER_1}`]);
    expect(pageErrors).toEqual([]);
    expect(blocked).toEqual([]);
  }, 120_000);
});
