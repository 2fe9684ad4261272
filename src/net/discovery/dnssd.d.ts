/**
 * The part of dnssd 0.4.1 (pure-JS mDNS/DNS-SD, no types of its own) that
 * discovery uses. Only dnssd-driver.ts and dnssd-hardening.ts import it (tests read lib/Packet.js).
 */
declare module "dnssd" {
  type Listener = (...args: any[]) => void;

  interface Emitter {
    on(event: string, listener: Listener): this;
    once(event: string, listener: Listener): this;
    removeAllListeners(event?: string): this;
  }

  export class ServiceType {
    constructor(...args: unknown[]);
  }
  export function tcp(...args: string[]): ServiceType;

  /** A resolved service as the Browser reports it (every field came off the network). */
  export interface BrowserService {
    fullname: string;
    name: string;
    type: { name: string; protocol: string };
    domain: string;
    host: string;
    port: number;
    addresses: string[];
    txt: Record<string, unknown>;
    txtRaw: Record<string, unknown>;
  }

  export interface AdvertisementOptions {
    name?: string;
    host?: string;
    txt?: Record<string, string | Buffer | number | boolean>;
    subtypes?: string[];
    /** Interface name ("eth0") or IPv4 address to send multicast from. */
    interface?: string;
  }

  /** Emits 'error', 'stopped', 'active', 'instanceRenamed', 'hostRenamed'. */
  export class Advertisement implements Emitter {
    constructor(type: ServiceType | string, port: number, options?: AdvertisementOptions);
    instanceName: string;
    start(): this;
    /** A clean stop sends goodbyes (about 1 s) before `callback`; forced stops send none. */
    stop(forceImmediately?: boolean, callback?: () => void): void;
    updateTXT(txt: Record<string, string | Buffer | number | boolean>): void;
    on(event: string, listener: Listener): this;
    once(event: string, listener: Listener): this;
    removeAllListeners(event?: string): this;
  }

  export interface BrowserOptions {
    interface?: string;
    maintain?: boolean;
    resolve?: boolean;
    domain?: string;
  }

  /** Emits 'serviceUp', 'serviceChanged', 'serviceDown', 'error'. */
  export class Browser implements Emitter {
    constructor(type: ServiceType | string, options?: BrowserOptions);
    start(): this;
    stop(): void;
    list(): BrowserService[];
    on(event: string, listener: Listener): this;
    once(event: string, listener: Listener): this;
    removeAllListeners(event?: string): this;
  }

  const dnssd: {
    Advertisement: typeof Advertisement;
    Browser: typeof Browser;
    ServiceType: typeof ServiceType;
    tcp: typeof tcp;
  };
  export default dnssd;
}

declare module "dnssd/lib/NetworkInterface.js" {
  /** dnssd's shared socket per interface (one per name, or "any" for ""). */
  interface NetworkInterface {
    on(event: "error", listener: (error: unknown) => void): unknown;
    listenerCount(event: string): number;
  }
  const NetworkInterface: { get(name?: string): NetworkInterface };
  export default NetworkInterface;
}

declare module "dnssd/lib/BufferWrapper.js" {
  /** dnssd's packet reader/writer; dnssd-hardening.ts replaces its readFQDN. */
  const BufferWrapper: { prototype: Record<string, unknown> };
  export default BufferWrapper;
}

declare module "dnssd/lib/Packet.js" {
  /** A parsed mDNS packet; parse errors make isValid() false (used by tests). */
  class Packet {
    constructor(buffer?: Buffer, origin?: { address?: string; port?: number });
    isValid(): boolean;
    answers: { name: string; rrtype: number; [field: string]: unknown }[];
    additionals: { name: string; rrtype: number; [field: string]: unknown }[];
  }
  export default Packet;
}
