/**
 * The show file on the peer port (`/files`). Every machine answers it, so the
 * command line always talks to its own node: the active main serves from its
 * store, a client (or an idle backup) forwards to the main, and while the
 * backup serves, pushes and pulls are refused with the read-only message.
 *
 * Chunks travel on the bulk lane (show-file-protocol.ts). On the main, each
 * connection has one ChunkBatch: chunks are written as they arrive (and offered
 * to the backup at once), made durable when the push commits, and removed if
 * the connection ends without a push that names them.
 */
import { AppError } from "../core/errors.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import type { ChunkBatch } from "../store/chunk-intake.ts";
import type { ShowFileChange } from "../store/show-file-store.ts";
import type { Stores } from "../store/stores.ts";
import { parseParams, takeTaggedCall } from "./asset-protocol.ts";
import { BulkInbox, BulkOp, bulkHeader, bulkRpcServer } from "./bulk-lane.ts";
import { processChunkBudget, type ChunkBudget } from "./chunk-gate.ts";
import type { LogReplicationSource } from "./show-file-log-replication.ts";
import type { RpcHandler } from "../net/rpc.ts";
import type { PeerDialer, PeerService } from "../net/peer-net.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { Upstream } from "./upstream.ts";
import { ShowFileClient } from "./show-file-client.ts";
import {
  headParams,
  headResult,
  logParams,
  logResult,
  missingParams,
  missingResult,
  pullParams,
  pullResult,
  pushParams,
  pushResult,
  putParams,
  readParams,
  READ_ONLY_MESSAGE,
  routeParams,
  type LogEntry,
  type PullResult,
  type PushParams,
  type PushResult,
} from "./show-file-protocol.ts";

export type FilesMode = { kind: "serve" } | { kind: "forward"; to: HostPort } | { kind: "read-only" } | { kind: "no-server" };

/** A push waits for the backup once its chunks are durable; this long per byte at most, beyond a minute. */
const PUSH_TIMEOUT_MS_PER_MB = 20;

const noServer = () => new AppError("NO_SERVER", "No server answers yet: check the main server's address on the setup page.", { status: 503 });

export class ReadOnlyWhileBackupServes extends AppError {
  constructor() {
    super("READ_ONLY", READ_ONLY_MESSAGE, { status: 409 });
  }
}

export type FilesServiceOptions = {
  mode: () => FilesMode;
  stores: Stores | null;
  /** The backup's lanes on the main: chunks offered as they arrive, pushes acknowledged once applied. */
  replication: Pick<LogReplicationSource, "offerChunk" | "waitApplied" | "giveBack"> | null;
  syncTimeoutMs: number;
  /** How this machine reaches the main when forwarding. */
  net: PeerDialer;
  /** Bounds the chunk calls under way per connection and in the process (default: the process's one budget). */
  chunkBudget?: ChunkBudget;
};

/** How long a push call may take: its chunks are made durable (and maybe replicated) before it answers. */
export function pushTimeoutMs(params: PushParams): number {
  const bytes = params.changes.reduce((n, c) => n + ("size" in c ? c.size : 0), 0);
  return 60_000 + Math.ceil((bytes / 1e6) * PUSH_TIMEOUT_MS_PER_MB);
}

export class FilesService implements PeerService {
  /** The peer-port path this service takes. */
  readonly path = "/files" as const;

  constructor(private readonly options: FilesServiceOptions) {}

