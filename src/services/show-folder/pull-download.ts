/**
 * The writing half of a pull (`understudy pull`, the Synced storage panel): fetches the chunks of every file to
 * write, a window at a time across files (so a thousand small files are not a
 * thousand round trips), checks each chunk's hash and length, and writes each
 * file to DIR/.understudy/incoming/<hash of its path> before handing it to
 * `place` (pull-placement.ts), which puts it where it belongs or beside the
 * operator's edit. Incoming files are named by path, not content: two paths of
 * the same content (two empty files) are two downloads.
 *
 * Resumable: a pull cut short leaves its finished files in place (the next pull
 * finds them matching and skips them) and the file it was writing in incoming/;
 * the next pull keeps that file's chunks that still check out and fetches only
 * the rest. A multi-gigabyte pull into an empty folder survives a dropped link.
 */
import { open } from "node:fs/promises";
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { AppError } from "../../core/errors.ts";
import { InFlight } from "../asset-protocol.ts";
import { sha256Hex } from "../../store/content-hash.ts";
import { CHUNK_BYTES, readChunkAt } from "./file-chunks.ts";
import { nextTurn } from "./next-turn.ts";
import type { ProgressFor } from "./transfer-progress.ts";

/** Chunks fetched at once: enough to keep the link busy, few enough to bound memory (1 MiB each). */
export const PULL_WINDOW = 16;
export const INCOMING_DIR = "incoming";
/** Finished files made durable and moved into place together. */
const PLACE_BATCH = 64;
/** Files fsync'd at once. */
const SYNC_PARALLEL = 16;

/** One file to write: where, its size and chunks, and its content hash. */
export type FileToWrite = { readonly path: string; readonly size: number; readonly chunks: readonly string[]; readonly hash: string };

/** Fetches one chunk by hash (the caller's connection); its bytes are checked here. */
export type ChunkFetcher = (hash: string) => Promise<Uint8Array>;

/** Puts the finished, durable download at `from` in place for `file` (or beside it). */
export type Placer = (file: FileToWrite, from: string) => Promise<void>;

/** The incoming file's name for `path`: one per path, so equal contents never share one. */
export const incomingName = (path: string): string => sha256Hex(new TextEncoder().encode(path));

/** A chunk the server sent does not match its hash: nothing of it is written. */
export class PulledChunkDamaged extends AppError {
  constructor(path: string, hash: string) {
    super("CORRUPT_CHUNK", `A piece of ${JSON.stringify(path)} arrived damaged (it does not match ${hash}). Nothing of that file was written; pull again.`, { status: 502 });
    this.name = "PulledChunkDamaged";
  }
}

/** Downloads `files` for `dir` (whose bookkeeping folder is `stateDir`) and hands each to `place`; returns when all are placed. */
export async function downloadFiles(dir: string, stateDir: string, files: readonly FileToWrite[], fetch: ChunkFetcher, place: Placer, progressFor: ProgressFor = () => null): Promise<void> {
  const incoming = join(dir, stateDir, INCOMING_DIR);
  mkdirSync(incoming, { recursive: true });
  const progress = files.length === 0 ? null : progressFor(files.reduce((n, f) => n + f.size, 0));
  const jobs = files.map((file) => ({ file, fd: -1, from: 0 }));
  for (const job of jobs) {
    job.from = await resumePoint(join(incoming, incomingName(job.file.path)), job.file);
    progress?.skip(Math.min(job.file.size, job.from * CHUNK_BYTES));
  }
  const fetches = new InFlight<{ job: (typeof jobs)[number]; idx: number; bytes: Uint8Array }>(PULL_WINDOW);
  const write = ({ job, idx, bytes }: { job: (typeof jobs)[number]; idx: number; bytes: Uint8Array }) => {
    const { file } = job;
    // Every chunk is 1 MiB but the last: a short one would leave a hole the file's hash never covered.
    const length = Math.min(CHUNK_BYTES, file.size - idx * CHUNK_BYTES);
    if (bytes.length !== length || sha256Hex(bytes) !== file.chunks[idx]) throw new PulledChunkDamaged(file.path, file.chunks[idx]!);
    if (job.fd < 0) job.fd = openSync(join(incoming, incomingName(file.path)), job.from === 0 ? "w" : "r+");
    for (let off = 0; off < bytes.length; ) off += writeSync(job.fd, bytes, off, bytes.length - off, idx * CHUNK_BYTES + off);
    progress?.advance(bytes.length);
    if (idx === file.chunks.length - 1) finish(job);
  };
  // Finished files wait here to be made durable together (a few at a time on the I/O threads), then renamed into place.
  let finished: FileToWrite[] = [];
  const finish = (job: (typeof jobs)[number]) => {
    const part = join(incoming, incomingName(job.file.path));
    if (job.fd < 0) job.fd = openSync(part, job.from === 0 ? "w" : "r+");
    ftruncateSync(job.fd, job.file.size);
    closeSync(job.fd);
    job.fd = -1;
    finished.push(job.file);
  };
  const placeFinished = async () => {
    const batch = finished;
    finished = [];
    for (let i = 0; i < batch.length; i += SYNC_PARALLEL) await Promise.all(batch.slice(i, i + SYNC_PARALLEL).map((file) => syncFile(join(incoming, incomingName(file.path)))));
    for (const file of batch) {
      mkdirSync(dirname(join(dir, file.path)), { recursive: true });
      await place(file, join(incoming, incomingName(file.path)));
    }
  };
  try {
    for (const job of jobs) {
      if (job.from >= job.file.chunks.length) {
        finish(job); // complete already (or empty): only the rename is left
        continue;
      }
      for (let idx = job.from; idx < job.file.chunks.length; idx++) {
        const hash = job.file.chunks[idx]!;
        const ready = await fetches.add(fetch(hash).then((bytes) => ({ job, idx, bytes })));
        if (ready) {
          write(ready);
          await nextTurn();
        }
        if (finished.length >= PLACE_BATCH) await placeFinished();
      }
    }
    while (fetches.size > 0) {
      write(await fetches.next());
      await nextTurn();
    }
    await placeFinished();
    progress?.finish();
  } catch (error) {
    progress?.abandon();
    // What was finished is whole and checked: put it in place, so the next pull need not fetch it.
    for (const job of jobs) if (job.fd >= 0) closeSync(job.fd), (job.fd = -1);
    await placeFinished().catch(() => {});
    throw error;
  } finally {
    for (const job of jobs) if (job.fd >= 0) closeSync(job.fd);
  }
  removeStale(incoming, new Set(files.map((f) => incomingName(f.path))));
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** How many leading chunks of an interrupted download still check out (its file is cut to them). */
async function resumePoint(part: string, file: FileToWrite): Promise<number> {
  let have: number;
  try {
    have = statSync(part).size;
  } catch {
    return 0;
  }
  const whole = Math.min(file.chunks.length, Math.floor(have / CHUNK_BYTES) + (have === file.size ? 1 : 0));
  const handle = await open(part, "r+");
  try {
    let good = 0;
    while (good < whole && sha256Hex(await readChunkAt(handle, good, Math.min(have, file.size))) === file.chunks[good]) good++;
    await handle.truncate(Math.min(have, good * CHUNK_BYTES));
    return good;
  } finally {
    await handle.close();
  }
}

/** Incoming files of earlier pulls that this pull did not need (the server has moved on). */
function removeStale(incoming: string, keep: ReadonlySet<string>): void {
  for (const name of readdirSync(incoming)) if (!keep.has(name)) rmSync(join(incoming, name), { force: true });
}
