/**
 * UDP peers on threads of their own, for tests that hold the test's event loop on purpose (a busy
 * loop standing in for a 1 GiB copy or a GC pause) and need to know what happened on the wire
 * meanwhile: a recorder that notes when each datagram arrived, and a flooder that sends while the
 * test's thread is held. Times are `performance.timeOrigin + performance.now()`, on which threads
 * agree (to ≈ 0.3 ms). Network rule: loopback only.
 */
import type { HostPort } from "../../src/core/config.ts";

type TestWorker = Worker & { unref(): void };

function startWorker(source: string): TestWorker {
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "application/javascript" }))) as TestWorker;
  // A test that fails half-way must not be kept alive by its helpers.
  worker.unref();
  return worker;
}

function reply<T>(worker: Worker, message: unknown): Promise<T> {
  return new Promise((resolve) => {
    worker.addEventListener("message", (event) => resolve((event as MessageEvent<T>).data), { once: true });
    worker.postMessage(message);
  });
}

const RECORDER_SOURCE = `
const arrivals = [];
let socket;
self.onmessage = async (event) => {
  if (event.data === "arrivals") return postMessage(arrivals);
  socket = await Bun.udpSocket({
    hostname: event.data.host,
    port: 0,
    binaryType: "uint8array",
    socket: { data: (_s, data) => arrivals.push({ at: performance.timeOrigin + performance.now(), data }), error: () => {} },
  });
  postMessage(socket.port);
};
`;

export type Arrival = { at: number; data: Uint8Array };

/** A UDP socket on another thread that notes every datagram's arrival time. */
export async function startArrivalRecorder(host = "127.0.0.1") {
  const worker = startWorker(RECORDER_SOURCE);
  const port = await reply<number>(worker, { host });
  return {
    endpoint: { host, port } as HostPort,
    /** What arrived so far, in order. */
    arrivals: () => reply<Arrival[]>(worker, "arrivals"),
    close: () => worker.terminate(),
  };
}

const FLOODER_SOURCE = `
self.onmessage = async (event) => {
  const { target, count, done } = event.data;
  const socket = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { error: () => {} } });
  const garbage = new Uint8Array(64).fill(7);
  for (let i = 0; i < count; i++) {
    socket.send(garbage, target.port, target.host);
    // A breath now and then, so the receiving thread keeps up and the kernel's buffer drops little.
    if (i % 64 === 63) await new Promise((resolve) => setImmediate(resolve));
  }
  socket.close();
  Atomics.store(done, 0, 1);
};
`;

/**
 * Sends `count` garbage datagrams to `target` from another thread, and returns a flag that turns
 * true once all are sent: a test can hold its own thread until then.
 */
export function flood(target: HostPort, count: number): { sent: () => boolean; close: () => void } {
  const worker = startWorker(FLOODER_SOURCE);
  const done = new Int32Array(new SharedArrayBuffer(4));
  worker.postMessage({ target, count, done });
  return { sent: () => Atomics.load(done, 0) === 1, close: () => worker.terminate() };
}
