/**
 * Show-file and asset replication, main → backup, on `/replicate-log`. The
 * backup says where its log stands; the main answers with a plan (in sync,
 * entries from N, or a snapshot with progress), streams what is missing and
 * then every new entry as it is written. The backup applies each entry in a
 * transaction and acknowledges its seq; a push is acknowledged to its client
 * once the backup acknowledged it, or after --sync-timeout-ms as "behind".
 * Asset chunks named by a manifest are fetched by hash before it is applied.
 */
import { z } from "zod";
import type { HostPort } from "../core/config.ts";
import type { Logger } from "../log.ts";
import { planCatchUp, type CatchUp } from "../store/replication-plan.ts";
import { replicationEntrySchema, type ReplicationEntry } from "../store/replication-entries.ts";
import type { LogPosition } from "../store/replication-log.ts";
import { backupSpaceWarning, diskUsageSchema, type DiskUsage } from "../core/storage-check.ts";
import type { ChunkBatch } from "../store/chunk-intake.ts";
import { reclaimNow } from "../store/chunk-reclaimer.ts";
import { diskUsage } from "../store/disk-usage.ts";
import type { Stores } from "../store/stores.ts";
import type { Clock, Timers } from "../core/clock.ts";
import type { PeerDialer, PeerService } from "../net/peer-net.ts";
import { PeerRefusals } from "../net/peer-refusals.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { ServerLink } from "../net/server-link.ts";
import { systemClock, systemTimers } from "../net/system-time.ts";
import { MAX_RPC_FRAME_BYTES } from "../net/rpc.ts";
import { decodeWireJson, encodeWireJson, type WireJsonLimits } from "../core/wire-json.ts";

/** Replication frames carry entries (up to a batch of blobs) as base64: the peer port's frame limit, bytes revived. */
const REPLICATION_JSON: WireJsonLimits = { maxBytes: MAX_RPC_FRAME_BYTES, bytes: true };
/** Hashes per give-back frame (65 bytes each as JSON: far below the frame limit). */
const GIVE_BACK_BATCH = 1024;

const positionSchema = z.object({
  logId: z.string(),
  firstSeq: z.int().nonnegative(),
  lastSeq: z.int().nonnegative(),
  snapshot: z.object({ logId: z.string(), throughSeq: z.int(), cursor: z.int(), totalItems: z.int(), fraction: z.number() }).nullable(),
});
const toMainSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("hello"), position: positionSchema }),
  z.object({ type: z.literal("applied"), seq: z.int().nonnegative() }),
  z.object({ type: z.literal("snapshot-page"), logId: z.string(), throughSeq: z.int(), after: z.int().nonnegative() }),
  z.object({ type: z.literal("chunks"), hashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(64) }),
  z.object({ type: z.literal("disk"), usage: diskUsageSchema }),
]);
const toBackupSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("plan"), plan: z.object({ action: z.string() }).passthrough(), lastSeq: z.int().nonnegative() }),
  z.object({ type: z.literal("entries"), entries: z.array(z.unknown()) }),
  z.object({ type: z.literal("snapshot-start"), start: z.object({ logId: z.string(), throughSeq: z.int(), totalItems: z.int() }) }),
  z.object({ type: z.literal("snapshot-page"), page: z.object({ logId: z.string(), throughSeq: z.int(), entries: z.array(z.unknown()), cursor: z.int(), done: z.boolean(), fraction: z.number() }) }),
  z.object({ type: z.literal("disk"), usage: diskUsageSchema }),
  /** Chunks the main offered for a push it then gave up (a full disk, the pusher gone): the backup drops its copy now. */
  z.object({ type: z.literal("give-back"), hashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).max(GIVE_BACK_BATCH) }),
]);

/** Chunks asked for at once: enough to keep the lane busy, few enough to bound memory (1 MiB each). */
const CHUNK_WINDOW = 16;
/** "chunks" requests the main queues per follower: the backup waits for each window before the next, so more means a misbehaving peer. */
export const MAX_QUEUED_CHUNK_REQUESTS = 4;

export type BackupSync = { state: "none" | "disconnected" | "syncing" | "in-sync" | "behind"; behindBy: number; progress: number | null };

