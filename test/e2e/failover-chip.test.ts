/**
 * A page left open on a client follows a failover on its own: the status chip
 * changes to "Backup is active" when the main is killed, and back to "Backup
 * is idle" when it returns, with no reload (a frozen page goes out on air).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { chromiumSkipReason, launchChromium, loopbackContext } from "../support/browser.ts";
import { Cluster } from "../support/cluster.ts";

const skipReason = chromiumSkipReason();
if (skipReason) console.warn(`test/e2e/failover-chip.test.ts: ${skipReason}`);

describe.skipIf(skipReason !== null)("the status chip in Chromium", () => {
  let browser: Browser;
  let cluster: Cluster;
  beforeAll(async () => {
    browser = await launchChromium();
    cluster = await Cluster.start({ clients: ["control"] });
  });
  afterAll(async () => {
    await cluster?.shutdown();
    await browser?.close();
  });

  test("follows the failover and the failback without a reload", async () => {
    const c = cluster;
    await c.waitAll("everyone linked", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 15_000 });
    const { context, blocked } = await loopbackContext(browser);
    const page = await context.newPage();
    await page.goto(`${c.machine("control").ui}/machines`);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const chip = page.getByTestId("status-chip");
    await chip.filter({ hasText: "Backup is idle" }).waitFor({ timeout: 10_000 });

    await c.kill("main");
    await chip.filter({ hasText: "Backup is active" }).waitFor({ timeout: 10_000 });
    await c.restart("main");
    await chip.filter({ hasText: "Backup is idle" }).waitFor({ timeout: 15_000 });

    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    expect(blocked).toEqual([]);
    await context.close();
  }, 60_000);
});
