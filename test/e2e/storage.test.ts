/**
 * The Synced storage panel in Chromium, on real executables (a main and a
 * client on loopback): on the main, set a show folder and turn Auto-Pull on;
 * on the client, set a folder, see a new file under "Your changes to push"
 * without a reload, push it with a comment and see it in the history; then
 * see the file arrive in the main's folder by itself. Screenshots go to a
 * temp dir (printed), never into the repo.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromiumSkipReason, launchChromium, loopbackContext } from "../support/browser.ts";
import { executable } from "../support/executable.ts";
import { setUpDataDir } from "../support/machine-node.ts";
import { startMachine, tempDir, type MachineProcess } from "../support/machine-process.ts";
import { waitFor } from "../support/wait-for.ts";

const skipReason = chromiumSkipReason();
if (skipReason) console.warn(`test/e2e/storage.test.ts: ${skipReason}`);

const FAST = ["--heartbeat-ms", "50", "--failover-timeout-ms", "250"];
/** Live parts reach an open page within about a second (a node tick, then the page's stream). */
const LIVE_MS = 10_000;
const SHOTS = mkdtempSync(join(tmpdir(), "understudy-storage-"));

describe.skipIf(skipReason !== null)("the Synced storage panel in Chromium", () => {
  let browser: Browser;
  let context: BrowserContext;
  let blocked: string[];
  const machines: MachineProcess[] = [];
  const pageErrors: string[] = [];

  /** A data dir with the development license and the shared network key, as the setup pages leave it. */
  beforeAll(async () => {
    await executable();
    browser = await launchChromium();
    ({ context, blocked } = await loopbackContext(browser));
    console.log(`test/e2e/storage.test.ts: screenshots in ${SHOTS}`);
  }, 120_000);

  afterAll(async () => {
    const bounded = (work: Promise<unknown> | undefined) => Promise.race([work?.catch(() => undefined), Bun.sleep(10_000)]);
    await bounded(context?.close());
    await bounded(browser?.close());
    for (const m of machines) if ((await bounded(m.stop())) === undefined) m.proc.kill("SIGKILL");
  }, 60_000);

  async function open(m: MachineProcess): Promise<Page> {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1920, height: 1080 });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${m.ui}/storage`);
    return page;
  }

  async function setFolder(page: Page, folder: string): Promise<void> {
    await page.getByTestId("show-folder-input").fill(folder);
    await page.getByRole("button", { name: "Use this folder" }).click();
    await page.getByText("Show folder saved").waitFor();
  }

  test("push a changed file with a comment on one machine; Auto-Pull brings it into the other's folder", async () => {
    const key = nacl.randomBytes(32);
    const main = await startMachine(["--name", "studio-main", "--role", "main", ...FAST], { dataDir: setUpDataDir(key) });
    machines.push(main);
    const client = await startMachine(["--name", "control", "--role", "client", "--main", main.peer!, ...FAST], { dataDir: setUpDataDir(key) });
    machines.push(client);

    const mainFolder = tempDir();
    const mainPage = await open(main);
    await setFolder(mainPage, mainFolder);
    const autoPull = mainPage.getByTestId("auto-pull");
    await autoPull.click();
    await mainPage.locator('[data-testid=auto-pull][aria-checked="true"]').waitFor();

    const boothFolder = tempDir();
    const page = await open(client);
    await setFolder(page, boothFolder);
    writeFileSync(join(boothFolder, "rundown.txt"), "news at ten");
    const listed = page.getByTestId("changes-to-push").locator("tr", { hasText: "rundown.txt" });
    await listed.waitFor({ timeout: LIVE_MS });
    expect(await listed.textContent()).toContain("added");
    await page.screenshot({ path: join(SHOTS, "storage-changes-to-push.png") });

    await page.getByTestId("push-comment").fill("news at ten");
    await page.getByTestId("push-changes").click();
    await page.getByTestId("sync-outcome").filter({ hasText: "Pushed revision 1 (1 file)" }).waitFor({ timeout: LIVE_MS });
    await page.getByTestId("storage-history").locator("tr", { hasText: "news at ten" }).waitFor({ timeout: LIVE_MS });
    await page.getByTestId("nothing-to-push").waitFor({ timeout: LIVE_MS });
    await page.screenshot({ path: join(SHOTS, "storage-pushed.png") });

    await waitFor("the file arrives in the main's folder", () => existsSync(join(mainFolder, "rundown.txt")) && readFileSync(join(mainFolder, "rundown.txt"), "utf8") === "news at ten", LIVE_MS);
    await mainPage.getByTestId("sync-outcome").filter({ hasText: "Pulled revision 1" }).waitFor({ timeout: LIVE_MS });
    await mainPage.getByTestId("storage-history").locator("tr", { hasText: "news at ten" }).waitFor({ timeout: LIVE_MS });
    await mainPage.screenshot({ path: join(SHOTS, "storage-auto-pulled.png") });

    expect(blocked).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
