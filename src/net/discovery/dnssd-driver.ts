/**
 * The MdnsDriver on dnssd 0.4.1 (pure-JS mDNS, pinned in package.json): the
 * only file that imports it, and the place its sharp edges are filed off.
 *
 * - A self-pointing DNS name froze dnssd's parser: hardenDnssd() first.
 * - dnssd's shared per-interface socket re-emits socket errors; with no
 *   listener left Node's emitter would throw them out of a socket callback,
 *   so each interface gets one permanent listener (guardInterface).
 * - `Advertisement.updateTXT` can crash the process (see updateTxt below).
 * - Stopping an advertisement or browser twice releases the shared socket
 *   twice, which can close it under the other one; each wrapper stops once.
 */
import dnssd, { type Advertisement, type Browser } from "dnssd";
import NetworkInterface from "dnssd/lib/NetworkInterface.js";
import { hardenDnssd } from "./dnssd-hardening.ts";
import type {
  AdvertisementHandlers,
  AdvertisementSpec,
  BrowserHandlers,
  BrowseSpec,
  MdnsAdvertisement,
  MdnsBrowser,
  MdnsDriver,
} from "./mdns.ts";

/** The DNS TXT record type (dnssd keeps it in lib/constants.js). */
const TXT_RRTYPE = 16;

/** Our handlers run inside dnssd's socket callbacks: nothing may escape them. */
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // The handlers are Discovery's, which catch and log their own failures.
  }
}

export function createDnssdDriver(): MdnsDriver {
  hardenDnssd();
  return {
    advertise: (spec, handlers) => new DnssdAdvertisement(spec, handlers),
    browse: (spec, handlers) => new DnssdBrowser(spec, handlers),
  };
}

class DnssdAdvertisement implements MdnsAdvertisement {
  private readonly ad: Advertisement;
  private stopped = false;

  constructor(spec: AdvertisementSpec, handlers: AdvertisementHandlers) {
    guardInterface(spec.interface);
    const ad = new dnssd.Advertisement(dnssd.tcp(spec.service), spec.port, {
      name: spec.name,
      host: spec.host,
      txt: spec.txt,
      ...(spec.interface ? { interface: spec.interface } : {}),
    });
    ad.on("active", () => quietly(() => !this.stopped && handlers.active(ad.instanceName)));
    ad.on("instanceRenamed", (instance: unknown) => quietly(() => !this.stopped && handlers.renamed(String(instance))));
    ad.on("error", (error: unknown) =>
      quietly(() => {
        if (this.stopped) return;
        this.stopped = true; // dnssd has stopped it already
        handlers.error(error);
      }),
    );
    this.ad = ad;
  }

  start(): void {
    this.ad.start();
  }

  /**
   * Not `ad.updateTXT`: that defers `this._serviceResponder.updateEach(…)` to
   * setImmediate with no null check, so if the advertisement fails or
   * re-probes in between (likely when the network fault behind a failover is
   * why the epoch changed) the TypeError escapes and ends the process; and it
   * leaves `ad.txt` stale, so a wake-from-sleep restart would bring the old
   * TXT back. Same steps, checked.
   */
  updateTxt(txt: Record<string, Buffer>): void {
    const internals = this.ad as unknown as AdvertisementInternals;
    internals.txt = txt; // what the next probe/announce (re)start uses
    setImmediate(() =>
      quietly(() => {
        const responder = internals._serviceResponder;
        if (this.stopped || !responder) return; // it announces `ad.txt` when active again
        responder.updateEach(TXT_RRTYPE, (record) => {
          record.txtRaw = txt;
          record.txt = Object.fromEntries(Object.entries(txt).map(([k, v]) => [k, v.toString("utf8")]));
        });
      }),
    );
  }

  stop(goodbye: boolean): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.stopped = true;
    return new Promise<void>((resolve) => {
      try {
        this.ad.stop(!goodbye, () => resolve());
      } catch {
        resolve();
      }
    });
  }
}

class DnssdBrowser implements MdnsBrowser {
  private readonly browser: Browser;
  private stopped = false;

  constructor(spec: BrowseSpec, handlers: BrowserHandlers) {
    guardInterface(spec.interface);
    const browser = new dnssd.Browser(dnssd.tcp(spec.service), spec.interface ? { interface: spec.interface } : {});
    browser.on("serviceUp", (s: unknown) => quietly(() => !this.stopped && handlers.up(s)));
    browser.on("serviceChanged", (s: unknown) => quietly(() => !this.stopped && handlers.changed(s)));
    browser.on("serviceDown", (s: unknown) => quietly(() => !this.stopped && handlers.down(s)));
    browser.on("error", (error: unknown) =>
      quietly(() => {
        if (this.stopped) return;
        this.stopped = true; // dnssd has stopped it already
        handlers.error(error);
      }),
    );
    this.browser = browser;
  }

  start(): void {
    this.browser.start();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.browser.stop();
  }

  list(): unknown[] {
    return this.stopped ? [] : this.browser.list();
  }
}

interface AdvertisementInternals {
  txt: Record<string, Buffer>;
  _serviceResponder: {
    updateEach(rrtype: number, fn: (record: { txtRaw: unknown; txt: unknown }) => void): void;
  } | null;
}

const guardedInterfaces = new WeakSet<object>();
function guardInterface(name: string | undefined): void {
  const intf = NetworkInterface.get(name ?? "");
  if (guardedInterfaces.has(intf)) return;
  intf.on("error", () => {});
  guardedInterfaces.add(intf);
}