/** The main's side: one backup follower at a time. */
export class LogReplicationSource implements PeerService {
  /** The peer-port path this service takes. */
  readonly path = "/replicate-log" as const;

  private follower: { connection: SecureConnection; sentThrough: number; live: boolean } | null = null;
  private acked = 0;
  private snapshotProgress: number | null = null;
  /** The backup's cache and disk, as it last said (it says so when it connects and every retry interval). */
  backupUsage: DiskUsage | null = null;
  private readonly waiters = new Set<{ seq: number; resolve: () => void }>();

  constructor(
    private readonly stores: Stores,
    private readonly hasBackup: () => boolean,
    private readonly log: Logger,
    private readonly timers: Timers = systemTimers,
  ) {}

  accept(connection: SecureConnection): ConnectionEvents {
    this.follower?.connection.close(1001, "Another backup connection replaced this one.");
    const me = { connection, sentThrough: 0, live: false };
    this.follower = me;
    const send = (frame: unknown) => connection.send(encodeWireJson(frame));
    let sending = Promise.resolve();
    let queued = 0;
    return {
      message: (payload) => {
        const parsed = toMainSchema.safeParse(decodeWireJson(payload, REPLICATION_JSON));
        if (!parsed.success) return connection.close(4002, "Not a replication frame.");
        const frame = parsed.data;
        try {
          if (frame.type === "hello") {
            const plan: CatchUp = planCatchUp(this.stores.log.position(), frame.position as LogPosition);
            send({ type: "plan", plan, lastSeq: this.stores.log.position().lastSeq });
            this.log.info("backup replication", { plan: plan.action, ...("behind" in plan ? { behind: plan.behind } : {}) });
            if (plan.action === "log" || plan.action === "in-sync") {
              me.sentThrough = plan.action === "log" ? plan.fromSeq : frame.position.lastSeq;
              this.acked = Math.max(this.acked, frame.position.lastSeq);
              me.live = true;
              this.snapshotProgress = null;
              this.pump();
            } else if (plan.action === "snapshot") {
              const start = this.stores.log.snapshotStart();
              this.snapshotProgress = 0;
              send({ type: "snapshot-start", start });
            }
          } else if (frame.type === "snapshot-page") {
            const page = this.stores.log.snapshotPage({ logId: frame.logId, throughSeq: frame.throughSeq, after: frame.after });
            this.snapshotProgress = page.fraction;
            send({ type: "snapshot-page", page });
          } else if (frame.type === "chunks") {
            // Chunks go on the AES-GCM bulk lane, one frame each: the raw 32-byte hash, then the bytes.
            // Read on the I/O threads, one at a time: a window of chunks read at once from a disk that
            // seeks held up heartbeats for hundreds of milliseconds (bench/RESULTS.md).
            if (++queued > MAX_QUEUED_CHUNK_REQUESTS) return connection.close(4002, `More than ${MAX_QUEUED_CHUNK_REQUESTS} chunk requests queued.`);
            sending = sending.then(() => this.sendChunks(connection, frame.hashes)).finally(() => void queued--);
          } else if (frame.type === "disk") {
            this.backupUsage = frame.usage;
            send({ type: "disk", usage: diskUsage(this.stores.log.database) });
          } else if (frame.type === "applied") {
            this.acked = Math.max(this.acked, frame.seq);
            for (const waiter of [...this.waiters]) if (waiter.seq <= this.acked) waiter.resolve();
          }
        } catch (error) {
          this.log.warn("replication request failed", { message: (error as Error).message });
          connection.close(4002, (error as Error).message.slice(0, 120));
        }
      },
      close: () => {
        if (this.follower === me) this.follower = null;
      },
    };
  }

  /** Sends the chunks asked for on the bulk lane; a chunk that cannot be read closes the connection (the backup asks again). */
  private async sendChunks(connection: SecureConnection, hashes: readonly string[]): Promise<void> {
    try {
      for (const hash of hashes) {
        const bytes = await this.stores.assets.chunkAsync(hash);
        if (!connection.open) return;
        connection.sendBulk(bytes, Buffer.from(hash, "hex"));
      }
    } catch (error) {
      this.log.warn("replication request failed", { message: (error as Error).message });
      connection.close(4002, (error as Error).message.slice(0, 120));
    }
  }

