/**
 * The show file on the peer port (`/files`). Every machine answers it, so the
 * command line always talks to its own node: the active main serves from its
 * store, a client (or an idle backup) forwards to the main, and while the
 * backup serves, pushes and pulls are refused with the read-only message.
 */
import { AppError } from "../core/errors.ts";
import type { HostPort } from "../core/config.ts";
import type { Stores } from "../store/stores.ts";
import type { LogReplicationSource } from "./show-file-log-replication.ts";
import { RpcClient, rpcServer, type RpcHandler } from "../net/rpc.ts";
import { connectSecure, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "../net/secure-socket.ts";
import {
  headParams,
  headResult,
  logParams,
  logResult,
  pullParams,
  pullResult,
  pushParams,
  pushResult,
  READ_ONLY_MESSAGE,
  type LogEntry,
  type PullResult,
  type PushResult,
} from "./show-file-protocol.ts";

export type FilesMode = { kind: "serve" } | { kind: "forward"; to: HostPort } | { kind: "read-only" } | { kind: "no-server" };

export class ReadOnlyWhileBackupServes extends AppError {
  constructor() {
    super("READ_ONLY", READ_ONLY_MESSAGE, { status: 409 });
  }
}

export class FilesService {
  private forwarder: { to: string; client: Promise<RpcClient> } | null = null;

  constructor(
    private readonly options: {
      mode: () => FilesMode;
      stores: Stores | null;
      replication: LogReplicationSource | null;
      syncTimeoutMs: number;
      secure: SecureSocketOptions;
    },
  ) {}

  accept(connection: SecureConnection): ConnectionEvents {
    const handlers: Record<string, RpcHandler> = {
      head: (params) => this.route("head", headParams.parse(params), () => ({ rev: this.stores().showFile.head() })),
      pull: (params) => {
        const { since } = pullParams.parse(params);
        return this.route("pull", { since }, (): PullResult => {
          const result = this.stores().showFile.pull(since);
          return { head: result.head, changes: result.changes.map((c) => ({ path: c.path, content: c.content === null ? null : Buffer.from(c.content).toString("base64") })) };
        });
      },
      log: (params) => {
        const { limit } = logParams.parse(params ?? {});
        return this.route("log", { limit }, (): LogEntry[] =>
          this.stores()
            .showFile.log(limit)
            .map((r) => ({ rev: r.rev, message: r.message, author: r.author, created: new Date(r.created).toISOString(), files: r.changes })),
        );
      },
      push: (params) => {
        const push = pushParams.parse(params);
        return this.route("push", push, async (): Promise<PushResult> => {
          const result = this.stores().showFile.push({
            base: push.base,
            message: push.message,
            author: push.author,
            changes: push.changes.map((c) => ({ path: c.path, content: c.content === null ? null : new Uint8Array(Buffer.from(c.content, "base64")) })),
          });
          const replicated = this.options.replication ? await this.options.replication.waitApplied(result.seq, this.options.syncTimeoutMs) : "none";
          return { rev: result.rev, replicated };
        });
      },
    };
    return rpcServer(connection, handlers);
  }

  private stores(): Stores {
    if (!this.options.stores) throw new AppError("NOT_A_SERVER", "This machine does not hold the show file.", { status: 404 });
    return this.options.stores;
  }

  /** Serves here, forwards to the main, or refuses, by what the network looks like right now. */
  private async route(method: string, params: unknown, serve: () => unknown): Promise<unknown> {
    const mode = this.options.mode();
    if (mode.kind === "serve") return serve();
    if (mode.kind === "read-only") throw new ReadOnlyWhileBackupServes();
    if (mode.kind === "no-server") throw new AppError("NO_SERVER", "No server answers yet: check the main server's address on the setup page.", { status: 503 });
    const schema = { head: headResult, pull: pullResult, log: logResult, push: pushResult }[method as "head"];
    const client = await this.forwardTo(mode.to);
    try {
      return await client.call(method, params, schema);
    } catch (error) {
      if (error instanceof AppError && error.code === "CONNECTION_LOST") this.forwarder = null;
      throw error;
    }
  }

  private forwardTo(to: HostPort): Promise<RpcClient> {
    const address = `${to.host}:${to.port}`;
    if (this.forwarder?.to !== address) {
      const client = new RpcClient();
      const connecting = connectSecure(address, "/files", this.options.secure, () => client.events()).then((c) => client.attach(c));
      this.forwarder = { to: address, client: connecting };
      connecting.catch(() => {
        if (this.forwarder?.client === connecting) this.forwarder = null;
      });
    }
    return this.forwarder.client;
  }

  close(): void {
    void this.forwarder?.client.then((c) => c.close(), () => {});
    this.forwarder = null;
  }
}
