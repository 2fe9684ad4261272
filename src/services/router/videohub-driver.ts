/**
 * The Blackmagic Videohub driver (docs/design.md §Render-engine backups):
 * TCP 9990, the full state dump on connect, a route counted only when the
 * router's `VIDEO OUTPUT ROUTING:` status confirms it, `PING:` for liveness,
 * locks never forced unless asked. Reconnects with back-off; time and timers
 * are injected.
 */
import type { Clock, Timers } from "../../core/clock.ts";
import { RouterError, type LockState, type RouterDriver, type RouterEvent, type RouterSnapshot } from "../../core/router.ts";
import { tcpTextDialer, type TextConnection, type TextDialer } from "../../net/tcp-text.ts";
import {
  BlockParser,
  PING_REQUEST,
  deviceSize,
  emptySnapshot,
  labelLines,
  lockLines,
  lockRequest,
  routeRequest,
  routingLines,
  type Block,
} from "./videohub-protocol.ts";

export const VIDEOHUB_PORT = 9990;

export interface VideohubTimings {
  /** The whole state dump must arrive within this. */
  connectTimeoutMs: number;
  /** A request not answered ACK/NAK within this drops the connection (a router that never answers). */
  ackTimeoutMs: number;
  /** After ACK, the status that confirms the change must follow within this. */
  confirmTimeoutMs: number;
  pingIntervalMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_VIDEOHUB_TIMINGS: VideohubTimings = {
  connectTimeoutMs: 5_000,
  ackTimeoutMs: 2_000,
  confirmTimeoutMs: 2_000,
  pingIntervalMs: 2_000,
  backoffMinMs: 500,
  backoffMaxMs: 10_000,
};

export interface VideohubOptions {
  host: string;
  port?: number;
  clock: Clock;
  timers: Timers;
  timings?: Partial<VideohubTimings>;
  dialer?: TextDialer;
}

interface AwaitingAck {
  resolve(): void;
  reject(error: RouterError): void;
  cancel(): void;
  /** The ACK of the ping sent on connect ends a prelude that has no `END PRELUDE:` (older firmware). */
  endsPrelude: boolean;
}

interface AwaitingStatus {
  confirmed(snapshot: RouterSnapshot): boolean;
  resolve(): void;
  reject(error: RouterError): void;
  cancel(): void;
}

export class VideohubDriver implements RouterDriver {
  readonly #host: string;
  readonly #port: number;
  readonly #timers: Timers;
  readonly #timings: VideohubTimings;
  readonly #dial: TextDialer;
  readonly #listeners = new Set<(event: RouterEvent) => void>();
  #connection: TextConnection | null = null;
  #generation = 0;
  #parser = new BlockParser();
  #building: RouterSnapshot | null = null;
  #snapshot: RouterSnapshot | null = null;
  #acks: AwaitingAck[] = [];
  #statuses: AwaitingStatus[] = [];
  #connectionTimers: (() => void)[] = [];
  #backoffMs: number;
  #started = false;
  #closed = false;
  #first: { resolve(s: RouterSnapshot): void; reject(e: RouterError): void } | null = null;
  #retry: (() => void) | null = null;

  constructor(options: VideohubOptions) {
    this.#host = options.host;
    this.#port = options.port ?? VIDEOHUB_PORT;
    this.#timers = options.timers;
    this.#timings = { ...DEFAULT_VIDEOHUB_TIMINGS, ...options.timings };
    this.#dial = options.dialer ?? tcpTextDialer;
    this.#backoffMs = this.#timings.backoffMinMs;
  }

