/**
 * DNS-SD discovery on the local link: advertises this machine
 * as `_understudy._tcp` on its peer port with its TXT record, browses for the
 * others, and keeps the list the UI offers ("Add Backup server", the Machines
 * panel). A machine holding another network key is listed with keyMismatch.
 *
 * The rules live in pure modules (txt.ts, sighting.ts, machine-table.ts) and
 * dnssd behind an MdnsDriver (dnssd-driver.ts); this file is the runner that
 * owns the timers. Discovery must never take the node down: every mDNS error
 * is caught, reported, and the failed part restarted after a growing delay;
 * every answer from the network is parsed before use and ignored (with a log
 * line) when it is malformed.
 *
 * Discovery is not a failure detector: heartbeats are. A machine that stops
 * with a goodbye leaves the list within about a second; one that vanishes
 * without a word leaves when its records' TTL runs out (dnssd: 120 s).
 */
import { z } from "zod";
import type { Clock, Timers } from "../../core/clock.ts";
import { systemClock, systemTimers } from "../system-time.ts";
import { AppError, InvalidInput } from "../../core/errors.ts";
import type { Logger } from "../../log.ts";
import { createDnssdDriver } from "./dnssd-driver.ts";
import { MachineTable, type DiscoveredMachine } from "./machine-table.ts";
import { parseSighting } from "./sighting.ts";
import type { MdnsAdvertisement, MdnsBrowser, MdnsDriver } from "./mdns.ts";
import { encodeTxt, machineAdvertSchema, SERVICE_NAME, type MachineAdvert } from "./txt.ts";

export type { DiscoveredMachine } from "./machine-table.ts";
export type { MachineAdvert } from "./txt.ts";
export { advertisedListenHost } from "./txt.ts";

/** How often services dnssd still holds are re-confirmed and silent ones forgotten. */
export const DEFAULT_SWEEP_MS = 1_000;
export const MIN_SWEEP_MS = 50;
/** First retry after a dnssd failure; doubles on each failure in a row, up to MAX_RESTART_MS. */
export const DEFAULT_RESTART_MS = 2_000;
export const MAX_RESTART_MS = 60_000;
/** A clean stop waits this long at most for dnssd's goodbyes (it takes about 1 s). */
export const GOODBYE_TIMEOUT_MS = 3_000;
/** Distinct ignored services remembered so each reason is logged once, not on every sweep. */
const MAX_IGNORED_REMEMBERED = 256;


export interface DiscoveryOptions {
  /** What this machine advertises; `id` and `fingerprint` also decide who is "us" and who has another key. */
  self: MachineAdvert;
  /** The peer port (7401 by default) advertised in the SRV record. */
  port: number;
  /** Interface name or IPv4 address to use ("eth0", "lo"); all interfaces when absent. */
  interface?: string;
  /** mDNS host label for our A records; defaults to "understudy-" + the first 12 digits of our id, so it never fights the OS's own name. */
  host?: string;
  /** Forget a service nobody vouched for in this long (clamped, see machine-table.ts). */
  forgetAfterMs?: number;
  sweepMs?: number;
  restartAfterMs?: number;
  clock?: Clock;
  timers?: Timers;
  log?: Logger;
  /** The mDNS implementation; dnssd unless a test passes a fake. */
  driver?: MdnsDriver;
}

export interface DiscoveryStatus {
  /** Our advertisement has been probed and announced. */
  advertising: boolean;
  browsing: boolean;
  /** The DNS-SD instance name we hold (dnssd renames "Name" to "Name (2)" on a clash). */
  instance: string | null;
  lastError: { code: string; message: string } | null;
}

/** DNS-SD could not run (no such interface, no multicast route, port 5353 refused…); retried on its own. */
export class DiscoveryUnavailable extends AppError {
  constructor(message: string, cause?: unknown) {
    super("DISCOVERY_UNAVAILABLE", message, { status: 503, cause });
    this.name = "DiscoveryUnavailable";
  }
}

