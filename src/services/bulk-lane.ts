/**
 * The bulk lane of a peer connection (asset chunks and show-file chunks): a
 * 5-byte header (op, tag) before up to one chunk of bytes, an inbox that
 * holds frames until the call naming their tag arrives, and the calling side
 * shared by the asset and show-file clients (JSON calls plus tagged bulk
 * frames). A frame with a bad header, a tag used twice, or more than
 * MAX_PENDING_BULK frames waiting means a misbehaving peer: the connection closes.
 */
import { AppError } from "../core/errors.ts";
import { RpcClient, rpcServer, type RpcHandler } from "../net/rpc.ts";
import { CLOSE_BAD_FRAME, type ConnectionEvents, type SecureConnection } from "../net/secure-socket.ts";
import { ASSET_CHUNK_BYTES } from "../store/asset-tables.ts";

/**
 * Bulk frames an inbox holds before the peer is considered misbehaving. Each frame's call (or
 * answer) follows it at once on the ordered connection and takes it, so a well-behaved peer has
 * one waiting at most, even 5,000 calls deep (chunk-gate.test.ts); each may be 1 MiB, held until
 * the connection closes if no call comes.
 */
export const MAX_PENDING_BULK = 4;

export const BulkOp = { chunk: 0x01, data: 0x02 } as const;
export type BulkOp = (typeof BulkOp)[keyof typeof BulkOp];
export const BULK_HEADER_BYTES = 5;

/** A bulk payload's header; `sendBulk(bytes, bulkHeader(op, tag))` seals it before the bytes without copying them. */
export function bulkHeader(op: BulkOp, tagValue: number): Uint8Array {
  const out = Buffer.alloc(BULK_HEADER_BYTES);
  out[0] = op;
  out.writeUInt32BE(tagValue, 1);
  return out;
}

/** A bulk payload: header, then the bytes, in one array (for tests and tools; senders use `bulkHeader`). */
export function encodeBulk(op: BulkOp, tagValue: number, bytes: Uint8Array): Uint8Array {
  return Buffer.concat([bulkHeader(op, tagValue), bytes]);
}

export function decodeBulk(payload: Uint8Array): { op: number; tag: number; bytes: Uint8Array } | null {
  if (payload.length < BULK_HEADER_BYTES || payload.length > BULK_HEADER_BYTES + ASSET_CHUNK_BYTES) return null;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { op: payload[0]!, tag: view.getUint32(1), bytes: payload.subarray(BULK_HEADER_BYTES) };
}

/** Bulk frames of one connection waiting for the call (or answer) that names their tag. */
export class BulkInbox {
  private readonly frames = new Map<number, Uint8Array>();
  constructor(private readonly op: BulkOp) {}

  /** Files one payload; a reason when the peer broke the framing (the caller closes the connection). */
  put(payload: Uint8Array): string | null {
    const frame = decodeBulk(payload);
    if (!frame || frame.op !== this.op) return "An asset chunk frame has a bad header.";
    if (this.frames.has(frame.tag)) return `Two asset chunk frames carry tag ${frame.tag}.`;
    if (this.frames.size >= MAX_PENDING_BULK) return `More than ${MAX_PENDING_BULK} asset chunks arrived without their calls.`;
    this.frames.set(frame.tag, frame.bytes);
    return null;
  }

  /** The bytes filed under `tag`, removed from the inbox. */
  take(tagValue: unknown): Uint8Array | undefined {
    if (typeof tagValue !== "number") return undefined;
    const bytes = this.frames.get(tagValue);
    this.frames.delete(tagValue);
    return bytes;
  }

  get size(): number {
    return this.frames.size;
  }
}

/**
 * The serving side of a service with a bulk lane: JSON calls to `handlers`,
 * bulk frames into `inbox`; a frame that breaks the framing closes the connection.
 */
export function bulkRpcServer(connection: SecureConnection, handlers: Record<string, RpcHandler>, inbox: BulkInbox, onClose: () => void): ConnectionEvents {
  const rpc = rpcServer(connection, handlers, onClose);
  return {
    message: rpc.message,
    bulk: (payload) => {
      const problem = inbox.put(payload);
      if (problem) connection.close(CLOSE_BAD_FRAME, problem);
    },
    close: rpc.close,
  };
}

/**
 * The calling side of a service with a bulk lane: build it, pass `events()` to
 * the connect call, then `attach` the connection. Subclasses name the calls.
 */
export class BulkRpcClient {
  protected readonly rpc = new RpcClient();
  private readonly inbox = new BulkInbox(BulkOp.data);
  protected connection: SecureConnection | null = null;
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

  close(): void {
    this.rpc.close();
  }

  /** Sends `bytes` on the bulk lane under a fresh tag, then the call (made by `call`) that names it. */
  protected sendTagged<T>(bytes: Uint8Array, call: (tag: number) => Promise<T>): Promise<T> {
    const tag = this.takeTag();
    this.connection?.sendBulk(bytes, bulkHeader(BulkOp.chunk, tag));
    return call(tag);
  }

  /** Makes the call (naming a fresh tag) whose answer says how many bytes came on the bulk lane under it; returns them. */
  protected async readTagged(call: (tag: number) => Promise<{ length: number }>, expected?: number): Promise<Uint8Array> {
    const tag = this.takeTag();
    try {
      const { length } = await call(tag);
      const bytes = this.inbox.take(tag);
      if (!bytes || bytes.length !== length || (expected !== undefined && length !== expected)) {
        const who = this.connection?.peer.address ?? "The node";
        throw new AppError("CONNECTION_LOST", `${who} answered a read without its bytes; the connection is out of step. Try again.`, { status: 502 });
      }
      return bytes;
    } finally {
      this.inbox.take(tag);
    }
  }

  private takeTag(): number {
    const t = this.nextTag;
    this.nextTag = (this.nextTag + 1) % 0x1_0000_0000;
    return t;
  }
}
