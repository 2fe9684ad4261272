/**
 * The Asset Hub on the peer port (`/assets`). Every machine answers it, so the
 * command line always talks to its own node:
 *
 * - "serve" (the active main): uploads and reads from this machine's AssetStore;
 * - "read-only" (the backup while it serves): reads from its copy, uploads refused
 *   with READ_ONLY;
 * - "forward" (a client, an idle backup): every call and chunk is relayed to the
 *   main at `forwardTo()`, over one upstream connection per downstream connection.
 *
 * Chunks travel on the bulk lane (framing in asset-protocol.ts), never in JSON.
 */
import { AppError } from "../core/errors.ts";
import { ASSET_CHUNK_BYTES, type AssetStore } from "../store/asset-store.ts";
import {
  abortParams,
  AssetClient,
  ASSET_PATH,
  ASSET_READ_ONLY_MESSAGE,
  beginParams,
  chunkParams,
  commitParams,
  listParams,
  parseParams,
  takeTaggedCall,
  readParams,
  removeParams,
  routeParams,
  statParams,
  toRuns,
  type AssetInfoWire,
  type BeginResult,
  type CommitResult,
} from "./asset-protocol.ts";
import { BulkInbox, BulkOp, bulkHeader, bulkRpcServer } from "./bulk-lane.ts";
import { processChunkBudget, type ChunkBudget } from "./chunk-gate.ts";
import type { RpcHandler } from "../net/rpc.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import type { PeerDialer, PeerService } from "../net/peer-net.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { Upstream } from "./upstream.ts";

export type AssetMode = "serve" | "read-only" | "forward";
export type Replicated = CommitResult["replicated"];

export type AssetServiceOptions = {
  /** Asked on every call, so a failover changes what the next call does. */
  mode: () => AssetMode;
  /** This machine's cache; null on machines that keep none (clients). */
  assets: AssetStore | null;
  /** The main's peer port, for "forward"; null while none is known. */
  forwardTo: () => HostPort | null;
  /** How this machine reaches the main when forwarding. */
  net: PeerDialer;
  /** Called for each chunk stored here: the backup's copy starts before the upload ends (the asset lane). */
  onChunkStored?: (hash: string, bytes: Uint8Array) => void;
  /** Called after a commit with its log seq; says whether the backup has it (default "none"). */
  afterCommit?: (seq: number) => Promise<Replicated>;
  /** Bounds the chunk calls under way per connection and in the process (default: the process's one budget). */
  chunkBudget?: ChunkBudget;
};

/** An upload while the backup serves: the main owns the cache, and it is down. */
export class UploadsReadOnly extends AppError {
  constructor() {
    super("READ_ONLY", ASSET_READ_ONLY_MESSAGE, { status: 409 });
    this.name = "UploadsReadOnly";
  }
}

/** An upload hit a full disk on the main; its chunks were deleted to give the space back. */
export class UploadDiscardedDiskFull extends AppError {
  constructor(cause: AppError) {
    super(
      "DISK_FULL",
      `${cause.message} The upload was stopped and its part already stored was deleted to give the space back; free space on the main server, then upload again.`,
      { status: 507, cause },
    );
    this.name = "UploadDiscardedDiskFull";
  }
}

export class NoAssetCache extends AppError {
  constructor() {
    super("NO_ASSET_CACHE", "This machine holds no Asset Hub cache; ask the main server (or your own node, which forwards to it).", { status: 404 });
    this.name = "NoAssetCache";
  }
}

export class NoMainKnown extends AppError {
  constructor() {
    super("NO_SERVER", "No main server is known yet, so asset calls can't be forwarded: check the main server's address on the setup page.", { status: 503 });
    this.name = "NoMainKnown";
  }
}

const info = ({ chunks: _, ...asset }: { chunks: unknown } & AssetInfoWire): AssetInfoWire => asset;

export class AssetService implements PeerService {
  /** The peer-port path this service takes. */
  readonly path = ASSET_PATH;

  constructor(private readonly options: AssetServiceOptions) {}

