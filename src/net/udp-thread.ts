/**
 * A UDP socket owned by a worker thread, so heartbeats go out on time while the event loop is held
 * (a 1 GiB copy, a GC pause: 100–300 ms, longer than the fast preset's failover timeout allows),
 * yet only while it is alive (docs/design.md §Heartbeats and freshness). The thread sends what this
 * thread posts, at once, and keeps per target a short schedule of datagrams sealed ahead: each goes
 * out at or after its time unless the next schedule for that target replaced it, and never at or
 * after its `notAfter`. The caller hands over only a few periods' worth, so an event loop that stays
 * stalled still goes silent once they are spent.
 *
 * The thread is the only owner of the port: Bun's UDP has no SO_REUSEPORT, and peers know a machine
 * by its heartbeats' source address, so every send comes from this one socket. Received datagrams
 * are forwarded in one message per thread turn, and at most MAX_UNDELIVERED wait for this thread to
 * take them; beyond that they are dropped and counted (a flood must not grow memory while the loop
 * is held: the kernel's buffer used to bound that).
 *
 * The worker's source is inline (a Blob URL) so the compiled executable needs no second entry point
 * (as store/chunk-hasher.ts). It reads its own clock and starts its own timer: a Clock cannot be
 * passed to another thread, so this file is a time edge as net/system-time.ts is (the layout test
 * names both). Times cross as `performance.timeOrigin + performance.now()`, on which both threads
 * agree to ≈ 0.3 ms.
 */
import type { HostPort } from "../core/config.ts";
import { notAnAddress, sendOnce, type UdpHandlers, type UdpPort } from "./udp-direct.ts";
import { systemTimers } from "./system-time.ts";

/** Datagrams handed up and not yet taken by this thread, at most (then the thread drops them). */
export const MAX_UNDELIVERED = 1024;
/** How long the thread may take to start and bind before the socket is bound on this thread instead. */
export const THREAD_START_MS = 5_000;
/** How long close() waits for the thread to close its socket before ending it (which closes the socket too). */
const CLOSE_MS = 1_000;

/** A datagram sealed ahead: sent at or after `at`, never at or after `notAfter` (absolute: `performance.timeOrigin + performance.now()`). */
export type AheadDatagram = { datagram: Uint8Array; target: HostPort; at: number; notAfter: number };

export const UDP_THREAD_SOURCE = `
const now = () => performance.timeOrigin + performance.now();
let socket = null;
let undelivered = 0;
let batch = [];
let overflowed = 0;
let flushing = false;
const schedules = new Map();
let timer = null;

function fault(error) {
  return { code: error && error.code, message: String(error && error.message ? error.message : error) };
}

const sendOnce = ${sendOnce.toString()};

function send(datagram, port, host) {
  const error = sendOnce(socket, datagram, port, host);
  if (error !== null) postMessage({ t: "send-error", target: { host, port }, error: fault(error) });
  return error === null;
}

function flush() {
  flushing = false;
  if (batch.length === 0 && overflowed === 0) return;
  postMessage({ t: "data", batch, overflowed });
  undelivered += batch.length;
  batch = [];
  overflowed = 0;
}

function receive(data, port, host, truncated) {
  if (undelivered + batch.length >= ${MAX_UNDELIVERED}) overflowed++;
  else batch.push({ data, host, port, truncated });
  if (!flushing) {
    flushing = true;
    setImmediate(flush);
  }
}

function arm() {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  let first = Infinity;
  for (const entries of schedules.values()) if (entries[0].at < first) first = entries[0].at;
  if (first !== Infinity) timer = setTimeout(runDue, Math.max(0, Math.ceil(first - now())));
}

function runDue() {
  timer = null;
  const t = now();
  let sent = 0;
  let late = 0;
  for (const [key, entries] of schedules) {
    while (entries.length > 0 && entries[0].at <= t) {
      const entry = entries.shift();
      if (t >= entry.notAfter) late++;
      else if (send(entry.datagram, entry.port, entry.host)) sent++;
    }
    if (entries.length === 0) schedules.delete(key);
  }
  if (sent + late > 0) postMessage({ t: "ahead", sent, late });
  arm();
}

self.onmessage = async (event) => {
  const m = event.data;
  if (m.t === "send") {
    for (const target of m.targets) send(m.datagram, target.port, target.host);
  } else if (m.t === "schedule") {
    const entries = m.entries.filter((e) => e.at < e.notAfter).sort((a, b) => a.at - b.at);
    if (entries.length > 0) schedules.set(m.key, entries);
    else schedules.delete(m.key);
    arm();
  } else if (m.t === "clear") {
    schedules.clear();
    arm();
  } else if (m.t === "ack") {
    undelivered -= m.count;
    // Drops not yet told go with the next batch; with none coming, say them now.
    if (overflowed > 0 && !flushing) {
      flushing = true;
      setImmediate(flush);
    }
  } else if (m.t === "bind") {
    try {
      socket = await Bun.udpSocket({
        hostname: m.host,
        port: m.port,
        binaryType: "uint8array",
        socket: {
          data: (_socket, data, port, address, flags) => receive(data, port, address, flags.truncated),
          // Without this handler Bun 1.4 exits the process on the ICMP "port unreachable" a send to a
          // dead peer brings back — exactly when the main is down. It passes only the error.
          error: (...args) => postMessage({ t: "socket-error", error: fault(args[args.length - 1]) }),
        },
      });
      postMessage({ t: "bound", port: socket.port, host: socket.hostname });
    } catch (error) {
      postMessage({ t: "bind-error", error: fault(error) });
    }
  } else if (m.t === "close") {
    schedules.clear();
    arm();
    if (socket !== null) socket.close();
    postMessage({ t: "closed" });
  }
};
`;