  /** Resolves with the first full state; rejects if the first attempt fails (later attempts go on until `close`). */
  connect(): Promise<RouterSnapshot> {
    if (this.#closed) return Promise.reject(new RouterError("ROUTER_CLOSED", "this router connection was closed"));
    if (this.#snapshot) return Promise.resolve(this.#snapshot);
    const first = new Promise<RouterSnapshot>((resolve, reject) => (this.#first = { resolve, reject }));
    if (!this.#started) {
      this.#started = true;
      void this.#attempt();
    }
    return first;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#retry?.();
    this.#lost(new RouterError("ROUTER_CLOSED", "the router connection was closed"));
  }

  state(): RouterSnapshot | null {
    return this.#snapshot;
  }

  onEvent(listener: (event: RouterEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async route(destination: number, source: number): Promise<void> {
    const snapshot = this.#ready();
    this.#checkPort(destination, snapshot.outputCount, "destination");
    this.#checkPort(source, snapshot.inputCount, "source");
    if (snapshot.locks[destination] === "L") {
      throw new RouterError("ROUTER_LOCKED", `destination ${destination} is locked by another router client: unlock it on the router, or force it from the Health panel`);
    }
    if (snapshot.routes[destination] === source) return;
    await this.#send(routeRequest(destination, source), (s) => s.routes[destination] === source, `route ${source} → ${destination}`);
  }

  async setLock(destination: number, lock: "O" | "U" | "F"): Promise<void> {
    const snapshot = this.#ready();
    this.#checkPort(destination, snapshot.outputCount, "destination");
    const wanted: (l: LockState | undefined) => boolean = lock === "O" ? (l) => l === "O" : (l) => l === "U";
    if (wanted(snapshot.locks[destination])) return;
    await this.#send(lockRequest(destination, lock), (s) => wanted(s.locks[destination]), `lock ${lock} on ${destination}`);
  }

  #ready(): RouterSnapshot {
    if (!this.#snapshot || !this.#connection) {
      throw new RouterError("ROUTER_NOT_CONNECTED", `the router at ${this.#host}:${this.#port} is not connected: check its address and network`);
    }
    return this.#snapshot;
  }

  #checkPort(port: number, count: number, what: string): void {
    if (!Number.isInteger(port) || port < 0 || port >= count) {
      throw new RouterError("ROUTER_BAD_PORT", `${what} ${port} does not exist on this router (ports 0–${count - 1})`);
    }
  }

  /** Sends a request; resolves once ACKed and the status confirms it (within confirmTimeoutMs of the ACK). */
  async #send(text: string, confirmed: (s: RouterSnapshot) => boolean, what: string): Promise<void> {
    let stopTimer = () => {};
    let settled = false;
    const entry: AwaitingStatus = { confirmed, resolve: () => {}, reject: () => {}, cancel: () => {} };
    const status = new Promise<void>((resolve, reject) => {
      entry.resolve = () => ((settled = true), resolve());
      entry.reject = (error) => ((settled = true), reject(error));
    });
    entry.cancel = () => {
      stopTimer();
      this.#statuses = this.#statuses.filter((s) => s !== entry);
    };
    status.catch(() => {});
    this.#statuses.push(entry);
    try {
      await this.#request(text, false, what);
    } catch (error) {
      entry.cancel();
      throw error;
    }
    if (!settled) {
      stopTimer = this.#timers.after(this.#timings.confirmTimeoutMs, () => {
        entry.cancel();
        entry.reject(new RouterError("ROUTER_NOT_CONFIRMED", `the router said ACK but did not confirm ${what}: the route in force is what it reports`));
      });
    }
    await status;
  }

  #request(text: string, endsPrelude: boolean, what: string): Promise<void> {
    const connection = this.#connection;
    if (!connection) return Promise.reject(new RouterError("ROUTER_NOT_CONNECTED", "the router is not connected"));
    return new Promise<void>((resolve, reject) => {
      const generation = this.#generation;
      const cancel = this.#timers.after(this.#timings.ackTimeoutMs, () => {
        if (generation !== this.#generation) return;
        this.#drop(new RouterError("ROUTER_TIMEOUT", `the router did not answer ${what} within ${this.#timings.ackTimeoutMs} ms: reconnecting`));
      });
      this.#acks.push({ resolve, reject, cancel, endsPrelude });
      connection.write(text);
    });
  }