type Part = "advertisement" | "browser";
type State = "idle" | "running" | "stopping";

const optionsSchema = z.object({
  port: z.int().min(1).max(65535),
  interface: z.string().min(1).max(64).optional(),
  host: z
    .string()
    .regex(/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/, "a DNS label: letters, digits and dashes")
    .optional(),
});

export class Discovery {
  private self: MachineAdvert;
  private readonly port: number;
  private readonly iface: string | undefined;
  private readonly host: string;
  private readonly sweepMs: number;
  private readonly restartAfterMs: number;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly log: Logger | undefined;
  private readonly table: MachineTable;
  private readonly driver: MdnsDriver;

  private state: State = "idle";
  private ad: MdnsAdvertisement | null = null;
  /** The instance name we were last announced under, while `ad` is active. */
  private instance: string | null = null;
  private browser: MdnsBrowser | null = null;
  private sweepTimer: (() => void) | null = null;
  private readonly restartTimers = new Map<Part, () => void>();
  private readonly failuresInARow = new Map<Part, number>();
  private lastError: DiscoveryStatus["lastError"] = null;
  private readonly ignored = new Map<string, string>();
  private readonly listeners = new Set<() => void>();
  private stopped: Promise<void> | null = null;

  /** Throws InvalidInput when `self`, `port`, `interface` or `host` is not valid (a bug or a bad flag, found at start-up). */
  constructor(options: DiscoveryOptions) {
    const self = machineAdvertSchema.safeParse(options.self);
    if (!self.success) throw new InvalidInput(`Discovery cannot advertise this machine: ${z.prettifyError(self.error)}`, "discovery", self.error);
    const rest = optionsSchema.safeParse({ port: options.port, interface: options.interface, host: options.host });
    if (!rest.success) throw new InvalidInput(`Discovery options are not valid: ${z.prettifyError(rest.error)}`, "discovery", rest.error);
    this.self = self.data;
    this.port = rest.data.port;
    this.iface = rest.data.interface;
    this.host = rest.data.host ?? `understudy-${self.data.id.slice(0, 12)}`;
    this.sweepMs = Math.max(MIN_SWEEP_MS, options.sweepMs ?? DEFAULT_SWEEP_MS);
    this.restartAfterMs = Math.min(MAX_RESTART_MS, Math.max(MIN_SWEEP_MS, options.restartAfterMs ?? DEFAULT_RESTART_MS));
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.log = options.log;
    this.table = new MachineTable(options.forgetAfterMs);
    this.driver = options.driver ?? createDnssdDriver();
  }

  /** Starts advertising and browsing. Never throws: failures are logged, shown in status() and retried. */
  start(): void {
    if (this.state !== "idle") return;
    this.state = "running";
    this.stopped = null;
    this.startAdvertisement();
    this.startBrowser();
    this.armSweep();
  }

  /**
   * Changes what we advertise (role, epoch, license, version, name or key
   * fingerprint; never the id) and re-announces the TXT record at once.
   * Throws InvalidInput on a value that does not fit the TXT schema.
   */
  update(changes: Partial<Omit<MachineAdvert, "id">>): void {
    const next = machineAdvertSchema.safeParse({ ...this.self, ...changes, id: this.self.id });
    if (!next.success) throw new InvalidInput(`Discovery cannot advertise this change: ${z.prettifyError(next.error)}`, "discovery", next.error);
    const before = this.self;
    this.self = next.data;
    if ((Object.keys(before) as (keyof MachineAdvert)[]).every((k) => before[k] === next.data[k])) return;
    this.notify();
    if (this.state !== "running" || !this.ad) return; // the next advertisement carries it
    if (before.name !== next.data.name) {
      this.replaceAdvertisement(); // the instance name follows the machine name
      return;
    }
    try {
      this.ad.updateTxt(encodeTxt(this.self));
    } catch (error) {
      this.log?.warn("discovery.update_failed", { message: errorMessage(error) });
    }
  }

