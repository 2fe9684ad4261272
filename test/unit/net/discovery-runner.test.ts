/**
 * Discovery (the runner) with a fake mDNS driver, a manual clock and manual
 * timers: errors, restarts, hostile service reports, updates and stop, without
 * a network.
 */
import { describe, expect, test } from "bun:test";
import { InvalidInput } from "../../../src/core/errors.ts";
import type { Logger, LogFields } from "../../../src/log.ts";
import {
  DEFAULT_RESTART_MS,
  Discovery,
  GOODBYE_TIMEOUT_MS,
  type DiscoveryOptions,
} from "../../../src/net/discovery/discovery.ts";
import { ManualTimers } from "../../support/clock.ts";
import type {
  AdvertisementHandlers,
  AdvertisementSpec,
  BrowserHandlers,
  BrowseSpec,
  MdnsAdvertisement,
  MdnsBrowser,
  MdnsDriver,
} from "../../../src/net/discovery/mdns.ts";
import { encodeTxt, parseTxt, type MachineAdvert } from "../../../src/net/discovery/txt.ts";

const KEY = "0123456789abcdef";
const SELF: MachineAdvert = { id: "aaaaaaaaaaaaaaaa", name: "Main", role: "main", license: "server-with-failover", version: "1.0.0", fingerprint: KEY, epoch: 4 };

class FakeAd implements MdnsAdvertisement {
  started = false;
  stoppedWith: boolean | null = null;
  readonly txts: Record<string, Buffer>[] = [];
  goodbyeHangs = false;
  constructor(
    readonly spec: AdvertisementSpec,
    readonly handlers: AdvertisementHandlers,
  ) {}
  start() {
    this.started = true;
  }
  updateTxt(txt: Record<string, Buffer>) {
    this.txts.push(txt);
  }
  stop(goodbye: boolean) {
    this.stoppedWith = goodbye;
    return this.goodbyeHangs ? new Promise<void>(() => {}) : Promise.resolve();
  }
}

class FakeBrowser implements MdnsBrowser {
  started = false;
  stopped = false;
  services: unknown[] = [];
  constructor(
    readonly spec: BrowseSpec,
    readonly handlers: BrowserHandlers,
  ) {}
  start() {
    this.started = true;
  }
  stop() {
    this.stopped = true;
  }
  list() {
    return this.services;
  }
}

class FakeDriver implements MdnsDriver {
  readonly ads: FakeAd[] = [];
  readonly browsers: FakeBrowser[] = [];
  failAdvertise: Error | null = null;
  advertise(spec: AdvertisementSpec, handlers: AdvertisementHandlers) {
    if (this.failAdvertise) throw this.failAdvertise;
    const ad = new FakeAd(spec, handlers);
    this.ads.push(ad);
    return ad;
  }
  browse(spec: BrowseSpec, handlers: BrowserHandlers) {
    const browser = new FakeBrowser(spec, handlers);
    this.browsers.push(browser);
    return browser;
  }
  get ad(): FakeAd {
    const ad = this.ads.at(-1);
    if (!ad) throw new Error("no advertisement");
    return ad;
  }
  get browser(): FakeBrowser {
    const browser = this.browsers.at(-1);
    if (!browser) throw new Error("no browser");
    return browser;
  }
}

class MemoryLog implements Logger {
  readonly lines: { level: string; event: string; fields: LogFields }[] = [];
  info = (event: string, fields: LogFields = {}) => void this.lines.push({ level: "info", event, fields });
  warn = (event: string, fields: LogFields = {}) => void this.lines.push({ level: "warn", event, fields });
  error = (event: string, fields: LogFields = {}) => void this.lines.push({ level: "error", event, fields });
  events(name: string) {
    return this.lines.filter((l) => l.event === name);
  }
}

function setup(options: Partial<DiscoveryOptions> = {}) {
  const timers = new ManualTimers();
  const driver = new FakeDriver();
  const log = new MemoryLog();
  const discovery = new Discovery({ self: SELF, port: 7401, interface: "eth0", forgetAfterMs: 5_000, clock: timers.clock, timers, log, driver, ...options });
  let changes = 0;
  discovery.onChange(() => changes++);
  return { discovery, driver, timers, log, changes: () => changes };
}

