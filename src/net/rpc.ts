/**
 * Request/response over one authenticated connection, for the show file and
 * the asset hub on the peer port. Every request and answer is a zod-checked
 * JSON frame; a handler's AppError travels back with its code and message, so
 * the command line shows the same words the server logged.
 */
import { z } from "zod";
import type { Timers } from "../core/clock.ts";
import { AppError } from "../core/errors.ts";
import { systemTimers } from "./system-time.ts";
import type { ConnectionEvents, SecureConnection } from "./secure-socket.ts";
import { decodeWireJson, readWireJson } from "../core/wire-json.ts";

export const MAX_RPC_FRAME_BYTES = 16 * 1024 * 1024;

const requestSchema = z.object({ id: z.int().positive(), method: z.string().min(1).max(64), params: z.unknown() });
const answerSchema = z.union([
  z.object({ id: z.int().positive(), result: z.unknown() }),
  z.object({ id: z.int().positive(), error: z.object({ code: z.string().max(64), message: z.string().max(4096), status: z.int() }) }),
]);

/** A remote failure, with the code and message the other side gave. */
export class RemoteError extends AppError {
  constructor(code: string, message: string, status: number) {
    super(code, message, { status });
    this.name = "RemoteError";
  }
}

export type RpcHandler = (params: unknown) => unknown | Promise<unknown>;

const text = new TextEncoder();

function parseFrame(payload: Uint8Array): unknown {
  return decodeWireJson(payload, { maxBytes: MAX_RPC_FRAME_BYTES });
}

/** Server side: answers requests with `handlers`; an unknown method or bad frame gets a clear error. */
export function rpcServer(connection: SecureConnection, handlers: Record<string, RpcHandler>, onClose: () => void = () => {}): ConnectionEvents {
  const answer = (id: number, body: { result: unknown } | { error: { code: string; message: string; status: number } }) =>
    connection.send(text.encode(JSON.stringify({ id, ...body })));
  return {
    message: (payload) => {
      const request = requestSchema.safeParse(parseFrame(payload));
      if (!request.success) {
        connection.close(4002, "Not an understudy request.");
        return;
      }
      const { id, method, params } = request.data;
      const handler = handlers[method];
      if (!handler) {
        answer(id, { error: { code: "UNKNOWN_METHOD", message: `This machine does not offer "${method}".`, status: 404 } });
        return;
      }
      Promise.resolve()
        .then(() => handler(params))
        .then(
          (result) => answer(id, { result: result ?? null }),
          (error) => {
            const e = error instanceof AppError ? error : new AppError("INTERNAL", `Something went wrong on ${connection.peer.address}'s side; its log has the details.`, { status: 500 });
            if (!(error instanceof AppError)) console.error(error);
            answer(id, { error: { code: e.code, message: e.message, status: e.status } });
          },
        );
    },
    close: onClose,
  };
}

/** Client side: `call` sends a request and resolves with the result, or rejects with the remote error. */
export class RpcClient {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; cancel: () => void }>();

  private connection: SecureConnection | null = null;
  private closedReason: string | null = null;

  constructor(private readonly timers: Timers = systemTimers) {}

  /** The events to pass to connectSecure; then `attach` the connection it resolves with. */
  events(): ConnectionEvents {
    return {
      message: (payload) => {
        let frame: unknown;
        try {
          frame = readWireJson(payload, { maxBytes: MAX_RPC_FRAME_BYTES });
        } catch (error) {
          // An answer too big (or not JSON) cannot be matched to its call: end them all now, saying why, rather than let each wait out its deadline.
          this.fail(`${this.connection?.peer.address ?? "The other side"} sent an answer this machine cannot read: ${(error as Error).message}`);
          return;
        }
        const answer = answerSchema.safeParse(frame);
        if (!answer.success) return;
        const pending = this.waiting.get(answer.data.id);
        if (!pending) return;
        this.waiting.delete(answer.data.id);
        pending.cancel();
        if ("error" in answer.data) pending.reject(new RemoteError(answer.data.error.code, answer.data.error.message, answer.data.error.status));
        else pending.resolve(answer.data.result);
      },
      close: (reason) => this.rejectAll(reason),
    };
  }

  /** Closes the connection for `reason` and fails every call waiting on it. */
  private fail(reason: string): void {
    this.rejectAll(reason);
    this.connection?.close(4002, reason.slice(0, 120));
  }

  private rejectAll(reason: string): void {
    this.closedReason ??= reason;
    for (const [id, pending] of this.waiting) {
      pending.cancel();
      pending.reject(new AppError("CONNECTION_LOST", `The connection closed before the answer came (${reason}).`, { status: 503 }));
      this.waiting.delete(id);
    }
  }

  attach(connection: SecureConnection): this {
    this.connection = connection;
    return this;
  }

  /** Whether a call now would be sent: attached, not closed, and its socket open (a close begun here ends it at once). */
  get open(): boolean {
    return this.connection !== null && this.closedReason === null && this.connection.open;
  }

  call<T>(method: string, params: unknown, schema: z.ZodType<T>, timeoutMs = 30_000): Promise<T> {
    const connection = this.connection;
    if (!connection || !this.open) {
      return Promise.reject(new AppError("CONNECTION_LOST", `Not connected${this.closedReason ? ` (${this.closedReason})` : ""}.`, { status: 503 }));
    }
    const id = ++this.nextId;
    return new Promise<unknown>((resolve, reject) => {
      const cancel = this.timers.after(timeoutMs, () => {
        this.waiting.delete(id);
        reject(new AppError("TIMEOUT", `${connection.peer.address} did not answer "${method}" within ${timeoutMs / 1000} s.`, { status: 504 }));
      });
      this.waiting.set(id, { resolve, reject, cancel });
      connection.send(text.encode(JSON.stringify({ id, method, params })));
    }).then((result) => {
      const parsed = schema.safeParse(result);
      if (!parsed.success) throw new AppError("BAD_ANSWER", `${connection.peer.address} answered "${method}" in a shape this version does not understand.`, { status: 502 });
      return parsed.data;
    });
  }

  close(): void {
    this.connection?.close(1000, "done");
  }
}
