/**
 * The network half of a push and a pull (`understudy push|pull` and the
 * node's Synced storage panel): which chunks travel, in what order, and how a
 * push becomes one revision.
 *
 * Push: ask which chunks the main lacks, send those (read from disk a window
 * at a time, never a whole file in memory), then name every changed file by
 * its chunks in one `push` call, which the main writes as one revision or not
 * at all. Pull: list what changed, then fetch the chunks the folder lacks.
 */
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { AppError } from "../../core/errors.ts";
import { validateShowPath } from "../../core/show-paths.ts";
import { InFlight } from "../asset-protocol.ts";
import { pushTimeoutMs } from "../files-service.ts";
import { RemoteError } from "../../net/rpc.ts";
import { parseHostPort, type HostPort } from "../../core/config.ts";
import type { PeerDialer } from "../../net/peer-net.ts";
import { ShowFileClient } from "../show-file-client.ts";
import { MAX_HASHES_PER_CALL, missingResult, pullResult, pushResult, routeResult, type FileChange, type PullResult, type PushParams, type PushResult } from "../show-file-protocol.ts";
import { INLINE_CHUNK_BYTES } from "../../store/chunk-intake.ts";
import { CHUNK_BYTES, readChunkAt } from "./file-chunks.ts";
import type { FileHashCache } from "./file-hash-cache.ts";
import type { LocalChange, PullApplied, ShowFolder, Warn } from "./show-folder.ts";
import type { KeptFile } from "./pull-placement.ts";
import type { ProgressFor } from "./transfer-progress.ts";

/** `files.route` is a quick question: a node that does not answer it soon keeps its own connection (and the next call's deadline says so). */
const ROUTE_TIMEOUT_MS = 5000;

/** Chunks in flight while pushing: enough to keep the link busy through a forwarding node, 1 MiB each. */
export const PUSH_WINDOW = 16;

/** A file changed on disk between being read for the push and being sent. */
export class FileChangedWhilePushing extends AppError {
  constructor(path: string) {
    super("FILE_CHANGED_DURING_PUSH", `${JSON.stringify(path)} changed while it was being pushed. Nothing was pushed; wait until it is saved, then push again.`, { status: 409 });
    this.name = "FileChangedWhilePushing";
  }
}

/**
 * The node's `/files` at `address`, or, when `direct` and the node only forwards to the main, the
 * main's own: every chunk of a push or pull then crosses one hop, not two, and the node does not
 * open and seal each megabyte again. Anything that goes wrong on the way there (an older node, a
 * main this machine cannot reach itself) keeps the node's connection, which forwards as before.
 */
export async function connectShowFiles(net: PeerDialer, at: HostPort, direct: boolean): Promise<ShowFileClient> {
  const node = new ShowFileClient();
  node.attach(await net.dial(at, "/files", () => node.events()));
  if (!direct) return node;
  try {
    const { forwardTo } = await node.call("files.route", {}, routeResult, ROUTE_TIMEOUT_MS);
    const mainAt = forwardTo === null ? null : parseHostPort(forwardTo);
    if (mainAt === null) return node;
    const main = new ShowFileClient();
    main.attach(await net.dial(mainAt, "/files", () => main.events()));
    node.close();
    return main;
  } catch {
    return node;
  }
}

/** Sends the chunks the main lacks, then the push itself; sends again once if the main lost some meanwhile. */
export async function sendPush(files: ShowFileClient, folder: ShowFolder, changes: readonly LocalChange[], params: Omit<PushParams, "changes" | "pushId">, progressFor: ProgressFor = () => null): Promise<PushResult> {
  const wire: FileChange[] = changes.map((c) => (c.file === null ? { path: c.path, deleted: true } : { path: c.path, size: c.file.size, chunks: [...c.file.chunks] }));
  const push: PushParams = { ...params, changes: wire, pushId: randomUUID() };
  for (let attempt = 0; ; attempt++) {
    await sendMissingChunks(files, folder.dir, changes, progressFor);
    try {
      return await files.call("push", push, pushResult, pushTimeoutMs(push));
    } catch (error) {
      // Chunks unused for a while may be reclaimed between asking and pushing: send them again, once.
      if (attempt === 0 && error instanceof RemoteError && error.code === "CHUNKS_MISSING") continue;
      throw error;
    }
  }
}

