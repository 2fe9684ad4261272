/**
 * The show file the main server owns (docs/design.md §Lanes and replication):
 * numbered revisions of a folder of files, contents stored once per SHA-256.
 *
 * A push names its base, the revision the pusher last pulled. A path that any
 * revision after the base changed is a conflict, unless head already holds exactly
 * what the push says (a push sent again after its answer was lost, or the same edit
 * made twice): the push is refused naming the conflicting paths, and nothing is written.
 * A change head already holds is left out of the revision; a push of nothing else
 * writes no revision and answers head with `unchanged`. A base older than head is otherwise accepted,
 * like a rebase: the push touches only paths nobody else changed since the base,
 * so it is written on top of head (its revision records both `base` and `parent`).
 * Each push is one transaction together with its replication log entry.
 *
 * Revision 0 is the empty show file. Every read checks the content's hash.
 *
 * Contents are chunk lists (show-file-tables.ts): a push over the network names chunks the
 * pusher sent first (ChunkIntake) or that were here already; a push with bytes (tests, tools)
 * has them chunked here. Either way the revision is one transaction: all of it or none.
 */
import type { Database } from "bun:sqlite";
import { InvalidInput } from "../core/errors.ts";
import { manifestProblem } from "../core/show-manifest.ts";
import { ShowPathCollision, findShowPathCollisions, validateShowPath } from "../core/show-paths.ts";
import { ASSET_CHUNK_BYTES } from "./asset-tables.ts";
import { fileHashOfChunks } from "./content-hash.ts";
import { SHOW_REVISION } from "./replication-entries.ts";
import type { ReplicationLog } from "./replication-log.ts";
import {
  MAX_AUTHOR_CHARS,
  MAX_PUSH_ID_CHARS,
  MAX_PUSH_MESSAGE_CHARS,
  ShowFileTables,
  fileHashOfContent,
  type BlobRecord,
  type FileRecord,
  type RevisionRecord,
  type ShowFileEntry,
} from "./show-file-tables.ts";
import { PushChunksMissing, PushConflict, ShowFileNotFound, UnknownRevision } from "./store-errors.ts";
import { readTransaction, writeTransaction } from "./write-transaction.ts";
import type { Clock } from "../core/clock.ts";
import { wallClock } from "../net/system-time.ts";

export type { RevisionRecord, ShowFileEntry } from "./show-file-tables.ts";

/** One path of a push: new content as bytes or as stored chunks (in order, each 1 MiB but the last), or null to delete the file. */
export type ShowFileChange =
  | { readonly path: string; readonly content: Uint8Array | null }
  | { readonly path: string; readonly size: number; readonly chunks: readonly string[] };

export type PushRequest = {
  /** The revision the pusher's folder is based on (0 for a new show file). */
  readonly base: number;
  readonly changes: readonly ShowFileChange[];
  readonly message: string;
  /** Who pushed: a machine or person name, shown in the log. */
  readonly author: string;
  /**
   * Optional id the client makes once per push and resends on retry. A push whose id is
   * already stored is not applied again; its revision is returned with `duplicate: true`
   * (so a retry after a lost acknowledgement is not refused as a conflict with itself).
   */
  readonly pushId?: string;
};

export type PushResult = {
  readonly rev: number;
  /** The replication log entry carrying it: acknowledge the push once the backup applied this seq. */
  readonly seq: number;
  readonly duplicate: boolean;
  /** Head already held every change: no revision was written, and `rev` is head (not on top of the base). */
  readonly unchanged: boolean;
};

/** A change since some revision: the file's chunks (its hash checked against them), or a deleted file. */
export type PulledChange =
  | { readonly path: string; readonly deleted: false; readonly hash: string; readonly size: number; readonly chunks: readonly string[] }
  | { readonly path: string; readonly deleted: true };

export type PullResult = { readonly since: number; readonly head: number; readonly changes: PulledChange[] };

export type RevisionInfo = RevisionRecord & { /** How many paths it changed. */ readonly changes: number };

export const DEFAULT_LOG_LIMIT = 50;

export class ShowFileStore {
  private readonly db: Database;
  private readonly replication: ReplicationLog;
  private readonly tables: ShowFileTables;
  /** Wall-clock ms for `created` (shown to people only); injectable for tests. */
  private readonly clock: Clock;

  constructor(db: Database, log: ReplicationLog, clock: Clock = wallClock) {
    this.db = db;
    this.replication = log;
    this.tables = new ShowFileTables(db);
    this.tables.chunkInlineBlobs();
    this.clock = clock;
  }

