/**
 * `understudy asset put|get|ls`: the Asset Hub from the command line, through
 * this machine's node (`/assets` on its peer port), which serves or forwards.
 *
 * put streams FILE in 1 MiB chunks (never all in memory), hashing as it reads, a
 * window of chunks in flight on the bulk lane. To resume, it remembers the upload in
 * FILE.understudy-upload (node, upload id, name, size, mtime) until the commit; run
 * again with the file unchanged, only the chunks the server lacks are sent. (Asking
 * the server by name+size+SHA-256 instead would need the whole file hashed before the
 * first byte is sent.) Where that file can't be written, the upload still works but
 * would start over.
 *
 * get streams into OUT.part (what it is of: OUT.part.json) and renames it to OUT at
 * the end, after checking the whole file's SHA-256; OUT is never half-written. A
 * partial OUT.part of the same asset and range is resumed.
 */
import { existsSync, readFileSync, renameSync, rmSync, statSync, type Stats } from "node:fs";
import { open } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { z } from "zod";
import { formatHostPort, parseHostPort } from "../core/config.ts";
import { AppError } from "../core/errors.ts";
import { AssetClient, ASSET_PATH, DEFAULT_ASSET_WINDOW, runsCursor, InFlight, type AssetInfoWire } from "../services/asset-protocol.ts";
import { ASSET_CHUNK_BYTES } from "../store/asset-tables.ts";
import { writeFileAtomic } from "../store/atomic-file.ts";
import { createSha256, fileHashOfChunks, SHA256_HEX, sha256Hex } from "../store/content-hash.ts";
import { parseCommand, UsageError } from "./args.ts";
import { connectNode, DEFAULT_NODE, NODE_FLAGS, nodeTarget, type NodeTarget } from "./node-connection.ts";
import { formatBytes, ProgressBar, type ProgressSink } from "./progress-bar.ts";

export const UPLOAD_RECORD_SUFFIX = ".understudy-upload";

export const ASSET_HELP = `Usage: understudy asset put FILE [--name NAME]
       understudy asset get ID OUT [--range START-END]
       understudy asset ls
       understudy asset abort UPLOAD-ID
       understudy asset rm ID

The Asset Hub: large media uploaded once to the main server and read by every machine.

  put FILE      uploads FILE and prints the new asset's id. An interrupted upload
                resumes when run again (FILE${UPLOAD_RECORD_SUFFIX} remembers it).
    --name NAME   the asset's name (default: FILE's name)
  get ID OUT    downloads asset ID into OUT, checked against its SHA-256. OUT appears
                only when complete; an interrupted download resumes from OUT.part.
    --range START-END   only bytes START up to (not including) END; "START-" runs to the end
  ls            lists the assets: id, size, time, name
  abort UPLOAD-ID   stops an upload in progress (its id is in FILE${UPLOAD_RECORD_SUFFIX});
                its space is given back after --chunk-grace-ms on the main
  rm ID         removes asset ID on the main and the backup; its space is given
                back after --chunk-grace-ms unless another asset shares its pieces

Common flags: --node HOST:PORT (default ${DEFAULT_NODE}, this machine's node)
              --key FILE (default DATA/network.key; --data DIR or UNDERSTUDY_DATA)
`;

export type Output = (text: string) => void;
const stdout: Output = (text) => process.stdout.write(text);

const uploadRecordSchema = z.strictObject({
  version: z.literal(1),
  node: z.string(),
  uploadId: z.string(),
  name: z.string(),
  size: z.int().nonnegative(),
  mtimeMs: z.number(),
});
type UploadRecord = z.infer<typeof uploadRecordSchema>;

const partRecordSchema = z.strictObject({ version: z.literal(1), id: z.string(), sha256: z.string().regex(SHA256_HEX), start: z.int(), end: z.int() });

/** The local file changed while it was uploaded; nothing was committed. */
export class FileChangedDuringUpload extends AppError {
  constructor(file: string) {
    super("FILE_CHANGED", `${file} changed while it was being uploaded, so nothing was committed. Upload it again once it is no longer being written.`, { status: 409 });
    this.name = "FileChangedDuringUpload";
  }
}