  /** The machines discovered on the link, without ourselves, sorted by name. */
  list(): DiscoveredMachine[] {
    return this.table.list({ id: this.self.id, fingerprint: this.self.fingerprint });
  }

  status(): DiscoveryStatus {
    return {
      advertising: this.instance !== null,
      browsing: this.browser !== null,
      instance: this.instance,
      lastError: this.lastError,
    };
  }

  /** Calls `listener` whenever list() may have changed; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One step of the background loop: re-confirm every service dnssd holds, forget the silent ones. */
  sweep(): void {
    const now = this.clock.now();
    let changed = false;
    if (this.browser) {
      let services: unknown[] = [];
      try {
        services = this.browser.list();
      } catch (error) {
        this.log?.warn("discovery.list_failed", { message: errorMessage(error) });
      }
      for (const service of services) changed = this.consider(service, now) || changed;
    }
    if (this.table.expire(now).length > 0) changed = true;
    if (changed) this.notify();
  }

  /** Withdraws our advertisement (goodbye packets, so others drop us within a second) and stops browsing. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    if (this.state === "idle") return Promise.resolve();
    this.state = "stopping";
    this.sweepTimer?.();
    this.sweepTimer = null;
    for (const cancel of this.restartTimers.values()) cancel();
    this.restartTimers.clear();
    this.stopBrowser();
    const ad = this.ad;
    this.ad = null;
    this.instance = null;
    this.stopped = this.sayGoodbye(ad).then(() => {
      this.state = "idle";
      this.table.clear();
      this.ignored.clear();
      this.notify();
    });
    return this.stopped;
  }

  // --- advertisement ---------------------------------------------------------

  private startAdvertisement(): void {
    let ad: MdnsAdvertisement | null = null;
    const mine = () => ad !== null && this.ad === ad;
    try {
      ad = this.driver.advertise(
        { service: SERVICE_NAME, port: this.port, name: this.self.name, host: this.host, txt: encodeTxt(this.self), interface: this.iface },
        {
          active: (instance) =>
            this.guarded(() => {
              if (!mine()) return;
              this.instance = instance;
              this.failuresInARow.delete("advertisement");
              this.log?.info("discovery.advertising", { instance: printable(instance), port: this.port, interface: this.iface ?? "all" });
            }),
          renamed: (instance) =>
            this.guarded(() => mine() && this.log?.warn("discovery.renamed", { instance: printable(instance), reason: "another service held our name" })),
          error: (error) =>
            this.guarded(() => {
              if (!mine()) return; // one we already let go of
              this.ad = null; // the driver has stopped it
              this.instance = null;
              this.failed("advertisement", error);
            }),
        },
      );
      this.ad = ad;
      this.instance = null;
      ad.start();
    } catch (error) {
      if (ad && this.ad === ad) void ad.stop(false);
      this.ad = null;
      this.failed("advertisement", error);
    }
  }

  /**
   * The name changed: say goodbye under the old instance name, then advertise
   * under the new one (not both at once: the old one would defend our host
   * name against the new one's probe).
   */
  private replaceAdvertisement(): void {
    const old = this.ad;
    this.ad = null;
    this.instance = null;
    void this.sayGoodbye(old).then(() => {
      if (this.state === "running" && !this.ad) this.startAdvertisement();
    });
  }