/** The thread could not start or bind in time, or died: the caller binds on its own thread instead. */
export class UdpThreadFailed extends Error {}

type Fault = { code?: string; message: string };
type FromThread =
  | { t: "bound"; port: number; host: string }
  | { t: "bind-error"; error: Fault }
  | { t: "data"; batch: { data: Uint8Array; host: string; port: number; truncated: boolean }[]; overflowed: number }
  | { t: "send-error"; target: HostPort; error: Fault }
  | { t: "socket-error"; error: Fault }
  | { t: "ahead"; sent: number; late: number }
  | { t: "closed" };

/** Bun's Worker can be left out of what keeps the process alive, and says when it exits ("close"; the DOM's type does not). */
type SocketWorker = Worker & { unref(): void };

/** One Blob URL per source, kept for the process's life: a socket bound again loads it again. */
const sourceUrls = new Map<string, string>();

export type UdpThreadHandlers = UdpHandlers & {
  /** Datagrams the thread dropped because this thread had not taken the ones before (MAX_UNDELIVERED). */
  overflowed(count: number): void;
  /** Datagrams sealed ahead that went out, and that were dropped for coming due at or after their `notAfter`. */
  ahead(sent: number, late: number): void;
  /** The thread died after binding: its port is free again (the socket closed with it). */
  died(error: UdpThreadFailed): void;
};

/** A Bun error with its code again (listenError switches on it). */
function asError(fault: Fault): Error {
  return Object.assign(new Error(fault.message), fault.code ? { code: fault.code } : {});
}

export class UdpThread implements UdpPort {
  #state: "open" | "closing" | "dead" = "open";
  readonly #exited: Promise<void>;

  private constructor(
    private readonly worker: SocketWorker,
    exited: Promise<void>,
    private readonly handlers: UdpThreadHandlers,
    readonly port: number,
    readonly host: string,
  ) {
    this.#exited = exited;
  }