  /** The newest revision; 0 when nothing was pushed yet. */
  head(): number {
    return this.tables.head();
  }

  /**
   * Writes `changes` as the next revision, in one transaction with its log entry. Throws,
   * writing nothing: InvalidShowPath, InvalidInput (no changes, a path twice, deleting a
   * file that isn't there, limits), UnknownRevision, PushConflict, ShowPathCollision, DiskFull.
   */
  push(request: PushRequest): PushResult {
    const { base, changes, message, author, pushId = null } = request;
    checkPushShape(request);
    return writeTransaction(this.db, `the push of ${changes.length === 1 ? "1 file" : `${changes.length} files`}`, () => {
      if (pushId !== null) {
        const earlier = this.tables.revisionByPushId(pushId);
        if (earlier) return { rev: earlier.rev, seq: earlier.logSeq, duplicate: true, unchanged: false };
      }
      const head = this.tables.head();
      if (!Number.isSafeInteger(base) || base < 0 || base > head) throw new UnknownRevision(base, head);
      const pending = changes.filter((c) => !this.heldAtHead(c, base));
      if (pending.length === 0) return { rev: head, seq: this.tables.revision(head)?.logSeq ?? 0, duplicate: true, unchanged: true };
      const conflicts = pending.filter((c) => this.tables.lastChange(c.path) > base).map((c) => c.path);
      if (conflicts.length > 0) throw new PushConflict(conflicts.sort(), base, head);
      for (const change of pending) {
        if (isDeletion(change) && !this.tables.headFile(change.path)) {
          throw new InvalidInput(`Can't delete ${JSON.stringify(change.path)}: it is not in revision ${head}. Nothing was written.`, change.path);
        }
      }
      this.checkCollisions(pending);
      const contents = pending.map((c) => (isDeletion(c) ? null : "content" in c && c.content !== null ? this.tables.storeContent(c.content) : this.checkedChunks(c as ChunkedChange)));
      const created = this.clock.now();
      const rev = head + 1;
      const seq = this.replication.append(SHOW_REVISION, JSON.stringify({ rev }), created);
      const files: FileRecord[] = pending.map((c, i) => ({ path: c.path, hash: contents[i]?.hash ?? null, size: contents[i]?.size ?? 0, deleted: contents[i] === null }));
      const blobs: BlobRecord[] = contents.filter((b): b is BlobRecord => b !== null);
      this.tables.writeRevision({ rev, parent: head, base, message, author, created, pushId }, seq, files, blobs);
      return { rev, seq, duplicate: false, unchanged: false };
    });
  }

  /** What changed after revision `since`, up to head: each path's content at head, or null if it was deleted. */
  pull(since: number): PullResult {
    return readTransaction(this.db, () => {
      const head = this.checkedRevision(since);
      const changes: PulledChange[] = [];
      for (const path of this.tables.pathsChangedAfter(since)) {
        const now = this.tables.headFile(path);
        if (now) changes.push({ path, deleted: false, hash: now.hash, size: now.size, chunks: this.tables.blobChunks(now.hash, path) });
        // A file made and deleted after `since` was never in the puller's folder: nothing to say about it.
        else if (this.tables.fileAt(path, since)) changes.push({ path, deleted: true });
      }
      return { since, head, changes };
    });
  }

  /** Every file of revision `rev` (head when omitted), sorted by path. */
  files(rev?: number): ShowFileEntry[] {
    return readTransaction(this.db, () => {
      const head = rev === undefined ? this.tables.head() : this.checkedRevision(rev);
      return this.tables.filesAt(rev ?? head, head);
    });
  }

  /** The content of `path` in revision `rev` (head when omitted), its hash checked (CorruptBlob otherwise). */
  read(path: string, rev?: number): Uint8Array {
    return readTransaction(this.db, () => {
      const head = rev === undefined ? this.tables.head() : this.checkedRevision(rev);
      const at = rev ?? head;
      const file = at === head ? this.tables.headFile(path) : this.tables.fileAt(path, at);
      if (!file) throw new ShowFileNotFound(path, at);
      return this.tables.readBlob(file.hash, path);
    });
  }

  /** The newest `limit` revisions, newest first. */
  log(limit = DEFAULT_LOG_LIMIT): RevisionInfo[] {
    const rows = this.db
      .query(
        `SELECT r.rev, r.parent, r.base, r.message, r.author, r.created, r.push_id AS pushId,
                (SELECT COUNT(*) FROM files AS f WHERE f.rev = r.rev) AS changes
         FROM revisions AS r ORDER BY r.rev DESC LIMIT ?`,
      )
      .all(Math.max(0, Math.floor(limit)));
    return rows as RevisionInfo[];
  }