  /** Handlers for one authenticated connection on `/assets`. */
  accept(connection: SecureConnection): ConnectionEvents {
    const inbox = new BulkInbox(BulkOp.chunk);
    const gate = (this.options.chunkBudget ?? processChunkBudget).gate(connection);
    const upstream = new Upstream(this.options.net, ASSET_PATH, () => new AssetClient(), () => new NoMainKnown());
    const handlers: Record<string, RpcHandler> = {
      "asset.begin": (params) => {
        const p = parseParams(beginParams, params, "asset.begin");
        return this.route(
          upstream,
          true,
          (main) => main.begin(p),
          (assets) => this.begin(assets, p.name, p.size, p.resumeId),
        );
      },
      "asset.chunk": (params) => {
        const { p, bytes } = takeTaggedCall(inbox, chunkParams, params, "asset.chunk");
        return gate.run(() =>
          this.route(
            upstream,
            true,
            (main) => main.sendChunk(p.id, p.idx, bytes),
            async (assets) => {
              let put: { hash: string; stored: boolean };
              try {
                put = await assets.putChunkAsync(p.id, p.idx, bytes);
              } catch (error) {
                // A full disk: give this upload's space back at once, so show-file pushes (and smaller uploads) go on.
                if (error instanceof AppError && error.code === "DISK_FULL" && assets.discardUpload(p.id)) throw new UploadDiscardedDiskFull(error);
                throw error;
              }
              this.options.onChunkStored?.(put.hash, bytes);
              return { stored: put.stored };
            },
          ),
        );
      },
      "asset.commit": (params) => {
        const p = parseParams(commitParams, params, "asset.commit");
        return this.route(
          upstream,
          true,
          (main) => main.commit(p.id, p.sha256, undefined, p.chunkListHash),
          async (assets): Promise<CommitResult> => {
            const { asset, seq } = await assets.commit(p.id, p.sha256, p.chunkListHash);
            return { asset, replicated: this.options.afterCommit ? await this.options.afterCommit(seq) : "none" };
          },
        );
      },
      "asset.abort": (params) => {
        const p = parseParams(abortParams, params, "asset.abort");
        return this.route(
          upstream,
          true,
          (main) => main.abort(p.id),
          (assets) => assets.abortUpload(p.id),
        );
      },
      "asset.rm": (params) => {
        const p = parseParams(removeParams, params, "asset.rm");
        return this.route(
          upstream,
          true,
          (main) => main.remove(p.id),
          async (assets) => {
            const { seq } = assets.removeAsset(p.id);
            return { replicated: this.options.afterCommit ? await this.options.afterCommit(seq) : "none" };
          },
        );
      },
      "asset.route": (params) => {
        parseParams(routeParams, params ?? {}, "asset.route");
        // An upload or download asks this, then talks to the main itself: a node that only
        // forwards would open and seal every chunk again on the way, for nothing.
        const main = this.options.mode() === "forward" ? this.options.forwardTo() : null;
        return { forwardTo: main === null ? null : formatHostPort(main) };
      },
      "asset.list": (params) => {
        parseParams(listParams, params, "asset.list");
        return this.route(
          upstream,
          false,
          (main) => main.list(),
          (assets) => assets.list(),
        );
      },
      "asset.stat": (params) => {
        const p = parseParams(statParams, params, "asset.stat");
        return this.route(
          upstream,
          false,
          (main) => main.stat(p.id),
          (assets) => info(assets.manifest(p.id)),
        );
      },
      "asset.read": async (params) => {
        const p = parseParams(readParams, params, "asset.read");
        return gate.run(async () => {
          const bytes = await this.route(
            upstream,
            false,
            (main) => main.read(p.id, p.start, p.end),
            (assets) => joinPieces([...assets.read(p.id, { start: p.start, end: p.end })], p.end - p.start),
          );
          // The bytes go first: the answer that follows tells the reader they are there.
          connection.sendBulk(bytes, bulkHeader(BulkOp.data, p.tag));
          return { length: bytes.length };
        });
      },
    };
    return bulkRpcServer(connection, handlers, inbox, () => upstream.close());
  }

  /** Serves a call here or at the main, by the mode right now; `write` calls are refused while the backup serves. */
  private async route<T>(upstream: Upstream<AssetClient>, write: boolean, forward: (main: AssetClient) => Promise<T>, serve: (assets: AssetStore) => T | Promise<T>): Promise<T> {
    const mode = this.options.mode();
    if (mode === "forward") return upstream.call(this.options.forwardTo(), forward);
    if (write && mode === "read-only") throw new UploadsReadOnly();
    if (!this.options.assets) throw new NoAssetCache();
    return serve(this.options.assets);
  }

  /** A new upload, or the one `resumeId` names if it is still open (or already committed) with this name and size. */
  private begin(assets: AssetStore, name: string, size: number, resumeId: string | undefined): BeginResult {
    if (resumeId !== undefined) {
      const resumed = resumable(assets, resumeId, name, size);
      if (resumed) return resumed;
    }
    const handle = assets.beginUpload(name, size);
    return { id: handle.id, chunkCount: handle.chunkCount, chunkSize: handle.chunkSize, missing: handle.chunkCount > 0 ? [[0, handle.chunkCount]] : [], resumed: false };
  }
}

function resumable(assets: AssetStore, id: string, name: string, size: number): BeginResult | null {
  const open = lookup(() => assets.upload(id), "UPLOAD_NOT_FOUND");
  if (open) {
    if (open.name !== name || open.size !== size) return null;
    return { id, chunkCount: open.chunkCount, chunkSize: open.chunkSize, missing: toRuns(assets.missingChunks(id)), resumed: true };
  }
  // Committed already (the uploader was cut off before it heard so): committing again returns the asset.
  const committed = lookup(() => assets.manifest(id), "ASSET_NOT_FOUND");
  if (committed && committed.name === name && committed.size === size) {
    return { id, chunkCount: committed.chunkCount, chunkSize: ASSET_CHUNK_BYTES, missing: [], resumed: true };
  }
  return null;
}

/** `find()`, or undefined when it fails with `notFound`. */
function lookup<T>(find: () => T, notFound: string): T | undefined {
  try {
    return find();
  } catch (error) {
    if (error instanceof AppError && error.code === notFound) return undefined;
    throw error;
  }
}

function joinPieces(pieces: Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
