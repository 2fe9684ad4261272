/**
 * The calling side of `/files` (show-file-protocol.ts): JSON calls plus chunk
 * bytes on the bulk lane. Used by the command line and by a node forwarding to
 * the main. Build it, pass `events()` to the connect call, then `attach`.
 */
import type { z } from "zod";
import { BulkRpcClient } from "./bulk-lane.ts";
import { putResult, readResult } from "./show-file-protocol.ts";

export class ShowFileClient extends BulkRpcClient {
  call<T>(method: string, params: unknown, schema: z.ZodType<T>, timeoutMs?: number): Promise<T> {
    return this.rpc.call(method, params, schema, timeoutMs);
  }

  /** Sends one chunk (at most 1 MiB) on the bulk lane, then the call that stores it. */
  putChunk(bytes: Uint8Array): Promise<z.infer<typeof putResult>> {
    return this.sendTagged(bytes, (tag) => this.rpc.call("files.put", { tag }, putResult));
  }

  /** The chunk `hash`, as the other side sent it (the caller checks the hash). */
  readChunk(hash: string): Promise<Uint8Array> {
    return this.readTagged((tag) => this.rpc.call("files.read", { hash, tag }, readResult));
  }
}
