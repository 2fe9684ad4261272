/**
 * What travels main → backup: one entry per show-file revision or asset
 * manifest. An entry is built from the data tables (the log row only names the
 * data), so the log and the data can't disagree, and a snapshot is the same
 * entries rebuilt for every item still stored.
 *
 * Both kinds carry chunk hashes only: a revision entry lists each new blob's
 * chunks, a manifest its asset's. Chunks travel in their own lane, and an entry
 * is applied only once all the chunks it names are here.
 */
import { z } from "zod";
import { showPathProblem } from "../core/show-paths.ts";
import { ASSET_CHUNK_BYTES, type AssetManifest, type AssetTables, chunkCountFor } from "./asset-tables.ts";
import { SHA256_HEX, fileHashOfChunks } from "./content-hash.ts";
import { MAX_AUTHOR_CHARS, MAX_PUSH_ID_CHARS, MAX_PUSH_MESSAGE_CHARS, type BlobRecord, type ShowFileTables } from "./show-file-tables.ts";
import { ChunksMissing, InvalidReplicationEntry } from "./store-errors.ts";

export const SHOW_REVISION = "show.revision";
export const ASSET_MANIFEST = "asset.manifest";
/** `understudy asset rm`: the manifest goes; its chunks are reclaimed once nothing names them. */
export const ASSET_REMOVED = "asset.removed";

const hash = z.string().regex(SHA256_HEX);
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const seq = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

const revisionEntrySchema = z.object({
  seq,
  kind: z.literal(SHOW_REVISION),
  revision: z.object({
    rev: count.min(1),
    parent: count,
    base: count,
    message: z.string().max(MAX_PUSH_MESSAGE_CHARS),
    author: z.string().max(MAX_AUTHOR_CHARS),
    created: z.number().int(),
    pushId: z.string().max(MAX_PUSH_ID_CHARS).nullable(),
  }),
  files: z.array(z.object({ path: z.string(), hash: hash.nullable(), size: count, deleted: z.boolean() })).min(1),
  /** The blobs this revision adds, as chunk lists; chunks are fetched by hash before it is applied. */
  blobs: z.array(z.object({ hash, size: count, chunks: z.array(hash) })),
});

const manifestEntrySchema = z.object({
  seq,
  kind: z.literal(ASSET_MANIFEST),
  asset: z.object({
    id: z.string().min(1).max(128),
    name: z.string().max(1024),
    size: count,
    sha256: hash,
    chunkCount: count,
    created: z.number().int(),
    chunks: z.array(hash),
  }),
});

const removalEntrySchema = z.object({ seq, kind: z.literal(ASSET_REMOVED), assetId: z.string().min(1).max(128), created: z.number().int() });

/** Parse entries from the wire with this before applying them (applyEntry does too). */
export const replicationEntrySchema = z.discriminatedUnion("kind", [revisionEntrySchema, manifestEntrySchema, removalEntrySchema]);
export type ReplicationEntry = z.infer<typeof replicationEntrySchema>;
export type RevisionEntry = z.infer<typeof revisionEntrySchema>;
export type ManifestEntry = z.infer<typeof manifestEntrySchema>;
export type RemovalEntry = z.infer<typeof removalEntrySchema>;

/** The log row's payload: it names the data, never copies it. */
export function logPayload(entry: ReplicationEntry): string {
  if (entry.kind === SHOW_REVISION) return JSON.stringify({ rev: entry.revision.rev });
  return JSON.stringify({ assetId: entry.kind === ASSET_MANIFEST ? entry.asset.id : entry.assetId });
}

export function entryCreated(entry: ReplicationEntry): number {
  if (entry.kind === SHOW_REVISION) return entry.revision.created;
  return entry.kind === ASSET_MANIFEST ? entry.asset.created : entry.created;
}

/** Roughly how many bytes an entry puts on the wire, for paging. */
export function entryBytes(entry: ReplicationEntry): number {
  if (entry.kind === ASSET_MANIFEST) return 256 + entry.asset.chunks.length * 65;
  if (entry.kind === ASSET_REMOVED) return 256;
  return 256 + entry.files.reduce((n, f) => n + f.path.length + 100, 0) + entry.blobs.reduce((n, b) => n + 100 + b.chunks.length * 65, 0);
}

/** The chunks `entries` need that are not stored here (asset manifests and show-file blobs), each once. */
export function chunksNeeded(assets: AssetTables, entries: readonly ReplicationEntry[]): string[] {
  return assets.missingChunks(entries.flatMap((e) => (e.kind === ASSET_MANIFEST ? e.asset.chunks : e.kind === SHOW_REVISION ? e.blobs.flatMap((b) => b.chunks) : [])));
}

/** Rebuilds the entry a log row names. Blobs are read with their hash checked: damage is never replicated. */
export function buildEntry(show: ShowFileTables, assets: AssetTables, seq: number, kind: string, payload: string): ReplicationEntry {
  const named = JSON.parse(payload) as { rev?: number; assetId?: string };
  if (kind === SHOW_REVISION && typeof named.rev === "number") return revisionEntry(show, seq, named.rev);
  if (kind === ASSET_MANIFEST && typeof named.assetId === "string") return manifestEntry(assets, seq, named.assetId);
  if (kind === ASSET_REMOVED && typeof named.assetId === "string") return { seq, kind: ASSET_REMOVED, assetId: named.assetId, created: 0 };
  throw new InvalidReplicationEntry(`Log entry ${seq} has kind ${JSON.stringify(kind)} and payload ${payload}, which this version can't read.`);
}

