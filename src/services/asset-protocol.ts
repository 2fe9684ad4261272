/**
 * The Asset Hub calls on the peer port (`/assets`): zod schemas for every call,
 * the binary framing of chunks on the bulk lane, and `AssetClient`, the calling
 * side (used by the command line and by a node forwarding to the main).
 *
 * Calls are JSON rpc frames (rpc.ts). Chunk bytes never travel in JSON: they go
 * as bulk-lane frames (AES-256-GCM, bulk.ts), each payload
 *
 *   op (1) | tag (4, big-endian) | bytes (at most 1 MiB)
 *
 * - Upload: the uploader sends the bulk frame (op CHUNK, tag T) and then the call
 *   `asset.chunk {id, idx, tag: T}`. The connection is ordered, so the bytes are
 *   already in the server's inbox when the call arrives; the call takes them by tag.
 * - Download: the reader calls `asset.read {id, start, end, tag: T}`; the server sends
 *   the bulk frame (op DATA, tag T) and then answers `{length}`, so the bytes are in
 *   the reader's inbox when the answer arrives.
 *
 * Flow control is by request: a side never has more than its window of chunks in flight,
 * and an inbox holding more than MAX_PENDING_BULK frames means a misbehaving peer.
 */
import { z } from "zod";
import { AppError, InvalidInput } from "../core/errors.ts";
import { ASSET_CHUNK_BYTES } from "../store/asset-tables.ts";
import { SHA256_HEX } from "../store/content-hash.ts";
import { BulkRpcClient } from "./bulk-lane.ts";

export const ASSET_PATH = "/assets";
/** The exact refusal of an upload while the backup serves (docs/design.md §Failover, step 4). */
export const ASSET_READ_ONLY_MESSAGE = "The main server is down: uploads can't be accepted until it is back";
/** 4 TiB: far above any show's media, and keeps chunk indexes small. */
export const MAX_ASSET_BYTES = 4 * 1024 ** 4;
/** Chunks a side keeps in flight by default: enough to keep the pipe full at 1 MiB each. */
export const DEFAULT_ASSET_WINDOW = 8;
/** How long a forwarded commit may take: re-hashing a resumed upload of tens of gigabytes. */
export const COMMIT_TIMEOUT_MS = 10 * 60_000;
const id = z.string().regex(/^[0-9A-Za-z-]{1,64}$/, "an asset or upload id");
const tag = z.int().min(0).max(0xffff_ffff);
const byteOffset = z.int().min(0).max(MAX_ASSET_BYTES);

export const assetInfoSchema = z.object({
  id,
  name: z.string(),
  size: byteOffset,
  sha256: z.string().regex(SHA256_HEX),
  chunkCount: z.int().nonnegative(),
  created: z.number(),
});
export type AssetInfoWire = z.infer<typeof assetInfoSchema>;

/** Chunk indexes as runs [from, to) — a fresh upload of a million chunks is one run, not a million numbers. */
export const indexRunsSchema = z.array(z.tuple([z.int().nonnegative(), z.int().nonnegative()]));
export type IndexRuns = z.infer<typeof indexRunsSchema>;

export const beginParams = z.object({
  name: z.string().min(1).max(1024),
  size: byteOffset,
  /** An upload begun earlier: if it is still open (or already committed) with this name and size, it goes on. */
  resumeId: id.optional(),
});
export const beginResult = z.object({
  id,
  chunkCount: z.int().nonnegative(),
  chunkSize: z.literal(ASSET_CHUNK_BYTES),
  missing: indexRunsSchema,
  resumed: z.boolean(),
});
export type BeginResult = z.infer<typeof beginResult>;

export const chunkParams = z.object({ id, idx: z.int().nonnegative(), tag });
/** `stored`: false when the chunk was already in the cache (de-duplicated). */
export const chunkResult = z.object({ stored: z.boolean() });