  /**
   * The asset lane: a chunk just uploaded goes to the backup at once, on the
   * bulk lane beside the log, so when the manifest entry arrives its chunks
   * are already there and small entries behind it are not held up.
   */
  offerChunk(hash: string, bytes: Uint8Array): void {
    const f = this.follower;
    if (f?.live) f.connection.sendBulk(bytes, Buffer.from(hash, "hex"));
  }

  /**
   * A push's chunks the main gave up (offered to the backup as they arrived): the backup drops
   * them at once too. Sent on the log connection behind the offers, so it never overtakes them;
   * a backup not connected now finds them unnamed and reclaims them after the grace period.
   */
  giveBack(hashes: readonly string[]): void {
    const f = this.follower;
    if (!f?.live) return;
    for (let i = 0; i < hashes.length; i += GIVE_BACK_BATCH) f.connection.send(encodeWireJson({ type: "give-back", hashes: hashes.slice(i, i + GIVE_BACK_BATCH) }));
  }

  /** Sends what the live follower has not had yet; called after every committed write. */
  pump(): void {
    const f = this.follower;
    if (!f || !f.live) return;
    for (;;) {
      const entries = this.stores.log.entriesSince(f.sentThrough);
      if (entries.length === 0) return;
      f.connection.send(encodeWireJson({ type: "entries", entries }));
      f.sentThrough = entries[entries.length - 1]!.seq;
    }
  }

  /** How the client's push is acknowledged: once the backup applied `seq`, or "behind" after `timeoutMs`. */
  async waitApplied(seq: number, timeoutMs: number): Promise<"backup" | "behind" | "none"> {
    // A follower taken in is sent every entry, paired or not: a main restarted before it recorded its side of a pairing
    // streams to the backup already following it, which must not stay behind once that pairing is recorded.
    this.pump();
    if (!this.hasBackup()) return "none";
    if (this.acked >= seq) return "backup";
    if (!this.follower?.live) return "behind";
    return await new Promise((resolve) => {
      const waiter = { seq, resolve: () => finish("backup") };
      const cancel = this.timers.after(timeoutMs, () => finish("behind"));
      const finish = (how: "backup" | "behind") => {
        cancel();
        this.waiters.delete(waiter);
        resolve(how);
      };
      this.waiters.add(waiter);
    });
  }

  status(): BackupSync {
    if (!this.hasBackup()) return { state: "none", behindBy: 0, progress: null };
    if (!this.follower) return { state: "disconnected", behindBy: this.stores.log.position().lastSeq - this.acked, progress: null };
    if (this.snapshotProgress !== null) return { state: "syncing", behindBy: 0, progress: this.snapshotProgress };
    const behindBy = Math.max(0, this.stores.log.position().lastSeq - this.acked);
    return { state: behindBy === 0 ? "in-sync" : "behind", behindBy, progress: null };
  }
}

/** The backup's side: keeps one connection to the main it follows now and applies what it sends. */
export class LogReplicationSink {
  private readonly link: ServerLink<ConnectionEvents & { hello(): void }>;
  private readonly stopTimer: () => void;
  private queue: Promise<void> = Promise.resolve();
  private chunkArrived: ((hash: string, data: Uint8Array) => void) | null = null;
  private chunksLost: (() => void) | null = null;
  /** Chunks of this connection written off the main thread, made durable before the entry that needs them. */
  private batch: ChunkBatch | null = null;
  private readonly writing = new Set<Promise<unknown>>();
  progress: number | null = null;
  /** The main's cache and disk, as it last said. */
  mainUsage: DiskUsage | null = null;
  private ticks = 0;
  private warnedSpace = false;
  private readonly ticksPerSecond: number;
  private readonly stores: Stores;
  private readonly log: Logger;

