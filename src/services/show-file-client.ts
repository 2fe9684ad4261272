/**
 * The calling side of `/files` (show-file-protocol.ts): JSON calls plus chunk
 * bytes on the bulk lane. Used by the command line and by a node forwarding to
 * the main. Build it, pass `events()` to the connect call, then `attach`.
 */
import type { z } from "zod";
import { AppError } from "../core/errors.ts";
import { BulkInbox, BulkOp, bulkHeader } from "../services/asset-protocol.ts";
import { RpcClient } from "../net/rpc.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { putResult, readResult } from "../services/show-file-protocol.ts";

export class ShowFileClient {
  private readonly rpc = new RpcClient();
  private readonly inbox = new BulkInbox(BulkOp.data);
  private connection: SecureConnection | null = null;
  private nextTag = 0;

  /** A data frame with a bad header, or one nobody asked for piling up, closes the connection. */
  events(): ConnectionEvents {
    const rpcEvents = this.rpc.events();
    return {
      message: rpcEvents.message,
      bulk: (payload) => {
        const problem = this.inbox.put(payload);
        if (problem) this.connection?.close(4002, problem);
      },
      close: rpcEvents.close,
    };
  }

  attach(connection: SecureConnection): this {
    this.connection = connection;
    this.rpc.attach(connection);
    return this;
  }

  get open(): boolean {
    return this.connection?.open ?? false;
  }

  call<T>(method: string, params: unknown, schema: z.ZodType<T>, timeoutMs?: number): Promise<T> {
    return this.rpc.call(method, params, schema, timeoutMs);
  }

  /** Sends one chunk (at most 1 MiB) on the bulk lane, then the call that stores it. */
  putChunk(bytes: Uint8Array): Promise<z.infer<typeof putResult>> {
    const t = this.takeTag();
    this.connection?.sendBulk(bytes, bulkHeader(BulkOp.chunk, t));
    return this.rpc.call("files.put", { tag: t }, putResult);
  }

  /** The chunk `hash`, as the other side sent it (the caller checks the hash). */
  async readChunk(hash: string): Promise<Uint8Array> {
    const t = this.takeTag();
    try {
      const { length } = await this.rpc.call("files.read", { hash, tag: t }, readResult);
      const bytes = this.inbox.take(t);
      if (!bytes || bytes.length !== length) {
        throw new AppError("CONNECTION_LOST", `${this.connection?.peer.address ?? "The node"} answered a read without its bytes; the connection is out of step. Try again.`, { status: 502 });
      }
      return bytes;
    } finally {
      this.inbox.take(t);
    }
  }

  close(): void {
    this.rpc.close();
  }

  private takeTag(): number {
    const t = this.nextTag;
    this.nextTag = (this.nextTag + 1) % 0x1_0000_0000;
    return t;
  }
}
