/**
 * The boundary between Discovery and an mDNS/DNS-SD implementation. The
 * production driver wraps dnssd (dnssd-driver.ts); tests pass a fake one to
 * drive Discovery through errors, restarts and hostile answers without a
 * network.
 *
 * Contract: a driver never throws out of an event into its caller's socket
 * handlers, calls each handler only between start() and stop(), and after an
 * `error` the object is already stopped (the caller makes a fresh one).
 */

export interface AdvertisementSpec {
  /** Service name without underscore or protocol: "understudy" for `_understudy._tcp`. */
  service: string;
  port: number;
  /** DNS-SD instance name (a DNS label: at most 63 bytes, no control characters). */
  name: string;
  /** mDNS host label for the A records. */
  host: string;
  txt: Record<string, Buffer>;
  interface?: string;
}

export interface AdvertisementHandlers {
  /** Probing done, records announced under `instance`. */
  active(instance: string): void;
  /** Someone else held the name; we now probe as `instance`. */
  renamed(instance: string): void;
  error(error: unknown): void;
}

export interface MdnsAdvertisement {
  start(): void;
  /** Replaces the TXT record and announces it; safe at any time (kept for the next announcement if not active). */
  updateTxt(txt: Record<string, Buffer>): void;
  /** With `goodbye`, resolves once goodbye packets are out (about 1 s); without, at once. Never rejects. */
  stop(goodbye: boolean): Promise<void>;
}

export interface BrowseSpec {
  service: string;
  interface?: string;
}

/** Services are passed on as the implementation reports them: untrusted, to be parsed (sighting.ts). */
export interface BrowserHandlers {
  up(service: unknown): void;
  changed(service: unknown): void;
  down(service: unknown): void;
  error(error: unknown): void;
}

export interface MdnsBrowser {
  start(): void;
  stop(): void;
  /** Every service currently resolved, untrusted. */
  list(): unknown[];
}

export interface MdnsDriver {
  /** May throw (no such interface, bad spec): the caller treats it like an `error`. */
  advertise(spec: AdvertisementSpec, handlers: AdvertisementHandlers): MdnsAdvertisement;
  browse(spec: BrowseSpec, handlers: BrowserHandlers): MdnsBrowser;
}