  constructor(options: {
    net: PeerDialer;
    /**
     * The main to copy from now (read every tick, so a main that moved or was
     * named only later is followed at once), or null while this backup takes
     * nothing (unpaired, or serving).
     */
    source: () => HostPort | null;
    stores: Stores;
    retryMs: number;
    log: Logger;
    clock?: Clock;
    timers?: Timers;
    /** The refusal back-off's jitter (a seeded generator in the simulator, so a seed replays exactly). */
    random?: () => number;
  }) {
    const { stores, log } = options;
    this.stores = stores;
    this.log = log;
    const timers = options.timers ?? systemTimers;
    this.ticksPerSecond = Math.max(1, Math.round(1000 / options.retryMs));
    this.link = new ServerLink({
      net: options.net,
      path: "/replicate-log",
      target: options.source,
      session: (connection) => this.session(connection),
      keep: true,
      retryMs: options.retryMs,
      timers,
      // Unreachable mains are retried quietly at the normal pace (the failover log says the main is down); refusals back off.
      refusals: new PeerRefusals(options.clock ?? systemClock, log, options.random),
      event: "show-file replication link failed",
      quietWhenUnreachable: true,
      up: (_to, session) => session.hello(),
    });
    this.stopTimer = timers.every(options.retryMs, () => this.tick());
    this.tick();
  }

  /** One retry period: follow the current main, and about once a second report the disk and make offered chunks durable. */
  tick(): void {
    const connection = this.link.connection;
    if (connection && ++this.ticks % this.ticksPerSecond === 0) {
      connection.send(encodeWireJson({ type: "disk", usage: diskUsage(this.stores.log.database) }));
      // Offered chunks no entry has named yet (an upload still going, or aborted) become indexed, so the reclaimer sees them.
      this.queue = this.queue.then(() => this.chunksDurable()).catch((error) => this.log.warn("could not make offered chunks durable", { message: (error as Error).message }));
    }
    this.link.step();
  }

  private session(connection: SecureConnection): ConnectionEvents & { hello(): void } {
    // Frames still queued when the connection closes are dropped: an entry whose chunks it would fetch
    // would wait for good on a dead connection, and every later connection's frames behind it (the next
    // hello says where this log stands, and the main sends the rest again).
    let closed = false;
    return {
      hello: () => {
        this.batch = this.stores.chunkIntake.batch();
        connection.send(encodeWireJson({ type: "hello", position: this.stores.log.position() }));
        connection.send(encodeWireJson({ type: "disk", usage: diskUsage(this.stores.log.database) }));
      },
      message: (payload) => {
        const parsed = toBackupSchema.safeParse(decodeWireJson(payload, REPLICATION_JSON));
        if (!parsed.success) return connection.close(4002, "Not a replication frame.");
        const frame = parsed.data;
        this.queue = this.queue.then(() => (closed ? undefined : this.onFrame(connection, frame))).catch((error) => {
          this.log.warn("replication apply failed", { message: (error as Error).message });
          connection.close(4002, "apply failed");
        });
      },
      // Chunks answer a request made while an entry waits in the queue: they arrive beside it, not behind it.
      bulk: (payload) => {
        if (payload.length < 32) return connection.close(4002, "A chunk frame without its hash.");
        const hash = Buffer.from(payload.subarray(0, 32)).toString("hex");
        const data = payload.subarray(32);
        if (this.chunkArrived) this.chunkArrived(hash, data);
        else this.storeOfferedChunk(hash, data);
      },
      close: () => {
        closed = true;
        this.chunkArrived = null;
        this.chunksLost?.();
        const batch = this.batch;
        this.batch = null;
        void Promise.allSettled([...this.writing]).then(() => batch?.discard());
      },
    };
  }