  /** Stop with goodbyes, waiting GOODBYE_TIMEOUT_MS at most; never rejects. */
  private sayGoodbye(ad: MdnsAdvertisement | null): Promise<void> {
    if (!ad) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const cancel = this.timers.after(GOODBYE_TIMEOUT_MS, resolve);
      ad.stop(true).then(() => {
        cancel();
        resolve();
      });
    });
  }

  // --- browser ---------------------------------------------------------------

  private startBrowser(): void {
    let browser: MdnsBrowser | null = null;
    const mine = () => browser !== null && this.browser === browser;
    const seen = (service: unknown) =>
      this.guarded(() => {
        if (!mine()) return;
        this.failuresInARow.delete("browser");
        if (this.consider(service, this.clock.now())) this.notify();
      });
    try {
      browser = this.driver.browse(
        { service: SERVICE_NAME, interface: this.iface },
        {
          up: seen,
          changed: seen,
          down: (service) =>
            this.guarded(() => {
              if (!mine()) return;
              const name = serviceName(service);
              if (name !== null && this.table.gone(name)) this.notify();
            }),
          error: (error) =>
            this.guarded(() => {
              if (!mine()) return;
              this.browser = null; // the driver has stopped it
              this.failed("browser", error);
            }),
        },
      );
      this.browser = browser;
      browser.start();
    } catch (error) {
      if (browser && this.browser === browser) browser.stop();
      this.browser = null;
      this.failed("browser", error);
    }
  }

  private stopBrowser(): void {
    const browser = this.browser;
    this.browser = null;
    if (!browser) return;
    try {
      browser.stop();
    } catch (error) {
      this.log?.warn("discovery.browser_stop_failed", { message: errorMessage(error) });
    }
  }

  /** Takes one service report into the table; returns true when list() changed. */
  private consider(service: unknown, now: number): boolean {
    const parsed = parseSighting(service);
    if (parsed.ok) {
      this.ignored.delete(parsed.value.service);
      return this.table.seen(parsed.value, now);
    }
    const name = serviceName(service) ?? "(unnamed service)";
    if (this.ignored.get(name) !== parsed.reason) {
      if (this.ignored.size >= MAX_IGNORED_REMEMBERED) this.ignored.clear();
      this.ignored.set(name, parsed.reason);
      this.log?.warn("discovery.ignored", { service: printable(name), reason: parsed.reason });
    }
    return this.table.gone(name); // it may have been valid before
  }

  // --- failures, timers, listeners ---------------------------------------------

  private failed(part: Part, error: unknown): void {
    const failures = (this.failuresInARow.get(part) ?? 0) + 1;
    this.failuresInARow.set(part, failures);
    const retryInMs = Math.min(MAX_RESTART_MS, this.restartAfterMs * 2 ** (failures - 1));
    const where = this.iface ? `on interface ${this.iface}` : "on this machine's interfaces";
    const problem = new DiscoveryUnavailable(
      `DNS-SD ${part} failed ${where}: ${errorMessage(error)}. Other machines may not appear in the list (an address can still be typed in); retrying in ${Math.round(retryInMs / 1000)} s.`,
      error,
    );
    this.lastError = { code: problem.code, message: problem.message };
    this.log?.warn("discovery.error", { part, code: problem.code, message: errorMessage(error), retryInMs });
    if (this.state !== "running") return;
    this.restartTimers.get(part)?.();
    this.restartTimers.set(
      part,
      this.timers.after(retryInMs, () => {
        this.restartTimers.delete(part);
        if (this.state !== "running") return;
        if (part === "advertisement" && !this.ad) this.startAdvertisement();
        if (part === "browser" && !this.browser) this.startBrowser();
      }),
    );
  }

  private armSweep(): void {
    this.sweepTimer = this.timers.after(this.sweepMs, () => {
      if (this.state !== "running") return;
      this.guarded(() => this.sweep());
      this.armSweep();
    });
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.log?.error("discovery.listener_failed", { message: errorMessage(error) });
      }
    }
  }

  /** Runs a callback the driver calls us from: an exception must not escape into its socket handlers. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.log?.error("discovery.bug", { message: errorMessage(error) });
    }
  }
}

function serviceName(service: unknown): string | null {
  if (service === null || typeof service !== "object") return null;
  const name = (service as { fullname?: unknown }).fullname;
  return typeof name === "string" ? name : null;
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 120);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
