/**
 * SHA-256 of chunks on a worker thread, so the main's event loop (which also carries heartbeats
 * and the Data Hub) is not held ≈ 0.7 ms per MiB while a pushed or served chunk is checked
 * (docs/design.md §Lanes and replication). The answer is awaited before the chunk is stored or
 * served, as before: only the thread that computes it changes. node:crypto's hash and WebCrypto's
 * digest both run on the calling thread in Bun (measured), hence a Worker.
 *
 * The worker's source is inline (a Blob URL) so the compiled executable needs no second entry
 * point. Each chunk is copied into a buffer transferred to the worker (≈ 0.15 ms per MiB): the
 * caller keeps its bytes. If the worker fails, what it held is hashed here and the next chunk
 * starts a new one: a worker never loses or fails a chunk.
 */
import { sha256Hex } from "./content-hash.ts";

/** Below this a chunk is hashed at once: a round trip to the worker costs more than the hash. */
export const OFF_THREAD_MIN_BYTES = 64 * 1024;

const HASH_WORKER_SOURCE = `
const { createHash } = require("node:crypto");
self.onmessage = (event) => {
  const { id, bytes } = event.data;
  postMessage({ id, hash: createHash("sha256").update(bytes).digest("hex") });
};
`;

type Pending = { bytes: Uint8Array; resolve: (hash: string) => void };
/** Bun's Worker can be left out of what keeps the process alive (the DOM's type does not say so). */
type HashWorker = Worker & { ref(): void; unref(): void };

export class ChunkHasher {
  private worker: HashWorker | null = null;
  private url: string | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  /** `source`: the worker's code (tests give a broken one). */
  constructor(private readonly source: string = HASH_WORKER_SOURCE) {}

  /**
   * SHA-256 of `bytes` in lowercase hex, computed off the calling thread when it is big enough.
   * Answers come in the order asked (a small chunk behind a big one waits its turn), as when
   * every chunk was hashed on arrival.
   */
  sha256Hex(bytes: Uint8Array): Promise<string> {
    if (bytes.length < OFF_THREAD_MIN_BYTES && this.pending.size === 0) return Promise.resolve(sha256Hex(bytes));
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    // A copy of its own (Buffer's slice would share the caller's memory, and transferring it would take it away).
    const copy = new Uint8Array(bytes);
    // Referenced only while it holds chunks: an idle hasher must not keep a finished command alive.
    if (this.pending.size === 0) worker.ref();
    return new Promise((resolve) => {
      this.pending.set(id, { bytes, resolve });
      worker.postMessage({ id, bytes: copy }, [copy.buffer]);
    });
  }

  /** Stops the worker; chunks it still held are hashed here. */
  close(): void {
    this.fail();
  }

  private start(): HashWorker {
    // Kept for the hasher's life: a worker restarted after a failure loads it again.
    this.url ??= URL.createObjectURL(new Blob([this.source], { type: "application/javascript" }));
    const worker = new Worker(this.url) as HashWorker;
    worker.unref();
    worker.onmessage = (event: MessageEvent<{ id: number; hash: unknown }>) => {
      const { id, hash } = event.data;
      const entry = this.pending.get(id);
      if (!entry) return;
      this.pending.delete(id);
      if (this.pending.size === 0) worker.unref();
      entry.resolve(typeof hash === "string" ? hash : sha256Hex(entry.bytes));
    };
    worker.onerror = () => this.fail();
    this.worker = worker;
    return worker;
  }

  private fail(): void {
    this.worker?.terminate();
    this.worker = null;
    const held = [...this.pending.values()];
    this.pending.clear();
    for (const entry of held) entry.resolve(sha256Hex(entry.bytes));
  }
}

/** The process's hasher: one worker for every store and lane. */
export const chunkHasher = new ChunkHasher();