  async #attempt(): Promise<void> {
    if (this.#closed) return;
    const generation = ++this.#generation;
    this.#parser = new BlockParser();
    this.#building = null;
    let connection: TextConnection;
    // A dial to an address where nothing answers SYN can hang for minutes: the connect timeout bounds it too.
    const stopDialTimer = this.#timers.after(this.#timings.connectTimeoutMs, () => {
      if (generation === this.#generation) this.#lost(new RouterError("ROUTER_TIMEOUT", `no answer from ${this.#host}:${this.#port} within ${this.#timings.connectTimeoutMs} ms: check the router's address and that it is on`));
    });
    this.#connectionTimers.push(stopDialTimer);
    try {
      connection = await this.#dial(this.#host, this.#port, {
        data: (text) => generation === this.#generation && this.#data(text),
        closed: (error) => {
          if (generation !== this.#generation) return;
          const half = this.#parser.midBlock ? " in the middle of a block" : "";
          this.#lost(new RouterError("ROUTER_UNREACHABLE", `the router closed the connection${half}`, error));
        },
      });
    } catch (error) {
      stopDialTimer();
      if (generation === this.#generation) {
        this.#lost(new RouterError("ROUTER_UNREACHABLE", `cannot reach the router at ${this.#host}:${this.#port}: check its address and that it is on`, error));
      }
      return;
    }
    stopDialTimer();
    if (generation !== this.#generation || this.#closed) {
      connection.close();
      return;
    }
    this.#connection = connection;
    this.#connectionTimers.push(
      this.#timers.after(this.#timings.connectTimeoutMs, () => {
        if (generation === this.#generation && !this.#snapshot) {
          this.#drop(new RouterError("ROUTER_TIMEOUT", `the router did not send its state within ${this.#timings.connectTimeoutMs} ms`));
        }
      }),
    );
    this.#request(PING_REQUEST, true, "the first ping").catch(() => {});
  }

  #data(text: string): void {
    let blocks: Block[];
    try {
      blocks = this.#parser.feed(text);
    } catch (error) {
      this.#drop(error instanceof RouterError ? error : new RouterError("ROUTER_PROTOCOL", "unreadable data from the router", error));
      return;
    }
    for (const block of blocks) {
      if (!this.#connection) return;
      try {
        this.#block(block);
      } catch (error) {
        if (error instanceof RouterError) this.#emit({ kind: "error", error });
        else throw error;
      }
    }
  }

  #block(block: Block): void {
    const header = block.header;
    if (header === "ACK" || header === "NAK") {
      const awaiting = this.#acks.shift();
      if (!awaiting) return;
      awaiting.cancel();
      if (header === "ACK") {
        awaiting.resolve();
        if (awaiting.endsPrelude) this.#preludeEnded();
      } else {
        awaiting.reject(new RouterError("ROUTER_NAK", "the router refused the request (NAK): the port may be locked or out of range"));
      }
      return;
    }
    if (header === "VIDEOHUB DEVICE:") {
      const size = deviceSize(block);
      this.#building = emptySnapshot(size.model, size.inputs, size.outputs);
      return;
    }
    if (header === "END PRELUDE:") return this.#preludeEnded();
    if (!["INPUT LABELS:", "OUTPUT LABELS:", "VIDEO OUTPUT LOCKS:", "VIDEO OUTPUT ROUTING:"].includes(header)) return;
    const target = this.#snapshot ?? this.#building;
    if (!target) throw new RouterError("ROUTER_PROTOCOL", `the router sent "${header}" before saying its size; it was ignored`);
    const next = apply(target, block);
    if (this.#snapshot) {
      this.#snapshot = next.snapshot;
      this.#emit(next.event);
      for (const s of [...this.#statuses]) {
        if (s.confirmed(next.snapshot)) {
          s.cancel();
          s.resolve();
        }
      }
    } else {
      this.#building = next.snapshot;
    }
  }

  #preludeEnded(): void {
    if (this.#snapshot || !this.#building) return;
    this.#snapshot = this.#building;
    this.#backoffMs = this.#timings.backoffMinMs;
    const generation = this.#generation;
    this.#connectionTimers.push(
      this.#timers.every(this.#timings.pingIntervalMs, () => {
        if (generation === this.#generation) this.#request(PING_REQUEST, false, "a ping").catch(() => {});
      }),
    );
    this.#emit({ kind: "connected", snapshot: this.#snapshot });
    this.#first?.resolve(this.#snapshot);
    this.#first = null;
  }

  #drop(error: RouterError): void {
    // #lost moves the generation on before closing, so the close it causes is not reported twice.
    this.#lost(error);
  }

  /** The connection is gone: fail what waits, forget the state (it is read again on connect), retry. */
  #lost(error: RouterError): void {
    this.#generation++;
    const connection = this.#connection;
    this.#connection = null;
    connection?.close();
    this.#snapshot = null;
    this.#building = null;
    for (const cancel of this.#connectionTimers) cancel();
    this.#connectionTimers = [];
    for (const a of this.#acks.splice(0)) {
      a.cancel();
      a.reject(error);
    }
    for (const s of [...this.#statuses]) {
      s.cancel();
      s.reject(error);
    }
    this.#emit({ kind: "disconnected", error });
    this.#first?.reject(error);
    this.#first = null;
    if (this.#closed) return;
    const wait = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#timings.backoffMaxMs);
    this.#retry = this.#timers.after(wait, () => void this.#attempt());
  }

  #emit(event: RouterEvent): void {
    for (const listener of [...this.#listeners]) listener(event);
  }
}

function apply(snapshot: RouterSnapshot, block: Block): { snapshot: RouterSnapshot; event: RouterEvent } {
  switch (block.header) {
    case "VIDEO OUTPUT ROUTING:": {
      const changes = routingLines(block, snapshot.inputCount, snapshot.outputCount);
      const routes = [...snapshot.routes];
      for (const c of changes) routes[c.destination] = c.source;
      const next = { ...snapshot, routes };
      return { snapshot: next, event: { kind: "routes", changes, snapshot: next } };
    }
    case "VIDEO OUTPUT LOCKS:": {
      const changes = lockLines(block, snapshot.outputCount);
      const locks = [...snapshot.locks];
      for (const c of changes) locks[c.destination] = c.lock;
      const next = { ...snapshot, locks };
      return { snapshot: next, event: { kind: "locks", changes, snapshot: next } };
    }
    default: {
      const inputs = block.header === "INPUT LABELS:";
      const labels = [...(inputs ? snapshot.inputLabels : snapshot.outputLabels)];
      for (const l of labelLines(block, inputs ? snapshot.inputCount : snapshot.outputCount)) labels[l.port] = l.label;
      const next = inputs ? { ...snapshot, inputLabels: labels } : { ...snapshot, outputLabels: labels };
      return { snapshot: next, event: { kind: "labels", snapshot: next } };
    }
  }
}