/** `chunkListHash`: fileHashOfChunks of the uploader's chunk hashes, so the main checks the content without reading it back. */
export const commitParams = z.object({
  id,
  sha256: z.string().regex(SHA256_HEX, "a SHA-256 in lowercase hex"),
  chunkListHash: z.string().regex(SHA256_HEX, "a SHA-256 in lowercase hex").optional(),
});
/** `replicated` as for a push: "backup" once the backup has the manifest, "behind" when it did not answer in time, "none" without a backup. */
export const commitResult = z.object({ asset: assetInfoSchema, replicated: z.enum(["backup", "behind", "none"]) });
export type CommitResult = z.infer<typeof commitResult>;

export const abortParams = z.object({ id });
export const removeParams = z.object({ id });
/** `replicated` as for a commit: whether the backup removed it too. */
export const removeResult = z.object({ replicated: z.enum(["backup", "behind", "none"]) });
export const listParams = z.object({});
export const listResult = z.array(assetInfoSchema);
/** `asset.route`: where this node sends asset calls ("host:port" of the main), or null when it answers them itself. */
export const routeParams = z.object({});
export const routeResult = z.object({ forwardTo: z.string().max(300).nullable() });
export const statParams = z.object({ id });
export const statResult = assetInfoSchema;

/** [start, end) of one asset, at most one chunk long (it may straddle a chunk boundary). */
export const readParams = z
  .object({ id, start: byteOffset, end: byteOffset, tag })
  .refine((r) => r.start <= r.end && r.end - r.start <= ASSET_CHUNK_BYTES, `A read covers start ≤ end, at most ${ASSET_CHUNK_BYTES} bytes.`);
export const readResult = z.object({ length: z.int().min(0).max(ASSET_CHUNK_BYTES) });

