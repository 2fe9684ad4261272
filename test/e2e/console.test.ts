/**
 * The failover documentation's steps done from the operator console, in
 * Chromium, on real executables, in the documentation's order: set up the
 * backup (license and role only), then the main, paste the main's key on the
 * backup, Add Backup server by IP in the Main server row of the main's
 * Machines panel, kill the main and watch every open page turn "Backup is
 * active" (and the main's own page say it lost contact) without a reload,
 * connect a client while the main is down with Connect to a Backup, bring the
 * main back in manual failback and switch back from a level-3 client, a wrong
 * key pasted on a client ("Network key differs", healed by the right one),
 * then remove the backup and add it again, from the main and from a level-3
 * client, each time back to "Backup is idle".
 * Screenshots go to a temp dir (printed), never into the repo.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import nacl from "tweetnacl";
import { fingerprint, formatNetworkKey, parseNetworkKey } from "../../src/core/keys.ts";
import { chromiumSkipReason, launchChromium, loopbackContext } from "../support/browser.ts";
import { freePeerPort } from "../support/cluster.ts";
import { executable } from "../support/executable.ts";
import { devLicenseText } from "../support/licenses.ts";
import { startMachine, tempDir, type MachineProcess } from "../support/machine-process.ts";

const skipReason = chromiumSkipReason();
if (skipReason) console.warn(`test/e2e/console.test.ts: ${skipReason}`);

const FAST = ["--heartbeat-ms", "50", "--failover-timeout-ms", "250"];
/** The promise: every open page follows a failover, or says it lost its machine, within 3 s. */
const FOLLOW_MS = 3_000;
const SHOTS = mkdtempSync(join(tmpdir(), "understudy-console-"));

type Machine = { proc: MachineProcess; dataDir: string; peer: string; args: string[] };