  /**
   * The record of a file pushed as chunks, after checking each is stored and the sizes add up
   * (every chunk 1 MiB but the last). Throws PushChunksMissing naming those to send (again).
   */
  private checkedChunks(change: ChunkedChange): BlobRecord {
    const sizes = this.tables.chunkSizes(change.chunks);
    const missing = change.chunks.filter((_, i) => sizes[i] === undefined);
    if (missing.length > 0) throw new PushChunksMissing(change.path, [...new Set(missing)]);
    const last = change.chunks.length - 1;
    const total = sizes.reduce((n: number, size) => n + size!, 0);
    const shaped = sizes.every((size, i) => i === last || size === ASSET_CHUNK_BYTES);
    if (!shaped || total !== change.size) {
      throw new InvalidInput(`${JSON.stringify(change.path)} says ${change.size} bytes, but its chunks hold ${total}${shaped ? "" : " in pieces that are not 1 MiB each"}. Nothing was written.`, change.path);
    }
    return { hash: fileHashOfChunks(change.chunks), size: change.size, chunks: [...change.chunks] };
  }

  /**
   * Whether head already holds `change`: the same content, or (for a deletion) the file gone by a
   * revision after `base`. A deletion of a file that was already gone at the base is not: that
   * pusher's record is wrong, and the push is refused as before.
   */
  private heldAtHead(change: ShowFileChange, base: number): boolean {
    const now = this.tables.headFile(change.path);
    if (isDeletion(change)) return now === undefined && this.tables.lastChange(change.path) > base;
    if (now === undefined) return false;
    if ("chunks" in change) return now.size === change.size && now.hash === fileHashOfChunks(change.chunks);
    return now.size === change.content!.length && now.hash === fileHashOfContent(change.content!);
  }

  /** Returns head after checking `rev` names a revision here (0..head). */
  private checkedRevision(rev: number): number {
    const head = this.tables.head();
    if (!Number.isSafeInteger(rev) || rev < 0 || rev > head) throw new UnknownRevision(rev, head);
    return head;
  }

  /**
   * Refuses a push that would leave two paths one file on Windows or macOS, or a file where a
   * folder is needed. Only paths new at head can collide; they are checked against the head
   * files that could collide with them, minus the ones this push deletes.
   */
  private checkCollisions(changes: readonly ShowFileChange[]): void {
    const added = changes.filter((c) => !isDeletion(c) && !this.tables.headFile(c.path)).map((c) => c.path);
    if (added.length === 0) return;
    const deleted = new Set(changes.filter(isDeletion).map((c) => c.path));
    const neighbours = added.flatMap((path) => this.tables.collisionCandidates(path)).filter((path) => !deleted.has(path));
    const addedSet = new Set(added);
    const pairs = findShowPathCollisions([...neighbours, ...added]).filter((p) => addedSet.has(p.path) || addedSet.has(p.other));
    if (pairs.length > 0) throw new ShowPathCollision(pairs);
  }
}

type ChunkedChange = Extract<ShowFileChange, { chunks: readonly string[] }>;

function isDeletion(change: ShowFileChange): boolean {
  return "content" in change && change.content === null;
}

/** Limits and shape, checked before any database work. */
function checkPushShape(request: PushRequest): void {
  const { changes, message, author, pushId } = request;
  if (changes.length === 0) throw new InvalidInput("A push needs at least one changed file; there is nothing to push.", "changes");
  if (message.length > MAX_PUSH_MESSAGE_CHARS) throw new InvalidInput(`The push message is longer than ${MAX_PUSH_MESSAGE_CHARS} characters.`, "message");
  if (author.length === 0 || author.length > MAX_AUTHOR_CHARS) throw new InvalidInput(`The author must be 1 to ${MAX_AUTHOR_CHARS} characters.`, "author");
  if (pushId !== undefined && (pushId.length === 0 || pushId.length > MAX_PUSH_ID_CHARS)) {
    throw new InvalidInput(`A push id must be 1 to ${MAX_PUSH_ID_CHARS} characters.`, "pushId");
  }
  for (const change of changes) validateShowPath(change.path);
  // The same check a puller makes of what it is sent (core/show-manifest.ts), before any database work.
  const problem = manifestProblem(
    changes.map((c) => ("chunks" in c ? { path: c.path, size: c.size, chunks: c.chunks } : { path: c.path })),
    ASSET_CHUNK_BYTES,
    "push",
  );
  if (problem !== undefined) throw new InvalidInput(`${problem.problem}. Nothing was written.`, problem.path);
}