async function sendMissingChunks(files: ShowFileClient, dir: string, changes: readonly LocalChange[], progressFor: ProgressFor): Promise<void> {
  // Where each chunk can be read: the first file and index that has it.
  const where = new Map<string, { path: string; idx: number; size: number }>();
  for (const change of changes) {
    change.file?.chunks.forEach((hash, idx) => {
      if (!where.has(hash)) where.set(hash, { path: change.path, idx, size: change.file!.size });
    });
  }
  // Small chunks are sent without asking first (a round trip costs more than sending them); large ones only when the main lacks them.
  const length = (hash: string) => Math.min(where.get(hash)!.size - where.get(hash)!.idx * CHUNK_BYTES, CHUNK_BYTES);
  const hashes = [...where.keys()].filter((hash) => length(hash) > INLINE_CHUNK_BYTES);
  const missing = [...where.keys()].filter((hash) => length(hash) <= INLINE_CHUNK_BYTES);
  for (let i = 0; i < hashes.length; i += MAX_HASHES_PER_CALL) {
    missing.push(...(await files.call("files.missing", { hashes: hashes.slice(i, i + MAX_HASHES_PER_CALL) }, missingResult)).missing);
  }
  const total = missing.reduce((n, hash) => n + length(hash), 0);
  const progress = total > 0 ? progressFor(total) : null;
  const sends = new InFlight<{ expected: string; path: string; got: string; bytes: number }>(PUSH_WINDOW);
  const done = (sent: { expected: string; path: string; got: string; bytes: number } | undefined) => {
    if (!sent) return;
    if (sent.got !== sent.expected) throw new FileChangedWhilePushing(sent.path);
    progress?.advance(sent.bytes);
  };
  const handles = new Map<string, FileHandle>();
  try {
    for (const hash of missing) {
      const at = where.get(hash)!;
      let handle = handles.get(at.path);
      if (handle === undefined) {
        for (const [path, other] of handles) if (path !== at.path) await other.close(), handles.delete(path);
        handle = await open(join(dir, at.path), "r");
        handles.set(at.path, handle);
      }
      const bytes = await readChunkAt(handle, at.idx, at.size);
      done(await sends.add(files.putChunk(bytes).then((r) => ({ expected: hash, path: at.path, got: r.hash, bytes: bytes.length }))));
    }
    while (sends.size > 0) done(await sends.next());
    progress?.finish();
  } catch (error) {
    progress?.abandon();
    throw error;
  } finally {
    for (const handle of handles.values()) await handle.close();
  }
}

/** The longest a `pull` answer (the list of changed files, not their bytes) may take. */
export const PULL_LIST_TIMEOUT_MS = 120_000;

/**
 * Brings `folder` from its base to the head: the change list, then the chunks it lacks. A base the
 * server does not know (its show file was made again, or another server answered before) is healed
 * by a pull of every file from revision 0, which keeps any file changed here as usual.
 */
export async function receivePull(
  files: ShowFileClient,
  folder: ShowFolder,
  since: number,
  options: { prepare?: () => void; progressFor?: ProgressFor; beforePlace?: (path: string) => void | Promise<void> } = {},
): Promise<PullApplied & { head: number }> {
  let full = false;
  let result: PullResult;
  try {
    result = await files.call("pull", { since }, pullResult, PULL_LIST_TIMEOUT_MS);
    if (result.head < since) throw new RemoteError("UNKNOWN_REVISION", `The server is at revision ${result.head}, before this folder's ${since}.`, 404);
  } catch (error) {
    if (!(since > 0 && error instanceof RemoteError && error.code === "UNKNOWN_REVISION")) throw error;
    full = true;
    result = await files.call("pull", { since: 0 }, pullResult, PULL_LIST_TIMEOUT_MS);
  }
  options.prepare?.();
  const applied = await folder.applyPull(result, (hash) => files.readChunk(hash), { full, progressFor: options.progressFor, beforePlace: options.beforePlace });
  return { ...applied, head: result.head };
}

/**
 * A push conflict's facts from the server with one piece of advice, for a folder: the server's
 * general "Pull, merge …" gives way to the steps that work here (`pull` says how to pull).
 */
export function conflictAdvice(serverMessage: string, pull: string): string {
  const facts = serverMessage.replace(/ Pull, merge your changes into those files, and push again\./, "");
  return `${facts} To go on: move your copies of those files out of the folder, ${pull}, put your changes back into the pulled files, and push again.`;
}

/**
 * What a push did and where it is, in the words the command line and the page both print: the revision
 * written, or that the server had every change already (a push sent again after its answer was lost).
 */
export function pushedWords(result: PushResult & { files: number }): string {
  const backup = { backup: "the backup has it", behind: "the backup is behind", none: "no backup" }[result.replicated];
  const changes = result.files === 1 ? "this change" : `these ${result.files} changes`;
  if (result.unchanged) return `The server already had ${changes} (a push whose answer was lost, or the same edit made twice): nothing new written; the server is at revision ${result.rev}; ${backup}`;
  return `Pushed revision ${result.rev} (${result.files} file${result.files === 1 ? "" : "s"}); ${backup}`;
}

/** What a push of a folder did; `caughtUp` when others had pushed meanwhile and their changes were pulled after it. */
export type FolderPushed = PushResult & { files: number; caughtUp: { files: number; since: number; head: number; base: number; kept: KeptFile[] } | null };

/**
 * Pushes every change in `folder` since its base as one revision, records it, and pulls what others
 * pushed in between (or the next push would conflict with our own). Null when nothing changed.
 */
export async function pushFolder(
  files: ShowFileClient,
  folder: ShowFolder,
  params: { message: string; author: string },
  options: { warn?: Warn; cache?: FileHashCache; progressFor?: ProgressFor; pullProgressFor?: ProgressFor } = {},
): Promise<FolderPushed | null> {
  const changes = await folder.changes({ warn: options.warn, cache: options.cache });
  if (changes.length === 0) return null;
  for (const change of changes) validateShowPath(change.path);
  const base = folder.base;
  const result = await sendPush(files, folder, changes, { base, ...params }, options.progressFor);
  if (folder.recordPush(result.unchanged ? null : result.rev, changes)) return { ...result, files: changes.length, caughtUp: null };
  const caughtUp = await receivePull(files, folder, base, { progressFor: options.pullProgressFor });
  return { ...result, files: changes.length, caughtUp: { files: caughtUp.written.length + caughtUp.deleted.length, since: base, head: caughtUp.head, base: caughtUp.base, kept: caughtUp.kept } };
}