  private async onFrame(connection: SecureConnection, frame: Exclude<z.infer<typeof toBackupSchema>, { type: "chunks" }>): Promise<void> {
    const send = (f: unknown) => connection.send(encodeWireJson(f));
    if (frame.type === "give-back") return this.giveBack(frame.hashes);
    if (frame.type === "disk") {
      this.mainUsage = frame.usage;
      // Said once in the log when it starts (status and the Machines page show it all along).
      const warning = backupSpaceWarning(frame.usage, diskUsage(this.stores.log.database));
      if (warning && !this.warnedSpace) this.log.warn("backup disk too small", { message: warning });
      this.warnedSpace = warning !== null;
      return;
    }
    if (frame.type === "plan") {
      if (frame.plan.action === "resume-snapshot") {
        const snap = this.stores.log.snapshotProgress()!;
        send({ type: "snapshot-page", logId: snap.logId, throughSeq: snap.throughSeq, after: Number((frame.plan as Record<string, unknown>).after) });
      } else if (frame.plan.action === "ahead") {
        this.log.error("backup is ahead of the main", { reason: String((frame.plan as { reason?: string }).reason) });
      }
      return;
    }
    if (frame.type === "snapshot-start") {
      this.stores.log.beginSnapshot(frame.start);
      this.progress = 0;
      send({ type: "snapshot-page", logId: frame.start.logId, throughSeq: frame.start.throughSeq, after: 0 });
      return;
    }
    if (frame.type === "snapshot-page") {
      const entries = frame.page.entries.map((e) => replicationEntrySchema.parse(e));
      await this.fetchChunks(connection, entries);
      await this.chunksDurable();
      this.stores.log.applySnapshotPage({ ...frame.page, entries });
      this.progress = frame.page.fraction;
      if (frame.page.done) {
        this.progress = null;
        send({ type: "hello", position: this.stores.log.position() });
      } else send({ type: "snapshot-page", logId: frame.page.logId, throughSeq: frame.page.throughSeq, after: frame.page.cursor });
      return;
    }
    for (const raw of frame.entries) {
      const entry = replicationEntrySchema.parse(raw);
      await this.fetchChunks(connection, [entry]);
      await this.chunksDurable();
      this.stores.log.applyEntry(entry);
      send({ type: "applied", seq: entry.seq });
    }
  }

  /**
   * A chunk the main sent (offered ahead of its entry, or fetched), written off the main thread so
   * a gigabyte arriving never stalls this backup's heartbeats. The main hashed it and the link is
   * authenticated, so its hash is taken as sent: one hash per chunk per machine. Reads check it.
   */
  private storeOfferedChunk(hash: string, data: Uint8Array): void {
    const batch = this.batch;
    if (!batch) return;
    const writing = batch
      .put(data, hash)
      .catch((error) => this.log.warn("dropped an offered chunk", { hash, message: (error as Error).message }))
      .finally(() => this.writing.delete(writing));
    this.writing.add(writing);
  }

  /** Drops the chunks the main gave back: held ones before they are indexed, indexed ones unless an entry names them. */
  private async giveBack(hashes: readonly string[]): Promise<void> {
    await Promise.allSettled([...this.writing]);
    const held = new Set(this.batch?.forget(hashes) ?? []);
    const { chunksRemoved, bytesFreed } = reclaimNow(this.stores.log.database, hashes.filter((hash) => !held.has(hash)));
    this.log.info("gave back a failed push's chunks, as the main did", { chunks: held.size + chunksRemoved, bytesFreed });
  }

  /** Waits for the chunks on their way to disk, then makes them durable and indexed (before an entry that names them). */
  private async chunksDurable(): Promise<void> {
    await Promise.allSettled([...this.writing]);
    await this.batch?.commit();
  }

  /** Chunks are content-addressed: only those this backup lacks (stored or on their way) are fetched, a window at a time. */
  private async fetchChunks(connection: SecureConnection, entries: ReplicationEntry[]): Promise<void> {
    const missing = this.batch?.missing(this.stores.log.missingChunksFor(entries)) ?? this.stores.log.missingChunksFor(entries);
    for (let i = 0; i < missing.length; i += CHUNK_WINDOW) {
      const hashes = missing.slice(i, i + CHUNK_WINDOW);
      const waiting = new Set(hashes);
      if (!connection.open) throw new Error("The main closed the connection during a chunk transfer.");
      await new Promise<void>((resolve, reject) => {
        this.chunksLost = () => reject(new Error("The main closed the connection during a chunk transfer."));
        this.chunkArrived = (hash, data) => {
          waiting.delete(hash);
          this.storeOfferedChunk(hash, data);
          if (waiting.size === 0) resolve();
        };
        connection.send(encodeWireJson({ type: "chunks", hashes }));
      });
    }
    this.chunkArrived = null;
    this.chunksLost = null;
  }

  /** Drops the connection; the next one says where this backup's log stands again. */
  restart(): void {
    this.link.drop("Starting the copy afresh.");
  }

  stop(): void {
    this.stopTimer();
    this.link.stop();
  }
}