/** The entry for the item (revision or manifest) that log entry `seq` wrote, or undefined if none did. */
export function entryForSeq(show: ShowFileTables, assets: AssetTables, seq: number): ReplicationEntry | undefined {
  const revision = show.revisionBySeq(seq);
  if (revision) return revisionEntry(show, seq, revision.rev);
  const assetId = assets.assetIdBySeq(seq);
  return assetId === undefined ? undefined : manifestEntry(assets, seq, assetId);
}

function revisionEntry(show: ShowFileTables, seq: number, rev: number): RevisionEntry {
  const revision = show.revision(rev);
  if (!revision) throw new InvalidReplicationEntry(`Log entry ${seq} names revision ${rev}, which is not stored.`);
  const { logSeq: _, ...record } = revision;
  const files = show.revisionFiles(rev);
  const blobs = new Map<string, { hash: string; size: number; chunks: string[] }>();
  for (const file of files) {
    if (file.hash !== null && !blobs.has(file.hash)) blobs.set(file.hash, { hash: file.hash, size: file.size, chunks: show.blobChunks(file.hash, file.path) });
  }
  return { seq, kind: SHOW_REVISION, revision: record, files, blobs: [...blobs.values()] };
}

/** The manifest entry; an asset removed since becomes its removal (there is nothing left to copy). */
function manifestEntry(assets: AssetTables, seq: number, id: string): ManifestEntry | RemovalEntry {
  const asset = assets.manifest(id);
  if (!asset) return { seq, kind: ASSET_REMOVED, assetId: id, created: 0 };
  return { seq, kind: ASSET_MANIFEST, asset: { ...asset, chunks: [...asset.chunks] } };
}

/**
 * Writes an entry's data, after checking it fits: the next revision, blobs that match their
 * hashes, valid paths, a manifest whose chunks are all here. Throws before writing anything
 * otherwise. Runs inside the caller's transaction; the caller records the log row and seq.
 */
export function applyEntryData(show: ShowFileTables, assets: AssetTables, entry: ReplicationEntry): void {
  if (entry.kind === SHOW_REVISION) applyRevision(show, assets, entry);
  else if (entry.kind === ASSET_MANIFEST) applyManifest(assets, entry);
  else assets.removeManifest(entry.assetId);
}

function applyRevision(show: ShowFileTables, assets: AssetTables, entry: RevisionEntry): void {
  const { revision, files, blobs, seq } = entry;
  const refuse = (why: string) => new InvalidReplicationEntry(`Entry ${seq} (revision ${revision.rev}): ${why}.`);
  const head = show.head();
  if (revision.rev !== head + 1 || revision.parent !== head) throw refuse(`this show file is at revision ${head}, so it needs revision ${head + 1} next`);
  const sizes = new Map<string, number>();
  for (const blob of blobs) {
    if (fileHashOfChunks(blob.chunks) !== blob.hash) throw refuse(`blob ${blob.hash} does not match its chunks`);
    sizes.set(blob.hash, blob.size);
  }
  const seen = new Set<string>();
  for (const file of files) {
    const problem = showPathProblem(file.path);
    if (problem !== undefined) throw refuse(`path ${JSON.stringify(file.path)} ${problem}`);
    if (seen.has(file.path)) throw refuse(`path ${JSON.stringify(file.path)} appears twice`);
    seen.add(file.path);
    if (file.deleted !== (file.hash === null)) throw refuse(`${JSON.stringify(file.path)} must have a hash exactly when it is not deleted`);
    if (file.hash === null) continue;
    if (!sizes.has(file.hash) && !show.hasBlob(file.hash)) throw refuse(`the content of ${JSON.stringify(file.path)} (${file.hash}) is missing`);
    const size = sizes.get(file.hash);
    if (size !== undefined && size !== file.size) throw refuse(`${JSON.stringify(file.path)} says ${file.size} bytes but its content has ${size}`);
  }
  // The entry is well formed: now its chunks must be here (the backup fetches them by hash first).
  for (const blob of blobs) {
    const missing = assets.missingChunks(blob.chunks);
    if (missing.length > 0) throw new ChunksMissing(`Revision ${revision.rev}`, missing);
    const total = blob.chunks.reduce((n, chunk) => n + (assets.chunkSize(chunk) ?? 0), 0);
    if (total !== blob.size) throw refuse(`blob ${blob.hash} says ${blob.size} bytes but its chunks hold ${total}`);
  }
  show.writeRevision(revision, seq, files, blobs);
}

function applyManifest(assets: AssetTables, entry: ManifestEntry): void {
  const asset: AssetManifest = entry.asset;
  const refuse = (why: string) => new InvalidReplicationEntry(`Entry ${entry.seq} (asset ${asset.id}): ${why}.`);
  if (assets.asset(asset.id)) throw refuse("an asset with this id is already stored");
  if (asset.chunkCount !== chunkCountFor(asset.size) || asset.chunks.length !== asset.chunkCount) {
    throw refuse(`${asset.size} bytes need ${chunkCountFor(asset.size)} chunks of ${ASSET_CHUNK_BYTES}, but it lists ${asset.chunks.length}`);
  }
  const missing = assets.missingChunks(asset.chunks);
  if (missing.length > 0) throw new ChunksMissing(`Asset ${asset.id}`, missing);
  assets.writeManifest(asset, entry.seq);
}