  /**
   * Starts the thread and binds `host:port` there. A failed bind throws Bun's error (with its
   * `code`, for listenError); a thread that cannot start or bind within THREAD_START_MS throws
   * UdpThreadFailed, once it has ended (its port is free for another bind).
   */
  static async start(host: string, port: number, handlers: UdpThreadHandlers, source = UDP_THREAD_SOURCE): Promise<UdpThread> {
    let worker: SocketWorker;
    try {
      let url = sourceUrls.get(source);
      if (url === undefined) sourceUrls.set(source, (url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }))));
      worker = new Worker(url) as SocketWorker;
    } catch (error) {
      throw new UdpThreadFailed(`the socket thread did not start: ${(error as Error).message}`, { cause: error });
    }
    let exit: () => void = () => {};
    const exited = new Promise<void>((resolve) => (exit = resolve));
    worker.addEventListener("close", () => exit());
    let thread: UdpThread | null = null;
    const bound = new Promise<UdpThread>((resolve, reject) => {
      const stopWaiting = systemTimers.after(THREAD_START_MS, () => reject(new UdpThreadFailed(`the socket thread did not bind within ${THREAD_START_MS} ms`)));
      worker.onmessage = (event: MessageEvent<FromThread>) => {
        const m = event.data;
        if (m.t === "bound") {
          stopWaiting();
          resolve((thread = new UdpThread(worker, exited, handlers, m.port, m.host)));
        } else if (m.t === "bind-error") {
          stopWaiting();
          reject(asError(m.error));
        } else if (thread !== null) thread.#handle(m);
      };
      let failure = "the socket thread ended";
      worker.addEventListener("error", (event) => {
        // Bun gives the thread's error as a code frame with an "error: …" line, and no error object.
        failure = `the socket thread failed: ${/^error: (.+)$/m.exec((event as ErrorEvent).message ?? "")?.[1] ?? "an uncaught error"}`;
        worker.terminate();
      });
      // Said once the thread has ended, and its socket with it: the port can be bound again.
      worker.addEventListener("close", () => {
        stopWaiting();
        if (thread === null) return reject(new UdpThreadFailed(failure));
        if (thread.#state === "open") handlers.died(new UdpThreadFailed(failure));
        thread.#state = "dead";
      });
    });
    worker.postMessage({ t: "bind", host, port });
    try {
      return await bound;
    } catch (error) {
      worker.terminate();
      await exited;
      throw error;
    }
  }

  send(datagram: Uint8Array, targets: readonly HostPort[]): number {
    const sendable: HostPort[] = [];
    for (const target of targets) {
      const refused = notAnAddress(target);
      if (refused === null) sendable.push(target);
      else this.handlers.sendError(refused, target);
    }
    if (sendable.length > 0 && this.#state === "open") this.worker.postMessage({ t: "send", datagram, targets: sendable });
    return this.#state === "open" ? sendable.length : 0;
  }

  /** Replaces what is scheduled for `key` (one target) by `entries`. */
  schedule(key: string, entries: readonly AheadDatagram[]): void {
    if (this.#state !== "open") return;
    const plain = entries.map(({ datagram, target, at, notAfter }) => ({ datagram, host: target.host, port: target.port, at, notAfter }));
    this.worker.postMessage({ t: "schedule", key, entries: plain });
  }

  /** Drops everything scheduled and not yet sent. */
  clearSchedule(): void {
    if (this.#state === "open") this.worker.postMessage({ t: "clear" });
  }

  /** Closes the socket and ends the thread; resolves once it has ended (its port is free). */
  async close(): Promise<void> {
    if (this.#state === "open") {
      this.#state = "closing";
      // A closed socket keeps nothing alive, and nor does its thread while it winds down.
      this.worker.unref();
      this.worker.postMessage({ t: "close" });
      const stop = systemTimers.after(CLOSE_MS, () => this.worker.terminate());
      void this.#exited.then(stop);
    }
    await this.#exited;
  }

  #handle(m: FromThread): void {
    const handlers = this.handlers;
    // After close() nothing more is handed up.
    if (this.#state !== "open" && m.t !== "closed") return;
    switch (m.t) {
      case "data":
        // Taken (before a handler could throw): the thread may hand up as many again.
        if (m.batch.length > 0) this.worker.postMessage({ t: "ack", count: m.batch.length });
        if (m.overflowed > 0) handlers.overflowed(m.overflowed);
        for (const d of m.batch) handlers.receive(d.data, { host: d.host, port: d.port }, d.truncated);
        break;
      case "send-error":
        handlers.sendError(asError(m.error), m.target);
        break;
      case "socket-error":
        handlers.socketError(asError(m.error));
        break;
      case "ahead":
        handlers.ahead(m.sent, m.late);
        break;
      case "closed":
        this.worker.terminate();
        break;
    }
  }
}
