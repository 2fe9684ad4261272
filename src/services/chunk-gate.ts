/**
 * How much chunk work one peer connection, and this whole process, may have under way. A chunk
 * call (asset.chunk, asset.read, files.put, files.read) holds up to 1 MiB from the moment it is
 * accepted until it is answered: hashed on a worker, written on the I/O threads, or relayed to the
 * main. A key holder that pipelines thousands of them without waiting for answers must be slowed,
 * not fed, or the main's memory grows until it dies on air.
 *
 * As Kafka's broker mutes a connection whose requests are queued, and stops reading sockets once
 * its request memory pool is used up, a connection stops being read (TCP backpressure on the
 * sender) when it reaches its bound, or when the process reaches its own; it is read again once
 * the work drains. Frames Bun had read before the pause are still delivered: a chunk call among
 * them beyond the connection's bound is refused (ChunkCallsOverLimit), so nothing past the bound
 * is held; nothing refused was stored or acknowledged. The process bound only pauses (it never
 * refuses), so a well-behaved client sharing a busy main is slowed, never failed.
 * docs/design.md §Security.
 */
import { AppError } from "../core/errors.ts";

/** The calls the real clients keep in flight at most (show push and pull: 16; asset upload and download: 8). */
export const LARGEST_CLIENT_WINDOW = 16;

export type ChunkLimits = {
  /** Chunk calls one connection may have accepted and unanswered: the connection pauses there, and one more is refused. */
  perConnection: number;
  /** Chunk calls the whole process may have under way before connections adding more pause. */
  perProcess: number;
};

/** Twice the largest client window per connection; 256 MiB of chunks in the whole process before its connections pause. */
export const DEFAULT_CHUNK_LIMITS: ChunkLimits = { perConnection: 2 * LARGEST_CLIENT_WINDOW, perProcess: 256 };

/** What a gate needs of its connection: Bun's ServerWebSocket pause/resume, where the transport has them. */
export type PausableReading = { pauseReading?(): void; resumeReading?(): void; readonly open: boolean };

/** A peer pipelined more chunk calls than a connection may have under way: this one was refused, nothing stored. */
export class ChunkCallsOverLimit extends AppError {
  constructor(limit: number) {
    super(
      "TOO_MANY_CHUNK_CALLS",
      `More than ${limit} chunk calls are under way on this connection, so this one was refused and nothing was stored. ` +
        `Wait for answers before sending more chunks (understudy's own commands keep at most ${LARGEST_CLIENT_WINDOW} in flight).`,
      { status: 429 },
    );
    this.name = "ChunkCallsOverLimit";
  }
}

/** The process-wide count of chunk work, shared by every connection's gate. */
export class ChunkBudget {
  private used = 0;
  private highest = 0;
  /** Gates paused because the process was at its bound: read again once it drops below. */
  private readonly waiting = new Set<ChunkGate>();

  constructor(readonly limits: ChunkLimits = DEFAULT_CHUNK_LIMITS) {}

  /** Chunk calls under way now, over every connection. */
  get inFlight(): number {
    return this.used;
  }

  /** The most ever under way at once (for tests and /metrics-style checks). */
  get peak(): number {
    return this.highest;
  }

  get full(): boolean {
    return this.used >= this.limits.perProcess;
  }

  /** The gate of one connection. */
  gate(connection: PausableReading): ChunkGate {
    return new ChunkGate(this, connection);
  }

  /** @internal A gate took one. */
  take(): void {
    this.used++;
    this.highest = Math.max(this.highest, this.used);
  }

  /** @internal A gate's call was answered; below the bound, the connections paused for it are read again. */
  give(): void {
    this.used--;
    if (this.full || this.waiting.size === 0) return;
    const paused = [...this.waiting];
    this.waiting.clear();
    for (const gate of paused) gate.mayResume();
  }

  /** @internal `gate` paused because the process is full. */
  wait(gate: ChunkGate): void {
    this.waiting.add(gate);
  }
}

/** One connection's chunk work: `run` each chunk call through it. */
export class ChunkGate {
  private count = 0;
  private paused = false;

  constructor(
    private readonly budget: ChunkBudget,
    private readonly connection: PausableReading,
  ) {}

  /** Chunk calls of this connection accepted and not yet answered. */
  get inFlight(): number {
    return this.count;
  }

  /** Runs one chunk call's work, or refuses it when the connection has its bound under way already. */
  async run<T>(work: () => T | Promise<T>): Promise<T> {
    const limit = this.budget.limits.perConnection;
    if (this.count >= limit) throw new ChunkCallsOverLimit(limit);
    this.count++;
    this.budget.take();
    if (this.count >= limit) this.pause();
    else if (this.budget.full) {
      this.pause();
      this.budget.wait(this);
    }
    try {
      return await work();
    } finally {
      this.count--;
      this.budget.give();
      this.mayResume();
    }
  }

  /** @internal Reads the connection again when neither its own bound nor the process's holds it. */
  mayResume(): void {
    if (!this.paused || this.count >= this.budget.limits.perConnection) return;
    if (this.budget.full) {
      this.budget.wait(this);
      return;
    }
    this.paused = false;
    if (this.connection.open) this.connection.resumeReading?.();
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.connection.pauseReading?.();
  }
}

/** The one budget of this process: the asset and show-file services share it unless a test gives them their own. */
export const processChunkBudget = new ChunkBudget();