/** Runs `understudy asset ARGV`; returns the exit code, throws AppError (a UsageError for a bad command line). */
export async function assetCommand(argv: string[], out: Output = stdout, err: ProgressSink = process.stderr): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    out(ASSET_HELP);
    return 0;
  }
  if (sub !== "put" && sub !== "get" && sub !== "ls" && sub !== "abort" && sub !== "rm") {
    throw new UsageError(`understudy asset: unknown subcommand "${sub}" (put, get, ls, abort or rm; see "understudy asset --help")`);
  }
  const command = `understudy asset ${sub}`;
  const extra = { put: { name: { type: "string" } }, get: { range: { type: "string" } }, ls: {}, abort: {}, rm: {} } as const;
  const arity = { put: 1, get: 2, ls: 0, abort: 1, rm: 1 }[sub];
  const { values, positionals, help } = parseCommand(command, rest, { ...NODE_FLAGS, ...extra[sub] }, { min: arity, max: arity });
  if (help) {
    out(ASSET_HELP);
    return 0;
  }
  const options = values as Record<string, unknown>;
  if (sub === "ls") return withAssets(nodeTarget(options), (client) => list(client, out));
  if (sub === "abort" || sub === "rm") {
    const id = positionals[0]!;
    if (!/^[0-9A-Za-z-]{1,64}$/.test(id)) throw new UsageError(`${command}: "${id}" is not an ${sub === "rm" ? "asset" : "upload"} id`);
    if (sub === "abort") {
      return withAssets(nodeTarget(options), async (client) => {
        await client.abort(id);
        out(`Upload ${id} stopped; its space is given back after the grace period.\n`);
        return 0;
      });
    }
    return withAssets(nodeTarget(options), async (client) => {
      const { replicated } = await client.remove(id);
      const backup = { backup: "the backup removed it too", behind: "the backup is behind", none: "no backup" }[replicated];
      out(`Asset ${id} removed; ${backup}.\n`);
      return 0;
    });
  }
  if (sub === "put") {
    const file = positionals[0]!;
    const stats = statOrNull(file);
    if (!stats?.isFile()) throw new UsageError(`${command}: ${file} is not a file`);
    const name = typeof options.name === "string" ? options.name : basename(file);
    if (name.length < 1 || name.length > 1024 || /[\u0000-\u001f\u007f]/.test(name)) throw new UsageError(`${command}: --name must be 1 to 1024 characters without control characters`);
    const target = nodeTarget(options);
    return withAssets(target, (client) => put(client, target, file, name, stats, out, err), true);
  }
  const [assetId, outFile] = positionals as [string, string];
  if (!/^[0-9A-Za-z-]{1,64}$/.test(assetId)) throw new UsageError(`${command}: "${assetId}" is not an asset id (see "understudy asset ls")`);
  const range = typeof options.range === "string" ? parseRange(command, options.range) : null;
  if (statOrNull(outFile)?.isDirectory()) throw new UsageError(`${command}: ${outFile} is a folder; give the file to write, e.g. ${outFile}/clip.mov`);
  if (!statOrNull(dirname(outFile))?.isDirectory()) throw new UsageError(`${command}: the folder ${dirname(outFile)} does not exist`);
  return withAssets(nodeTarget(options), (client) => get(client, assetId, outFile, range, out, err), true);
}

/**
 * The node's `/assets`, or, when `direct` and the node only forwards to the main, the main's own:
 * every chunk then crosses one hop, and the node does not open and seal each megabyte again. An
 * older node or a main this machine cannot reach itself keeps the node's connection. The upload
 * record still names the node: the upload lives on the main whichever way its chunks went.
 */
async function connectAssets(target: NodeTarget, direct: boolean): Promise<AssetClient> {
  const node = new AssetClient();
  node.attach(await connectNode(target, ASSET_PATH, () => node.events()));
  if (!direct) return node;
  try {
    const { forwardTo } = await node.route();
    const mainAt = forwardTo === null ? null : parseHostPort(forwardTo);
    if (mainAt === null) return node;
    const main = new AssetClient();
    main.attach(await connectNode({ ...target, at: mainAt }, ASSET_PATH, () => main.events()));
    node.close();
    return main;
  } catch {
    return node;
  }
}

/** "START-END" (END exclusive) or "START-" (to the end). */
export function parseRange(command: string, text: string): { start: number; end: number | null } {
  const match = /^(\d{1,16})-(\d{1,16})?$/.exec(text);
  const start = match ? Number(match[1]) : Number.NaN;
  const end = match?.[2] === undefined ? null : Number(match[2]);
  if (!match || !Number.isSafeInteger(start) || (end !== null && (!Number.isSafeInteger(end) || end < start))) {
    throw new UsageError(`${command}: --range ${text}: expected START-END with START ≤ END (bytes, END not included), or START-`);
  }
  return { start, end };
}