function service(name: string, id: string, changes: Partial<MachineAdvert> = {}, address = "10.0.0.2"): Record<string, unknown> {
  const advert: MachineAdvert = { id, name, role: "client", license: "client", version: "1.0.0", fingerprint: KEY, epoch: 0, ...changes };
  return { fullname: `${name}._understudy._tcp.local.`, port: 7401, addresses: [address], txtRaw: encodeTxt(advert) };
}

describe("Discovery", () => {
  test("advertises our TXT record on the peer port and browses _understudy._tcp", () => {
    const { discovery, driver } = setup();
    discovery.start();
    expect(driver.ad.started).toBe(true);
    expect(driver.ad.spec).toMatchObject({ service: "understudy", port: 7401, name: "Main", host: "understudy-aaaaaaaaaaaa", interface: "eth0" });
    expect(parseTxt(driver.ad.spec.txt)).toEqual({ ok: true, value: SELF });
    expect(driver.browser.spec).toEqual({ service: "understudy", interface: "eth0" });
    expect(discovery.status()).toMatchObject({ advertising: false, browsing: true, instance: null });
    driver.ad.handlers.active("Main");
    expect(discovery.status()).toMatchObject({ advertising: true, instance: "Main", lastError: null });
  });

  test("lists what the browser reports, without ourselves, and tells listeners", () => {
    const { discovery, driver, changes } = setup();
    discovery.start();
    driver.browser.handlers.up(service("Backup", "bbbbbbbbbbbbbbbb", { role: "backup" }));
    driver.browser.handlers.up(service("Main", SELF.id));
    driver.browser.handlers.up(service("Stranger", "cccccccccccccccc", { fingerprint: "fedcba9876543210" }));
    expect(discovery.list().map((m) => [m.name, m.role, m.keyMismatch])).toEqual([
      ["Backup", "backup", false],
      ["Stranger", "client", true],
    ]);
    expect(changes()).toBe(3); // our own service changes the table too, but never shows
    driver.browser.handlers.changed(service("Backup", "bbbbbbbbbbbbbbbb", { role: "backup", epoch: 5 }));
    expect(discovery.list()[0]?.epoch).toBe(5);
    driver.browser.handlers.down(service("Backup", "bbbbbbbbbbbbbbbb"));
    expect(discovery.list().map((m) => m.name)).toEqual(["Stranger"]);
  });

  test("ignores malformed reports without throwing, logging each reason once", () => {
    const { discovery, driver, log } = setup();
    discovery.start();
    const throwing = new Proxy({}, { get: () => { throw new Error("hostile getter"); } });
    const hostile: unknown[] = [
      null,
      undefined,
      42,
      "Main._understudy._tcp.local.",
      {},
      { fullname: "x._understudy._tcp.local.", port: 7401, addresses: ["10.0.0.3"], txtRaw: {} },
      { ...service("NoAddr", "dddddddddddddddd"), addresses: ["not-an-ip"] },
      { ...service("BadPort", "eeeeeeeeeeeeeeee"), port: -1 },
      throwing,
    ];
    for (const report of hostile) {
      expect(() => driver.browser.handlers.up(report)).not.toThrow();
      expect(() => driver.browser.handlers.down(report)).not.toThrow();
    }
    expect(discovery.list()).toEqual([]);
    const ignoredBefore = log.events("discovery.ignored").length;
    expect(ignoredBefore).toBeGreaterThan(0);
    driver.browser.handlers.up(hostile[5]);
    expect(log.events("discovery.ignored").length).toBe(ignoredBefore); // same reason, not logged again
    expect(log.events("discovery.bug").length).toBe(2); // the throwing getter (up and down), caught
  });

  test("a machine whose TXT record turns bad leaves the list", () => {
    const { discovery, driver } = setup();
    discovery.start();
    driver.browser.handlers.up(service("Backup", "bbbbbbbbbbbbbbbb"));
    driver.browser.handlers.changed({ ...service("Backup", "bbbbbbbbbbbbbbbb"), txtRaw: { txtvers: Buffer.from("1") } });
    expect(discovery.list()).toEqual([]);
  });

  test("the sweep re-confirms what the browser holds and forgets the rest after forgetAfterMs", () => {
    const { discovery, driver, timers } = setup({ forgetAfterMs: 5_000, sweepMs: 1_000 });
    discovery.start();
    const backup = service("Backup", "bbbbbbbbbbbbbbbb");
    driver.browser.services = [backup];
    timers.advance(1_000);
    expect(discovery.list().map((m) => [m.name, m.lastSeen])).toEqual([["Backup", 1_000]]);
    timers.advance(9_000); // still held: re-confirmed every sweep
    expect(discovery.list()[0]?.lastSeen).toBe(10_000);
    driver.browser.services = []; // the browser lost track without a serviceDown
    timers.advance(5_000);
    expect(discovery.list()).toHaveLength(1);
    timers.advance(1_000);
    expect(discovery.list()).toEqual([]);
  });

  test("an advertisement error is reported and retried, with a growing delay, and never thrown", () => {
    const { discovery, driver, timers, log } = setup({ restartAfterMs: 1_000 });
    discovery.start();
    expect(() => driver.ad.handlers.error(new Error("send EHOSTUNREACH"))).not.toThrow();
    expect(discovery.status().lastError).toMatchObject({ code: "DISCOVERY_UNAVAILABLE" });
    expect(discovery.status().lastError?.message).toContain("send EHOSTUNREACH");
    expect(discovery.status().lastError?.message).toContain("interface eth0");
    expect(driver.ads).toHaveLength(1);
    timers.advance(1_000);
    expect(driver.ads).toHaveLength(2);
    driver.ad.handlers.error(new Error("again"));
    timers.advance(1_999);
    expect(driver.ads).toHaveLength(2);
    timers.advance(1);
    expect(driver.ads).toHaveLength(3);
    driver.ad.handlers.active("Main"); // success resets the delay
    driver.ad.handlers.error(new Error("once more"));
    timers.advance(1_000);
    expect(driver.ads).toHaveLength(4);
    expect(log.events("discovery.error").map((l) => l.fields.retryInMs)).toEqual([1_000, 2_000, 1_000]);
    // A late event from an advertisement we let go of changes nothing.
    driver.ads[0]?.handlers.active("Main");
    expect(discovery.status().advertising).toBe(false);
  });

  test("a driver that throws (say, no such interface) does not stop start(); it is retried", () => {
    const { discovery, driver, timers } = setup();
    driver.failAdvertise = new Error("Can't find an interface named 'eth9'");
    expect(() => discovery.start()).not.toThrow();
    expect(driver.ads).toHaveLength(0);
    expect(discovery.status().lastError?.message).toContain("eth9");
    driver.failAdvertise = null;
    timers.advance(DEFAULT_RESTART_MS);
    expect(driver.ads).toHaveLength(1);
  });

  test("a browser error gets a fresh browser; the list survives until forgotten", () => {
    const { discovery, driver, timers } = setup({ restartAfterMs: 500, forgetAfterMs: 5_000 });
    discovery.start();
    driver.browser.handlers.up(service("Backup", "bbbbbbbbbbbbbbbb"));
    driver.browser.handlers.error(new Error("socket closed"));
    expect(discovery.status().browsing).toBe(false);
    expect(discovery.list()).toHaveLength(1);
    timers.advance(500);
    expect(driver.browsers).toHaveLength(2);
    expect(driver.browser.started).toBe(true);
    driver.browsers[0]?.handlers.up(service("Ghost", "9999999999999999")); // the dead one is not listened to
    expect(discovery.list().map((m) => m.name)).toEqual(["Backup"]);
  });

  test("update() re-announces the TXT record; unchanged values send nothing", () => {
    const { discovery, driver, changes } = setup();
    discovery.start();
    discovery.update({ epoch: 4 });
    expect(driver.ad.txts).toHaveLength(0);
    discovery.update({ epoch: 5, role: "backup" });
    expect(driver.ad.txts).toHaveLength(1);
    expect(parseTxt(driver.ad.txts[0])).toEqual({ ok: true, value: { ...SELF, epoch: 5, role: "backup" } });
    expect(changes()).toBe(1);
  });

  test("update() refuses values that do not fit, and never changes the id", () => {
    const { discovery, driver } = setup();
    discovery.start();
    expect(() => discovery.update({ epoch: -1 })).toThrow(InvalidInput);
    expect(() => discovery.update({ role: "god" as never })).toThrow(InvalidInput);
    discovery.update({ id: "ffffffffffffffff", epoch: 6 } as never);
    expect(parseTxt(driver.ad.txts[0])).toMatchObject({ ok: true, value: { id: SELF.id, epoch: 6 } });
  });

  test("a new fingerprint changes keyMismatch at once", () => {
    const { discovery, driver } = setup();
    discovery.start();
    driver.browser.handlers.up(service("Backup", "bbbbbbbbbbbbbbbb"));
    expect(discovery.list()[0]?.keyMismatch).toBe(false);
    discovery.update({ fingerprint: "fedcba9876543210" });
    expect(discovery.list()[0]?.keyMismatch).toBe(true);
  });

  test("a new name says goodbye under the old instance, then advertises the new one", async () => {
    const { discovery, driver } = setup();
    discovery.start();
    const old = driver.ad;
    discovery.update({ name: "Main 2" });
    expect(old.stoppedWith).toBe(true);
    await Promise.resolve();
    await Promise.resolve();
    expect(driver.ads).toHaveLength(2);
    expect(driver.ad.spec.name).toBe("Main 2");
  });

  test("update() before start() is carried by the first advertisement", () => {
    const { discovery, driver } = setup();
    discovery.update({ epoch: 9 });
    discovery.start();
    expect(parseTxt(driver.ad.spec.txt)).toMatchObject({ ok: true, value: { epoch: 9 } });
  });

  test("stop() says goodbye, stops browsing, clears the list and every timer; twice is fine", async () => {
    const { discovery, driver, timers } = setup();
    discovery.start();
    driver.browser.handlers.up(service("Backup", "bbbbbbbbbbbbbbbb"));
    driver.ad.handlers.error(new Error("x")); // a restart timer is pending
    discovery.start(); // already running: nothing new
    expect(driver.browsers).toHaveLength(1);
    timers.advance(DEFAULT_RESTART_MS);
    const first = discovery.stop();
    expect(discovery.stop()).toBe(first);
    await first;
    expect(driver.ad.stoppedWith).toBe(true);
    expect(driver.browser.stopped).toBe(true);
    expect(discovery.list()).toEqual([]);
    expect(timers.count).toBe(0);
    driver.ad.handlers.error(new Error("late")); // after stop: nothing is restarted
    timers.advance(60_000);
    expect(driver.ads).toHaveLength(2);
  });

  test("stop() does not wait more than GOODBYE_TIMEOUT_MS for goodbyes", async () => {
    const { discovery, driver, timers } = setup();
    discovery.start();
    driver.ad.goodbyeHangs = true;
    let done = false;
    const stopping = discovery.stop().then(() => (done = true));
    timers.advance(GOODBYE_TIMEOUT_MS - 1);
    await Promise.resolve();
    expect(done).toBe(false);
    timers.advance(1);
    await stopping;
    expect(done).toBe(true);
  });

  test("a listener that throws does not break discovery", () => {
    const { discovery, driver, log } = setup();
    discovery.onChange(() => {
      throw new Error("listener bug");
    });
    discovery.start();
    expect(() => driver.browser.handlers.up(service("Backup", "bbbbbbbbbbbbbbbb"))).not.toThrow();
    expect(discovery.list()).toHaveLength(1);
    expect(log.events("discovery.listener_failed")).toHaveLength(1);
  });

  test.each([
    ["port 0", { port: 0 }],
    ["a host label with a dot", { host: "a.b" }],
    ["an empty interface name", { interface: "" }],
    ["a bad self", { self: { ...SELF, fingerprint: "nope" } }],
  ])("refuses %s at construction", (_, options) => {
    expect(() => setup(options as Partial<DiscoveryOptions>)).toThrow(InvalidInput);
  });
});