describe.skipIf(skipReason !== null)("the operator console in Chromium", () => {
  let browser: Browser;
  let context: BrowserContext;
  let blocked: string[];
  const machines: Record<string, Machine> = {};
  const pageErrors: string[] = [];

  beforeAll(async () => {
    await executable();
    browser = await launchChromium();
    ({ context, blocked } = await loopbackContext(browser));
    console.log(`test/e2e/console.test.ts: screenshots in ${SHOTS}`);
  }, 120_000);

  afterAll(async () => {
    // Pages first (their live streams), then the machines; nothing may hold the run up.
    const bounded = (work: Promise<unknown> | undefined) => Promise.race([work?.catch(() => undefined), Bun.sleep(10_000)]);
    await bounded(context?.close());
    await bounded(browser?.close());
    for (const m of Object.values(machines)) {
      if ((await bounded(m.proc.stop())) === undefined) m.proc.proc.kill("SIGKILL");
    }
  }, 60_000);

  /** Starts (or restarts, same data dir and peer port) a machine; `keyed` gives it the license and the network key up front. */
  async function start(name: string, extra: string[] = [], keyed = false): Promise<Machine> {
    const known = machines[name];
    const dataDir = known?.dataDir ?? tempDir();
    if (keyed) {
      writeFileSync(join(dataDir, "license.json"), devLicenseText({ type: "server-with-failover", holder: "*", days: 30 }), { mode: 0o600 });
      writeFileSync(join(dataDir, "network.key"), networkKey, { mode: 0o600 });
    }
    const peer = known?.peer ?? `127.0.0.1:${await freePeerPort()}`;
    const args = ["--name", name, "--peer-listen", peer, ...FAST, ...extra];
    const proc = await startMachine(args, { dataDir });
    return (machines[name] = { proc, dataDir, peer, args });
  }

  async function open(m: Machine, path: string): Promise<Page> {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1920, height: 1080 });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${m.proc.ui}${path}`);
    return page;
  }

  const chip = (page: Page, text: string, timeout = FOLLOW_MS) => page.getByTestId("status-chip").filter({ hasText: text }).waitFor({ timeout });

  /** License, then the network key (generated, or pasted), on the setup page. */
  async function license(page: Page): Promise<void> {
    await page.locator("#license").fill(devLicenseText({ type: "server-with-failover", holder: "*", days: 30 }));
    await page.getByRole("button", { name: "Use this license" }).click();
    await page.getByTestId("license-summary").waitFor();
  }

  async function pasteKey(page: Page, key: string): Promise<void> {
    await page.locator("#key").fill(key);
    await page.getByRole("button", { name: "Use this key" }).click();
    await page.getByTestId("key-fingerprint").waitFor();
  }

  let networkKey = "";

  test("step 1, the backup as documented: license, then role Backup server, no key and no main's IP yet; it says what it waits for", async () => {
    const backup = await start("studio-backup");
    const page = await open(backup, "/setup");
    await license(page);
    await page.locator("#role-backup").check();
    expect(await page.locator("#backup").isVisible()).toBe(false);
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("#role-section .saved").waitFor();
    await chip(page, "Waiting for the network key");
    await page.screenshot({ path: join(SHOTS, "backup-waits-for-key.png") });
    await page.close();
  }, 60_000);

  test("create a main server: license, a new network key shown masked to copy, role Main server", async () => {
    const main = await start("studio-main");
    const page = await open(main, "/setup");
    await license(page);
    await page.getByRole("button", { name: "Generate a new key here" }).click();
    const keyBox = page.getByTestId("network-key");
    await keyBox.waitFor();
    expect(await keyBox.getAttribute("type")).toBe("password");
    networkKey = await keyBox.inputValue();
    expect(networkKey.length).toBeGreaterThan(40);
    await page.locator("#role-main").check();
    expect(await page.locator("#main").isVisible()).toBe(false); // a main needs no main server's IP
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("#role-section .saved").waitFor();
    await chip(page, "No backup");
    await page.close();
  }, 60_000);

  test("the backup gets the main's key pasted: it waits to be added by a main server", async () => {
    const page = await open(machines["studio-backup"]!, "/setup");
    await pasteKey(page, networkKey);
    await chip(page, "Waiting to be added by a main server", 10_000);
    await page.screenshot({ path: join(SHOTS, "backup-waits-for-main.png") });
    await page.close();
  }, 60_000);

  test("Add Backup server by IP on the main's Machines panel: the chip turns Backup is idle by itself", async () => {
    const page = await open(machines["studio-main"]!, "/machines");
    // On the right of the Main server row, as the documentation shows it.
    const mainRow = page.getByTestId("machines-table").locator("tbody tr", { hasText: "Main server" });
    await mainRow.locator("#backup-address").waitFor();
    await mainRow.locator("#backup-address").fill("not an address");
    await mainRow.getByTestId("add-backup").click();
    await page.getByTestId("address-error").filter({ hasText: "Type an IP address such as 10.0.0.2" }).waitFor();
    await page.locator("#backup-address").fill("127.0.0.1:9");
    await page.getByTestId("add-backup").click();
    // The earlier error stays on the page until the answer replaces it, so wait for the new words.
    await page.getByTestId("address-error").filter({ hasText: "nothing answers there" }).waitFor({ timeout: FOLLOW_MS });
    expect(await page.locator("#backup-address").inputValue()).toBe("127.0.0.1:9");

    await page.locator("#backup-address").fill(machines["studio-backup"]!.peer);
    await page.getByTestId("add-backup").click();
    await page.getByText("is now the backup server").waitFor();
    await chip(page, "Backup is idle", 15_000);
    const rows = page.getByTestId("machines-table").locator("tbody tr");
    await rows.filter({ hasText: "Backup server" }).getByTestId("remove-backup").waitFor();
    expect(await rows.first().textContent()).toContain("studio-main");
    await page.screenshot({ path: join(SHOTS, "machines-healthy.png") });
    await page.close();
  }, 60_000);

  test("the main sets a client's permission level on its Machines panel", async () => {
    await start("control", ["--role", "client", "--main", machines["studio-main"]!.peer, "--backup", machines["studio-backup"]!.peer], true);
    const page = await open(machines["studio-main"]!, "/machines");
    const level = page.getByTestId("level-control");
    await page.waitForFunction(() => document.querySelector("[data-testid=machines-table]")?.textContent?.includes("control"), null, { timeout: 10_000 });
    await page.reload(); // the permissions card is not live, so a choice being made is never swapped away
    await level.selectOption("3");
    await page.getByRole("button", { name: "Set" }).click();
    await page.getByText("Permission level 3 set.").waitFor();
    await page.getByTestId("machines-table").locator("tr", { hasText: "control" }).getByText("3 · may change everything").waitFor({ timeout: FOLLOW_MS });
    await page.close();
  }, 60_000);

  test("kill -9 the main: open pages turn Backup is active within 3 s, the main's own page says it lost contact", async () => {
    const pages = [
      await open(machines["studio-backup"]!, "/machines"),
      await open(machines["studio-backup"]!, "/status"),
      await open(machines.control!, "/routing"),
      await open(machines.control!, "/storage"),
    ];
    const mainPage = await open(machines["studio-main"]!, "/delays");
    for (const p of [...pages, mainPage]) await chip(p, "Backup is idle", 10_000);

    const main = machines["studio-main"]!.proc.proc;
    main.kill("SIGKILL"); // a power cut, not a clean stop
    await main.exited;
    for (const p of pages) await chip(p, "Backup is active");
    await pages[3]!.getByTestId("storage-read-only").waitFor({ timeout: FOLLOW_MS });
    await mainPage.getByTestId("contact-lost").waitFor({ state: "visible", timeout: FOLLOW_MS });
    await pages[0]!.screenshot({ path: join(SHOTS, "machines-failover.png") });
    await mainPage.screenshot({ path: join(SHOTS, "main-lost.png") });
    expect(await pages[1]!.getByTestId("active-server").textContent()).toContain("this machine");
  }, 60_000);

  test("connect a client while the main is down, with Connect to a Backup", async () => {
    const render = await start("render-1");
    const page = await open(render, "/setup");
    await license(page);
    await pasteKey(page, networkKey);
    await page.locator("#role-client").check();
    expect(await page.locator("#backup").isVisible()).toBe(false); // until Connect to a Backup is on
    await page.locator("#main").fill(machines["studio-main"]!.peer);
    await page.locator("#connectBackup").check();
    await page.locator("#backup").fill(machines["studio-backup"]!.peer);
    await page.getByRole("button", { name: "Connect" }).click();
    await page.locator("#role-section .saved").waitFor();
    await chip(page, "Backup is active", 10_000);
    await page.screenshot({ path: join(SHOTS, "client-during-outage.png") });
    await page.close();
  }, 60_000);

  test("the main back in manual failback: the card appears by itself, a level-2 client is refused, every machine says the main waits, a level-3 client's labelled Switch back ends 'Back on the main server'", async () => {
    const backupPage = await open(machines["studio-backup"]!, "/machines");
    await start("studio-main", ["--failback", "manual"]);
    const mainPage = await open(machines["studio-main"]!, "/machines");
    await chip(mainPage, "Main is back — waiting to switch back", 10_000);
    await mainPage.getByTestId("switch-back").waitFor({ timeout: FOLLOW_MS });
    // Every machine says the main waits, none that it is down.
    await chip(backupPage, "Main is back — waiting to switch back", 10_000);

    const level2 = await open(machines["render-1"]!, "/machines");
    const refusedIcon = level2.getByTestId("client-switch-back");
    await refusedIcon.waitFor({ timeout: 10_000 });
    expect(await refusedIcon.isDisabled()).toBe(true);
    expect(await level2.getByText("Needs permission level 3").count()).toBe(2); // Switch back and Remove backup server each say why
    const forced = await fetch(`${machines["render-1"]!.proc.ui}/failover/switch-back`, { method: "POST", headers: { origin: machines["render-1"]!.proc.ui } });
    expect(forced.status).toBe(403); // the server refuses what the page shows disabled
    await level2.screenshot({ path: join(SHOTS, "level-2-client.png") });

    const level3 = await open(machines.control!, "/machines");
    await chip(level3, "Main is back — waiting to switch back", 10_000);
    const icon = level3.getByTestId("client-switch-back");
    await icon.waitFor({ timeout: 10_000 });
    // Switch back and Remove are two labelled actions on the Backup row, each asking first.
    expect(await level3.getByTestId("remove-backup").textContent()).toContain("Remove backup server");
    expect(await icon.textContent()).toContain("Switch back");
    await level3.screenshot({ path: join(SHOTS, "client-switch-back-offer.png") });
    level3.once("dialog", (dialog) => void dialog.accept());
    await icon.click();
    await level3.getByTestId("switch-back-done").waitFor({ timeout: 15_000 });
    expect(await level3.getByTestId("switch-back-done").textContent()).toContain("Back on the main server");
    for (const p of [mainPage, backupPage, level3, level2]) await chip(p, "Backup is idle", 10_000);
    await mainPage.getByTestId("switch-back").waitFor({ state: "detached", timeout: FOLLOW_MS });
    for (const p of [mainPage, backupPage, level2, level3]) await p.close();
  }, 60_000);

  test("a wrong network key pasted on a client reads 'Network key differs' there and on the main's row for it, and heals the moment the right key is pasted", async () => {
    const render = machines["render-1"]!;
    const setup = await open(render, "/setup");
    const mainPage = await open(machines["studio-main"]!, "/machines");
    const wrong = formatNetworkKey(nacl.randomBytes(32));
    await pasteKey(setup, wrong);
    await chip(setup, "Network key differs", 10_000);
    const renderRow = mainPage.getByTestId("machines-table").locator("tbody tr", { hasText: "render-1" });
    await renderRow.getByText(`Network key differs (${fingerprint(parseNetworkKey(wrong, "test"))})`).waitFor({ timeout: 10_000 });
    await mainPage.screenshot({ path: join(SHOTS, "key-differs-on-main.png") });
    await pasteKey(setup, networkKey);
    await chip(setup, "Backup is idle", 10_000);
    await renderRow.getByText(fingerprint(parseNetworkKey(networkKey, "test"))).waitFor({ timeout: 10_000 });
    expect(await renderRow.textContent()).not.toContain("differs");
    for (const p of [setup, mainPage]) await p.close();
  }, 60_000);

  /** Every page reads `text` (the main, the backup, the level-3 client). */
  async function everyChip(pages: Page[], text: string): Promise<void> {
    try {
      for (const p of pages) await chip(p, text, 15_000);
    } catch (error) {
      const seen = await Promise.all(pages.map(async (p) => `${p.url()}: ${await p.getByTestId("status-chip").textContent()}`));
      throw new Error(`not every page reads "${text}": ${seen.join("; ")}`, { cause: error });
    }
  }

  test("remove the backup and add it again, from the main and from a level-3 client: grey 'No backup' everywhere, then 'Backup is idle' like the first time", async () => {
    const page = await open(machines["studio-main"]!, "/machines");
    const backupPage = await open(machines["studio-backup"]!, "/machines");
    const clientPage = await open(machines.control!, "/machines");
    const all = [page, backupPage, clientPage];
    await everyChip(all, "Backup is idle");
    const backupAt = machines["studio-backup"]!.peer;
    const removeFrom = async (p: Page) => {
      p.once("dialog", (dialog) => void dialog.accept());
      await p.getByTestId("remove-backup").click();
      await everyChip([page, clientPage], "No backup");
      // The backup is back where step 1 left it, grey like "No backup": a main may add it again.
      await chip(backupPage, "Waiting to be added by a main server", 15_000);
      expect(await backupPage.getByTestId("status-chip").getAttribute("class")).toContain("chip-neutral");
    };
    const addFrom = async (p: Page) => {
      const mainRow = p.getByTestId("machines-table").locator("tbody tr", { hasText: "Main server" });
      await mainRow.locator("#backup-address").waitFor({ timeout: 10_000 });
      await mainRow.locator("#backup-address").fill(backupAt);
      await mainRow.getByTestId("add-backup").click();
      await p.getByText("is now the backup server").waitFor({ timeout: 10_000 });
      await everyChip(all, "Backup is idle");
    };

    await removeFrom(page);
    await clientPage.screenshot({ path: join(SHOTS, "client-after-removal.png") });
    expect(await page.getByTestId("remove-backup").count()).toBe(0);
    await addFrom(clientPage); // a level-3 client asks the main to pair
    await clientPage.screenshot({ path: join(SHOTS, "client-added-backup.png") });
    await removeFrom(clientPage);
    await addFrom(page);
    await removeFrom(page);
    for (const p of all) await p.close();
    expect(blocked).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 180_000);

  test("a frozen machine (SIGSTOP) is not shown green: its page says it lost contact within 3 s, and recovers", async () => {
    const main = machines["studio-main"]!;
    const page = await open(main, "/status");
    await chip(page, "No backup", 10_000);
    const lost = page.getByTestId("contact-lost");
    main.proc.proc.kill("SIGSTOP");
    try {
      await lost.waitFor({ state: "visible", timeout: FOLLOW_MS });
    } finally {
      main.proc.proc.kill("SIGCONT");
    }
    await lost.waitFor({ state: "hidden", timeout: 10_000 });
    await page.close();
  }, 60_000);
});