/** Connects to the node's `/assets` (or, `direct`, the main's, when the node forwards there), runs `body`, and always closes. */
async function withAssets(target: NodeTarget, body: (client: AssetClient) => Promise<number>, direct = false): Promise<number> {
  const client = await connectAssets(target, direct);
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

async function put(client: AssetClient, target: NodeTarget, file: string, name: string, stats: Stats, out: Output, err: ProgressSink): Promise<number> {
  const recordFile = file + UPLOAD_RECORD_SUFFIX;
  const record = readUploadRecord(recordFile);
  const nodeAddress = formatHostPort(target.at);
  const sameFile = record !== null && record.node === nodeAddress && record.size === stats.size && record.mtimeMs === stats.mtimeMs;
  const begun = await client.begin({ name, size: stats.size, resumeId: sameFile && record.name === name ? record.uploadId : undefined });
  if (record && record.node === nodeAddress && record.uploadId !== begun.id) await client.abort(record.uploadId).catch(() => {}); // the stale upload, if the server still has it
  const remembered = begun.resumed || writeUploadRecord(recordFile, { version: 1, node: nodeAddress, uploadId: begun.id, name, size: stats.size, mtimeMs: stats.mtimeMs }, err);
  const progress = new ProgressBar(`Uploading ${name}`, stats.size, err);
  try {
    const { sha256, chunkListHash } = await sendChunks(client, file, stats.size, begun.id, runsCursor(begun.missing), progress);
    const now = statOrNull(file);
    if (!now || now.size !== stats.size || now.mtimeMs !== stats.mtimeMs) throw new FileChangedDuringUpload(file);
    const result = await client.commit(begun.id, sha256, stats.size, chunkListHash);
    progress.finish();
    rmSync(recordFile, { force: true });
    const backup = { backup: "the backup has it", behind: "the backup is behind", none: "no backup" }[result.replicated];
    err.write(`${JSON.stringify(name)} is asset ${result.asset.id} (${formatBytes(result.asset.size)}); ${backup}\n`);
    out(`${result.asset.id}\n`);
    return 0;
  } catch (error) {
    progress.abandon();
    if (error instanceof AppError && (error.code === "ASSET_HASH_MISMATCH" || error.code === "FILE_CHANGED")) {
      rmSync(recordFile, { force: true });
      await client.abort(begun.id).catch(() => {});
    } else if (error instanceof AppError && remembered && (error.code === "CONNECTION_LOST" || error.code === "TIMEOUT")) {
      throw new AppError(error.code, `${error.message} The upload can go on where it stopped: run the same command again.`, { status: error.status, cause: error });
    }
    throw error;
  }
}

/**
 * Reads every chunk in order and sends those the server lacks, a window at a time. Hashes the
 * whole file and each chunk in that one read: the chunk list lets the main check the upload
 * against hashes it computed as chunks arrived, instead of reading a gigabyte back to hash it.
 */
async function sendChunks(
  client: AssetClient,
  file: string,
  size: number,
  uploadId: string,
  missing: (idx: number) => boolean,
  progress: ProgressBar,
): Promise<{ sha256: string; chunkListHash: string }> {
  const hash = createSha256();
  const chunkHashes: string[] = [];
  const source = Bun.file(file);
  const inFlight = new InFlight<void>(DEFAULT_ASSET_WINDOW);
  for (let idx = 0, at = 0; at < size; idx++, at += ASSET_CHUNK_BYTES) {
    const length = Math.min(ASSET_CHUNK_BYTES, size - at);
    const bytes = new Uint8Array(await source.slice(at, at + length).arrayBuffer());
    if (bytes.length !== length) throw new FileChangedDuringUpload(file);
    hash.update(bytes);
    chunkHashes.push(sha256Hex(bytes));
    if (missing(idx)) await inFlight.add(client.sendChunk(uploadId, idx, bytes).then(() => progress.advance(length)));
    else progress.skip(length);
  }
  while (inFlight.size > 0) await inFlight.next();
  return { sha256: hash.digest("hex"), chunkListHash: fileHashOfChunks(chunkHashes) };
}

async function get(client: AssetClient, assetId: string, outFile: string, range: { start: number; end: number | null } | null, out: Output, err: ProgressSink): Promise<number> {
  const asset = await client.stat(assetId);
  const start = range?.start ?? 0;
  const end = range?.end ?? asset.size;
  if (start > end || end > asset.size) {
    throw new AppError("RANGE_NOT_SATISFIABLE", `Byte range ${start}-${end} is outside asset ${assetId} (it has ${asset.size} bytes).`, { status: 416 });
  }
  const whole = start === 0 && end === asset.size;
  const part = `${outFile}.part`;
  const partRecord = `${outFile}.part.json`;
  const offset = resumableOffset(part, partRecord, asset, start, end);
  if (offset === 0) {
    rmSync(part, { force: true });
    writeFileAtomic(partRecord, JSON.stringify({ version: 1, id: asset.id, sha256: asset.sha256, start, end }));
  }
  const hash = whole ? createSha256() : null;
  if (hash && offset > 0) for await (const piece of Bun.file(part).slice(0, offset).stream()) hash.update(piece);
  const progress = new ProgressBar(`Downloading ${asset.name}`, end - start, err);
  progress.skip(offset);
  const sink = await open(part, offset === 0 ? "w" : "r+");
  try {
    let position = offset;
    await client.download(asset.id, start + offset, end, async (bytes) => {
      for (let written = 0; written < bytes.length; ) written += (await sink.write(bytes, written, bytes.length - written, position + written)).bytesWritten;
      position += bytes.length;
      hash?.update(bytes);
      progress.advance(bytes.length);
    });
    await sink.sync();
  } catch (error) {
    progress.abandon();
    throw error;
  } finally {
    await sink.close();
  }
  if (hash) {
    const actual = hash.digest("hex");
    if (actual !== asset.sha256) {
      rmSync(part, { force: true });
      rmSync(partRecord, { force: true });
      throw new AppError("DOWNLOAD_CORRUPT", `The downloaded bytes of asset ${asset.id} hash to ${actual}, not ${asset.sha256}. Nothing was written to ${outFile}; download it again.`, { status: 502 });
    }
  }
  renameSync(part, outFile);
  rmSync(partRecord, { force: true });
  progress.finish();
  const what = whole ? "" : ` (bytes ${start}-${end} of ${asset.size})`;
  out(`Wrote ${outFile}: ${JSON.stringify(asset.name)}, ${formatBytes(end - start)}${what}\n`);
  return 0;
}

/** How much of OUT.part can be kept: all of it when it is of this asset and range, else nothing. */
function resumableOffset(part: string, partRecord: string, asset: AssetInfoWire, start: number, end: number): number {
  const partSize = statOrNull(part)?.size;
  if (partSize === undefined || !existsSync(partRecord)) return 0;
  const parsed = partRecordSchema.safeParse(parseJson(readFileSync(partRecord, "utf8")));
  if (!parsed.success) return 0;
  const r = parsed.data;
  if (r.id !== asset.id || r.sha256 !== asset.sha256 || r.start !== start || r.end !== end || partSize > end - start) return 0;
  return partSize;
}

async function list(client: AssetClient, out: Output): Promise<number> {
  const assets = await client.list();
  if (assets.length === 0) out("No assets yet.\n");
  for (const asset of assets) out(`${formatAssetLine(asset)}\n`);
  return 0;
}

/** One line of `asset ls`: id, size, time committed, name. */
export function formatAssetLine(asset: AssetInfoWire): string {
  return [asset.id, formatBytes(asset.size).padStart(9), new Date(asset.created).toISOString(), asset.name].join("  ");
}

function readUploadRecord(file: string): UploadRecord | null {
  if (!existsSync(file)) return null;
  const parsed = uploadRecordSchema.safeParse(parseJson(readFileSync(file, "utf8")));
  return parsed.success ? parsed.data : null;
}

/** True when written; a folder that can't be written to only costs the ability to resume. */
function writeUploadRecord(file: string, record: UploadRecord, err: ProgressSink): boolean {
  try {
    writeFileAtomic(file, JSON.stringify(record));
    return true;
  } catch (error) {
    err.write(`Note: can't write ${file} (${(error as Error).message}); if this upload is interrupted it will start over.\n`);
    return false;
  }
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