  accept(connection: SecureConnection): ConnectionEvents {
    const inbox = new BulkInbox(BulkOp.chunk);
    const gate = (this.options.chunkBudget ?? processChunkBudget).gate(connection);
    // Its own connection to the main per downstream connection: the main's chunk batch lives and dies with the pusher's.
    const upstream = new Upstream(this.options.net, "/files", () => new ShowFileClient(), noServer);
    let batch: ChunkBatch | null = null;
    const chunks = (): ChunkBatch => (batch ??= this.stores().chunkIntake.batch());
    const handlers: Record<string, RpcHandler> = {
      head: (params) => {
        parseParams(headParams, params ?? {}, "head");
        return this.route(upstream, (main) => main.call("head", {}, headResult), () => ({ rev: this.stores().showFile.head() }));
      },
      "files.route": (params) => {
        parseParams(routeParams, params ?? {}, "files.route");
        // A command moving a big show file asks this, then talks to the main itself: a node that
        // only forwards would open and seal every chunk again on the way, for nothing.
        const mode = this.options.mode();
        return { forwardTo: mode.kind === "forward" ? formatHostPort(mode.to) : null };
      },
      log: (params) => {
        const { limit } = parseParams(logParams, params ?? {}, "log");
        return this.route(
          upstream,
          (main) => main.call("log", { limit }, logResult),
          (): LogEntry[] =>
            this.stores()
              .showFile.log(limit)
              .map((r) => ({ rev: r.rev, message: r.message, author: r.author, created: new Date(r.created).toISOString(), files: r.changes })),
        );
      },
      pull: (params) => {
        const { since } = parseParams(pullParams, params, "pull");
        return this.route(
          upstream,
          (main) => main.call("pull", { since }, pullResult),
          (): PullResult => {
            const result = this.stores().showFile.pull(since);
            return { head: result.head, changes: result.changes.map((c) => (c.deleted ? { path: c.path, deleted: true } : { path: c.path, size: c.size, chunks: [...c.chunks] })) };
          },
        );
      },
      "files.missing": (params) => {
        const { hashes } = parseParams(missingParams, params, "files.missing");
        return this.route(
          upstream,
          (main) => main.call("files.missing", { hashes }, missingResult),
          () => ({ missing: chunks().missing(hashes) }),
        );
      },
      "files.put": (params) => {
        const { bytes } = takeTaggedCall(inbox, putParams, params, "files.put");
        return gate.run(() =>
          this.route(
            upstream,
            (main) => main.putChunk(bytes),
            async () => {
              const mine = chunks();
              try {
                const put = await mine.put(bytes);
                if (put.stored) this.options.replication?.offerChunk(put.hash, bytes);
                return put;
              } catch (error) {
                // A full disk: give the space back now, not when the pusher hangs up (on the backup too).
                this.options.replication?.giveBack(mine.discard());
                throw error;
              }
            },
          ),
        );
      },
      "files.read": (params) => {
        const p = parseParams(readParams, params, "files.read");
        return gate.run(async () => {
          const bytes = await this.route(
            upstream,
            (main) => main.readChunk(p.hash),
            () => this.stores().assets.chunkAsync(p.hash),
          );
          // The bytes go first: the answer that follows tells the reader they are there.
          connection.sendBulk(bytes, bulkHeader(BulkOp.data, p.tag));
          return { length: bytes.length };
        });
      },
      push: (params) => {
        const push = parseParams(pushParams, params, "push");
        return this.route(
          upstream,
          (main) => main.call("push", push, pushResult, pushTimeoutMs(push)),
          async (): Promise<PushResult> => {
            const mine = chunks();
            await mine.commit();
            const result = this.stores().showFile.push({
              base: push.base,
              message: push.message,
              author: push.author,
              ...(push.pushId === undefined ? {} : { pushId: push.pushId }),
              changes: push.changes.map((c): ShowFileChange => ("deleted" in c ? { path: c.path, content: null } : { path: c.path, size: c.size, chunks: c.chunks })),
            });
            const replicated = this.options.replication ? await this.options.replication.waitApplied(result.seq, this.options.syncTimeoutMs) : "none";
            return { rev: result.rev, replicated, unchanged: result.unchanged };
          },
        );
      },
    };
    return bulkRpcServer(connection, handlers, inbox, () => {
      upstream.close();
      if (batch) this.options.replication?.giveBack(batch.discard());
    });
  }

  private stores(): Stores {
    if (!this.options.stores) throw new AppError("NOT_A_SERVER", "This machine does not hold the show file.", { status: 404 });
    return this.options.stores;
  }

  /** Serves here, forwards to the main, or refuses, by what the network looks like right now. */
  private async route<T>(upstream: Upstream<ShowFileClient>, forward: (main: ShowFileClient) => Promise<T>, serve: () => T | Promise<T>): Promise<T> {
    const mode = this.options.mode();
    if (mode.kind === "serve") return serve();
    if (mode.kind === "read-only") throw new ReadOnlyWhileBackupServes();
    if (mode.kind === "no-server") throw noServer();
    return upstream.call(mode.to, forward);
  }

  /** Nothing to close here: each connection to the main closes with the connection it forwards for. */
  close(): void {}
}