/** Parses a call's params, turning a zod failure into a 400 that names the call. */
export function parseParams<T>(schema: z.ZodType<T>, params: unknown, method: string): T {
  const parsed = schema.safeParse(params ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` (${issue.path.join(".")})` : "";
  throw new InvalidInput(`"${method}" got bad parameters${where}: ${issue?.message ?? "invalid"}.`, issue?.path.join("."));
}

/** The bytes a chunk call names by tag were not on the connection before it: the sender broke the framing. */
export class ChunkBytesMissing extends AppError {
  constructor(tag: unknown) {
    super("INVALID_CHUNK", `The bytes of the chunk tagged ${String(tag)} did not arrive before its call. Nothing was stored.`, { status: 400 });
    this.name = "ChunkBytesMissing";
  }
}

/**
 * A call that names bulk bytes by `tag` (asset.chunk, files.put): the bytes are taken from the
 * inbox first, whatever else is wrong with the call, so the inbox never keeps them; then the
 * params are checked, and missing bytes refuse the call.
 */
export function takeTaggedCall<T extends { tag: number }>(
  inbox: { take(tag: unknown): Uint8Array | undefined },
  schema: z.ZodType<T>,
  params: unknown,
  method: string,
): { p: T; bytes: Uint8Array } {
  const bytes = inbox.take((params as { tag?: unknown } | null)?.tag);
  const p = parseParams(schema, params, method);
  if (!bytes) throw new ChunkBytesMissing(p.tag);
  return { p, bytes };
}

/** Runs promises with at most `limit` pending; the first failure is rethrown once nothing is left running. */
export class InFlight<T> {
  private readonly pending: Promise<T>[] = [];
  constructor(private readonly limit: number) {}

  /** Adds one; when the window is full, waits for the oldest and returns its value. */
  async add(work: Promise<T>): Promise<T | undefined> {
    work.catch(() => {}); // awaited below or in drain; never an unhandled rejection
    this.pending.push(work);
    if (this.pending.length < this.limit) return undefined;
    return this.next();
  }

  /** Waits for the oldest; on failure waits out the rest before rethrowing. */
  async next(): Promise<T> {
    const oldest = this.pending.shift()!;
    try {
      return await oldest;
    } catch (error) {
      await Promise.allSettled(this.pending.splice(0));
      throw error;
    }
  }

  get size(): number {
    return this.pending.length;
  }
}

/** The calling side of `/assets`: build it, pass `events()` to the connect call, then `attach` the connection. */
export class AssetClient extends BulkRpcClient {
  begin(params: z.input<typeof beginParams>): Promise<BeginResult> {
    return this.rpc.call("asset.begin", params, beginResult);
  }

  /** Sends chunk `idx` of upload `uploadId` on the bulk lane, then the call that stores it. */
  sendChunk(uploadId: string, idx: number, bytes: Uint8Array): Promise<{ stored: boolean }> {
    return this.sendTagged(bytes, (tag) => this.rpc.call("asset.chunk", { id: uploadId, idx, tag }, chunkResult));
  }

  /**
   * A commit without `chunkListHash` re-reads the upload on the server: allow time in proportion to `size`
   * (at 100 MB/s), or COMMIT_TIMEOUT_MS when the size is not known here (a forwarding node).
   */
  commit(uploadId: string, sha256: string, size?: number, chunkListHash?: string): Promise<CommitResult> {
    const timeoutMs = size === undefined ? COMMIT_TIMEOUT_MS : 30_000 + Math.ceil(size / 100_000);
    return this.rpc.call("asset.commit", { id: uploadId, sha256, chunkListHash }, commitResult, timeoutMs);
  }

  abort(uploadId: string): Promise<unknown> {
    return this.rpc.call("asset.abort", { id: uploadId }, z.unknown());
  }

  remove(assetId: string): Promise<z.infer<typeof removeResult>> {
    return this.rpc.call("asset.rm", { id: assetId }, removeResult);
  }

  list(): Promise<AssetInfoWire[]> {
    return this.rpc.call("asset.list", {}, listResult);
  }

  route(): Promise<z.infer<typeof routeResult>> {
    return this.rpc.call("asset.route", {}, routeResult);
  }

  stat(assetId: string): Promise<AssetInfoWire> {
    return this.rpc.call("asset.stat", { id: assetId }, statResult);
  }

  /** The bytes [start, end) of an asset, at most one chunk long. */
  read(assetId: string, start: number, end: number): Promise<Uint8Array> {
    return this.readTagged((tag) => this.rpc.call("asset.read", { id: assetId, start, end, tag }, readResult), end - start);
  }

  /**
   * Reads [start, end) in pieces that end on chunk boundaries, `windowSize` at a time, and hands
   * each piece to `sink` in order (a slow sink slows the reads: nothing piles up in memory).
   */
  async download(assetId: string, start: number, end: number, sink: (bytes: Uint8Array) => unknown, windowSize = DEFAULT_ASSET_WINDOW): Promise<void> {
    const reads = new InFlight<Uint8Array>(windowSize);
    for (let at = start; at < end; ) {
      const pieceEnd = Math.min(end, (Math.floor(at / ASSET_CHUNK_BYTES) + 1) * ASSET_CHUNK_BYTES);
      const ready = await reads.add(this.read(assetId, at, pieceEnd));
      if (ready) await sink(ready);
      at = pieceEnd;
    }
    while (reads.size > 0) await sink(await reads.next());
  }

}

/** Sorted indexes as runs [from, to). */
export function toRuns(indexes: readonly number[]): IndexRuns {
  const runs: IndexRuns = [];
  for (const idx of indexes) {
    const last = runs[runs.length - 1];
    if (last && last[1] === idx) last[1] = idx + 1;
    else runs.push([idx, idx + 1]);
  }
  return runs;
}

/** A membership test for indexes asked in ascending order (one pass over the runs in all). */
export function runsCursor(runs: IndexRuns): (idx: number) => boolean {
  let r = 0;
  return (idx) => {
    while (r < runs.length && runs[r]![1] <= idx) r++;
    return r < runs.length && runs[r]![0] <= idx;
  };
}

/** How many indexes the runs cover. */
export function runsLength(runs: IndexRuns): number {
  return runs.reduce((n, [from, to]) => n + Math.max(0, to - from), 0);
}
