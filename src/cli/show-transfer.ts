/**
 * The network half of `understudy push` and `understudy pull`: which chunks
 * travel, in what order, and how a push becomes one revision.
 *
 * Push: ask the node which chunks the main lacks, send those (read from disk a
 * window at a time, never a whole file in memory), then name every changed file
 * by its chunks in one `push` call, which the main writes as one revision or
 * not at all. Pull: list what changed, then fetch the chunks the folder lacks.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { AppError } from "../core/errors.ts";
import { InFlight } from "../services/asset-protocol.ts";
import { pushTimeoutMs } from "../services/files-service.ts";
import { RemoteError } from "../net/rpc.ts";
import { ShowFileClient } from "../services/show-file-client.ts";
import { MAX_HASHES_PER_CALL, missingResult, pullResult, pushResult, routeResult, type FileChange, type PushParams, type PushResult } from "../services/show-file-protocol.ts";
import { connectNode, type NodeTarget } from "./node-connection.ts";
import { INLINE_CHUNK_BYTES } from "../store/chunk-intake.ts";
import { CHUNK_BYTES, readChunkAt } from "./file-chunks.ts";
import { ProgressBar } from "./progress-bar.ts";
import type { LocalChange, PullApplied, ShowFolder } from "./show-folder.ts";

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
 * The node's `/files`, or, when `direct` and the node only forwards to the main, the main's own:
 * every chunk of a push or pull then crosses one hop, not two, and the node does not open and
 * seal each megabyte again. Anything that goes wrong on the way there (an older node, a main this
 * machine cannot reach itself) keeps the node's connection, which forwards as before.
 */
export async function connectShowFiles(target: NodeTarget, direct: boolean): Promise<ShowFileClient> {
  const node = new ShowFileClient();
  node.attach(await connectNode(target, "/files", () => node.events()));
  if (!direct) return node;
  try {
    const { forwardTo } = await node.call("files.route", {}, routeResult);
    if (forwardTo === null) return node;
    const main = new ShowFileClient();
    main.attach(await connectNode({ ...target, address: forwardTo }, "/files", () => main.events()));
    node.close();
    return main;
  } catch {
    return node;
  }
}

/** Sends the chunks the main lacks, then the push itself; sends again once if the main lost some meanwhile. */
export async function sendPush(files: ShowFileClient, folder: ShowFolder, changes: readonly LocalChange[], params: Omit<PushParams, "changes" | "pushId">): Promise<PushResult> {
  const wire: FileChange[] = changes.map((c) => (c.file === null ? { path: c.path, deleted: true } : { path: c.path, size: c.file.size, chunks: [...c.file.chunks] }));
  const push: PushParams = { ...params, changes: wire, pushId: randomUUID() };
  for (let attempt = 0; ; attempt++) {
    await sendMissingChunks(files, folder.dir, changes);
    try {
      return await files.call("push", push, pushResult, pushTimeoutMs(push));
    } catch (error) {
      // Chunks unused for a while may be reclaimed between asking and pushing: send them again, once.
      if (attempt === 0 && error instanceof RemoteError && error.code === "CHUNKS_MISSING") continue;
      throw error;
    }
  }
}

async function sendMissingChunks(files: ShowFileClient, dir: string, changes: readonly LocalChange[]): Promise<void> {
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
  const progress = total > 0 ? new ProgressBar("Pushing", total, process.stderr) : null;
  const sends = new InFlight<{ expected: string; path: string; got: string; bytes: number }>(PUSH_WINDOW);
  const done = (sent: { expected: string; path: string; got: string; bytes: number } | undefined) => {
    if (!sent) return;
    if (sent.got !== sent.expected) throw new FileChangedWhilePushing(sent.path);
    progress?.advance(sent.bytes);
  };
  const open = new Map<string, number>();
  try {
    for (const hash of missing) {
      const at = where.get(hash)!;
      let fd = open.get(at.path);
      if (fd === undefined) {
        for (const [path, other] of open) if (path !== at.path) closeSync(other), open.delete(path);
        fd = openSync(join(dir, at.path), "r");
        open.set(at.path, fd);
      }
      const bytes = readChunkAt(fd, at.idx, at.size);
      done(await sends.add(files.putChunk(bytes).then((r) => ({ expected: hash, path: at.path, got: r.hash, bytes: bytes.length }))));
    }
    while (sends.size > 0) done(await sends.next());
    progress?.finish();
  } catch (error) {
    progress?.abandon();
    throw error;
  } finally {
    for (const fd of open.values()) closeSync(fd);
  }
}

/** Brings `folder` from its base to the head: the change list, then the chunks it lacks. */
export async function receivePull(files: ShowFileClient, folder: ShowFolder, since: number, prepare: () => void = () => {}): Promise<PullApplied & { head: number }> {
  const result = await files.call("pull", { since }, pullResult, 120_000);
  prepare();
  const applied = await folder.applyPull(result, (hash) => files.readChunk(hash), (total) => new ProgressBar("Pulling", total, process.stderr));
  return { ...applied, head: result.head };
}
