/**
 * The node's side of the Synced storage panel: this machine's show folder
 * kept in step with the show file, in the node process.
 *
 * `tick()` (every FOLDER_SYNC_TICK_MS once started) asks the node for the show
 * file's head, fetches the log when the head moved, and lists the folder's own
 * changes (hashes remembered between scans, file-hash-cache.ts); with Auto-Pull
 * on it pulls each new revision, like `understudy pull --watch`. A push or a
 * pull runs as one job at a time, reporting its progress to `view()`; it goes
 * through the same modules as the command line (show-transfer.ts).
 *
 * Hashing and copying never hold the event loop long: every chunk is read with
 * an awaited read (file-chunks.ts), so heartbeats go out between chunks. That
 * was chosen over a Worker because the work is I/O-bound, the hash of a 1 MiB
 * chunk takes about a millisecond, and one copy of the code serves both the
 * command line and the node.
 */
import type { Clock, Timers } from "../../core/clock.ts";
import { AppError } from "../../core/errors.ts";
import { systemTimers, wallClock } from "../../net/system-time.ts";
import type { Logger } from "../../log.ts";
import { RemoteError } from "../../net/rpc.ts";
import { formatHostPort, type HostPort } from "../../core/config.ts";
import type { PeerDialer } from "../../net/peer-net.ts";
import { ReadOnlyWhileBackupServes } from "../files-service.ts";
import type { ShowFileClient } from "../show-file-client.ts";
import { headResult, logResult, type LogEntry } from "../show-file-protocol.ts";
import { FileHashCache } from "./file-hash-cache.ts";
import { ShowFolder, type LocalChange } from "./show-folder.ts";
import { showFolderProblem } from "./show-folder-setting.ts";
import { describeKept } from "./pull-placement.ts";
import { conflictAdvice, connectShowFiles, pushFolder, pushedWords, receivePull } from "./show-transfer.ts";
import type { ProgressFor } from "./transfer-progress.ts";

export const FOLDER_SYNC_TICK_MS = 1000;
/** Revisions the history shows. */
export const HISTORY_SHOWN = 20;
/** Revisions "All changes to pull" lists at most (the log's own limit). */
export const PENDING_LISTED = 1000;
/** Changed files "Your changes to push" lists at most; the rest are counted. */
export const CHANGES_LISTED = 500;
/** A tick waits this long at most for the node's answer. */
const TICK_CALL_MS = 5000;
/** An Auto-Pull that failed for a reason other than the folder itself is tried again after this long. */
export const AUTO_PULL_RETRY_MS = 10_000;
/** Refusals about the folder's own files: Auto-Pull waits for the next revision, as `pull --watch` does. */
const FOLDER_REFUSALS: ReadonlySet<string> = new Set(["LOCAL_CHANGES_IN_THE_WAY", "PULL_TARGET_BLOCKED", "INVALID_SHOW_PATH", "SHOW_FOLDER_STATE_DAMAGED", "PULL_LIST_REFUSED", "SHOW_PATH_COLLISION"]);

export type SyncJob = { kind: "push" | "pull"; auto: boolean; stage: string; done: number; total: number };
export type SyncOutcome = { ok: boolean; message: string };
export type FolderChange = Pick<LocalChange, "path" | "kind">;

/** What the panel shows; one object, replaced on every change. */
export type FolderSyncView = {
  folder: string | null;
  autoPull: boolean;
  /** Why the folder cannot be used now (missing, damaged bookkeeping), or null. */
  problem: string | null;
  /** The revision the folder was last in step with. */
  base: number | null;
  /** The show file's head as last heard, null before (or while no server answers). */
  head: number | null;
  /** The folder's own changes (at most CHANGES_LISTED), null until scanned. */
  toPush: FolderChange[] | null;
  toPushCount: number;
  /** Revisions newer than the base, newest first (at most PENDING_LISTED). */
  toPull: LogEntry[];
  /** The last HISTORY_SHOWN revisions, null until heard. */
  history: LogEntry[] | null;
  /** Why the node could not say where the show file is, or null. */
  unreachable: string | null;
  /** Entries left out of a push (links, devices), in one line, or null. */
  skipped: string | null;
  job: SyncJob | null;
  outcome: SyncOutcome | null;
};

/**
 * This machine's own node as the show folder reaches it. `keyFingerprint` names the network key the
 * dialer holds: a lasting connection made under another key is made again under this one.
 */
export type OwnNode = { at: HostPort; net: PeerDialer; keyFingerprint: string };

export type FolderSyncOptions = {
  dataDir: string;
  /** The folder and Auto-Pull as set now (config: flags, environment, config.json). */
  settings: () => { folder: string | null; autoPull: boolean };
  /** This machine's own peer port and how to dial it; null while stand-alone. */
  node: () => OwnNode | null;
  /** The backup serves: push and pull wait for the main. */
  readOnly: () => boolean;
  /** Who pushes (the machine's name). */
  author: () => string;
  /** Wall-clock time, the clock file times are in (default: the system's). */
  wallClock?: Clock;
  /** The tick runs on these (default: the system's). */
  timers?: Timers;
  log: Logger;
  /** Called just before each pulled file is put in place (tests land an operator's edit there). */
  beforePlace?: (path: string) => void | Promise<void>;
};

const EMPTY: FolderSyncView = {
  folder: null,
  autoPull: false,
  problem: null,
  base: null,
  head: null,
  toPush: null,
  toPushCount: 0,
  toPull: [],
  history: null,
  unreachable: null,
  skipped: null,
  job: null,
  outcome: null,
};

/** A push or a pull is running: one at a time. */
export class SyncBusy extends AppError {
  constructor(job: SyncJob) {
    super("SYNC_BUSY", `A ${job.kind} is in progress: wait until it has finished.`, { status: 409 });
    this.name = "SyncBusy";
  }
}

/** Push and pull need a show folder set first, or a folder that works. */
export class NoShowFolder extends AppError {
  constructor(why: string) {
    super("NO_SHOW_FOLDER", why, { status: 409 });
    this.name = "NoShowFolder";
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export class FolderSync {
  private current: FolderSyncView = EMPTY;
  private connection: { address: string; keyFingerprint: string; files: Promise<ShowFileClient> } | null = null;
  private cache: { folder: string; hashes: FileHashCache } | null = null;
  private ticking = false;
  private running: Promise<void> | null = null;
  /** The head Auto-Pull last tried, so a refused pull is tried again only at the next revision. */
  private autoTriedAt: number | null = null;
  /** After an Auto-Pull failed for another reason (the link, the disk): not again before this time. */
  private autoRetryAt = 0;
  private stopTicking: (() => void) | null = null;
  private readonly wallClock: Clock;
  private readonly timers: Timers;
  private stopped = false;

  constructor(private readonly options: FolderSyncOptions) {
    this.wallClock = options.wallClock ?? wallClock;
    this.timers = options.timers ?? systemTimers;
  }

  view(): FolderSyncView {
    return this.current;
  }

  start(): void {
    this.stopTicking ??= this.timers.every(FOLDER_SYNC_TICK_MS, () => void this.tick());
    void this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.stopTicking?.();
    this.stopTicking = null;
    this.dropConnection();
  }

  /**
   * One step: the head and, when it moved, the log; the folder's own changes;
   * Auto-Pull of a new revision. Never runs twice at once, nor during a job.
   */
  async tick(): Promise<void> {
    if (this.ticking || this.running || this.stopped) return;
    this.ticking = true;
    try {
      await this.refresh();
      this.autoPull();
    } catch (error) {
      // A tick runs from a timer: nothing may escape it, the next one tries again.
      this.options.log.error("show folder check failed", { message: (error as Error).message });
    } finally {
      this.ticking = false;
    }
  }

  /** The folder or Auto-Pull was just set: shown at once (a new folder's lists start empty), looked at now. */
  settingsChanged(): void {
    const { folder, autoPull } = this.options.settings();
    if (folder !== this.current.folder) this.update({ folder, problem: null, base: null, toPush: null, toPushCount: 0, toPull: [], skipped: null, outcome: null });
    this.update({ autoPull });
    void this.tick();
  }

  /** Throws while a push or pull runs (the folder must not change under it). */
  assertIdle(): void {
    if (this.current.job) throw new SyncBusy(this.current.job);
  }

  /** Starts Push Changes with `comment`; throws (409) when it cannot start now. */
  startPush(comment: string): void {
    const folder = this.ready();
    this.run({ kind: "push", auto: false, stage: "Looking for changes", done: 0, total: 0 }, async (files, progress) => {
      const result = await pushFolder(
        files,
        folder,
        { message: comment, author: this.options.author() },
        { warn: () => {}, cache: this.hashes(folder.dir), progressFor: progress("Sending"), pullProgressFor: progress("Pulling changes by others") },
      ).catch((error: unknown) => {
        if (error instanceof RemoteError && error.code === "PUSH_CONFLICT") throw new AppError(error.code, conflictAdvice(error.message, "press Pull"), { status: 409, cause: error });
        throw error;
      });
      if (result === null) return { ok: true, message: `Nothing to push: no file in the folder changed since revision ${folder.base}.` };
      const caughtUp = result.caughtUp;
      const others = caughtUp && caughtUp.files > 0 ? ` Also pulled ${plural(caughtUp.files, "file")} changed by others.` : "";
      const kept = caughtUp ? describeKept(caughtUp.kept, caughtUp.head, caughtUp.base) : "";
      return { ok: kept === "", message: `${pushedWords(result)}.${others}${kept === "" ? "" : ` ${kept}`}` };
    });
  }

  /** Starts Pull; throws (409) when it cannot start now. */
  startPull(auto = false): void {
    const folder = this.ready();
    this.run({ kind: "pull", auto, stage: "Asking for changes", done: 0, total: 0 }, async (files, progress) => {
      const applied = await receivePull(files, folder, folder.base, { progressFor: progress("Receiving"), beforePlace: this.options.beforePlace });
      const changed = plural(applied.written.length + applied.deleted.length, "file");
      if (applied.kept.length === 0) return { ok: true, message: `Pulled revision ${applied.head}: ${changed} changed.` };
      return { ok: false, message: `Pulled revision ${applied.head} in part: ${changed} changed. ${describeKept(applied.kept, applied.head, applied.base)}` };
    });
  }

  /** The folder, ready for a job; throws the reason it is not. */
  private ready(): ShowFolder {
    if (this.current.job) throw new SyncBusy(this.current.job);
    if (this.options.readOnly()) throw new ReadOnlyWhileBackupServes();
    const { folder } = this.options.settings();
    if (folder === null) throw new NoShowFolder("Set the show folder first.");
    const problem = showFolderProblem(folder, this.options.dataDir);
    if (problem !== null) throw new NoShowFolder(problem);
    if (this.options.node() === null) throw new NoShowFolder("A stand-alone machine has no synced storage: make it a client or a server on the setup page.");
    return ShowFolder.open(folder);
  }

  private run(job: SyncJob, work: (files: ShowFileClient, progress: (stage: string) => ProgressFor) => Promise<SyncOutcome>): void {
    const node = this.options.node()!;
    this.update({ job, outcome: null });
    const progress =
      (stage: string): ProgressFor =>
      (total) => {
        this.update({ job: { ...this.current.job!, stage, done: 0, total } });
        return {
          skip: (bytes) => this.advance(bytes),
          advance: (bytes) => this.advance(bytes),
          finish: () => {},
          abandon: () => {},
        };
      };
    this.running = (async () => {
      let outcome: SyncOutcome;
      try {
        // Straight to the main when this node only forwards, as the command line does: one hop per chunk.
        const files = await connectShowFiles(node.net, node.at, true);
        try {
          outcome = await work(files, progress);
        } finally {
          files.close();
        }
      } catch (error) {
        outcome = { ok: false, message: error instanceof AppError ? error.message : `The ${job.kind} failed: ${(error as Error).message}` };
        if (job.auto && !(error instanceof AppError && FOLDER_REFUSALS.has(error.code))) {
          this.autoTriedAt = null;
          this.autoRetryAt = this.wallClock.now() + AUTO_PULL_RETRY_MS;
        }
      }
      this.options.log.info(`show folder ${job.kind}`, { ok: outcome.ok, auto: job.auto, message: outcome.message });
      this.update({ job: null, outcome });
      this.running = null;
      await this.tick();
    })();
  }

  private advance(bytes: number): void {
    const job = this.current.job;
    if (job) this.update({ job: { ...job, done: job.done + bytes } });
  }

  /** With Auto-Pull on, a head newer than the folder's base is pulled, once per head. */
  private autoPull(): void {
    const v = this.current;
    if (!v.autoPull || v.folder === null || v.problem !== null || v.head === null || v.base === null) return;
    // A head below the base is one the server does not know this folder by: the pull heals it (show-transfer.ts).
    if (v.head === v.base || this.autoTriedAt === v.head || v.unreachable !== null || this.options.readOnly()) return;
    if (this.wallClock.now() < this.autoRetryAt) return;
    this.autoTriedAt = v.head;
    try {
      this.startPull(true);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      this.update({ outcome: { ok: false, message: `Auto-Pull of revision ${v.head} did not start: ${error.message}` } });
    }
  }

  private async refresh(): Promise<void> {
    const { folder, autoPull } = this.options.settings();
    const node = this.options.node();
    if (folder !== this.current.folder) this.autoTriedAt = null;
    const local = folder === null ? { problem: null, base: null, toPush: null, toPushCount: 0, skipped: null } : await this.scan(folder);
    // Revisions the folder now has (it just pulled or pushed) leave "All changes to pull" with its new base, not a tick later.
    this.update({ folder, autoPull, ...local, toPull: local.base === null ? [] : this.current.toPull.filter((e) => e.rev > local.base!) });
    if (node === null) {
      this.dropConnection();
      this.update({ head: null, toPull: [], history: null, unreachable: null });
      return;
    }
    if (this.options.readOnly()) return; // the show file waits for the main: keep what was last heard
    try {
      const files = await this.client(node);
      const { rev } = await files.call("head", {}, headResult, TICK_CALL_MS);
      const base = this.current.base;
      const listed = base === null ? 0 : Math.min(PENDING_LISTED, rev - base);
      if (rev !== this.current.head || this.current.history === null || this.current.toPull.length !== Math.max(0, listed)) {
        const entries = await files.call("log", { limit: Math.max(HISTORY_SHOWN, listed) }, logResult, TICK_CALL_MS);
        this.update({ history: entries.slice(0, HISTORY_SHOWN), toPull: base === null ? [] : entries.filter((e) => e.rev > base) });
      }
      this.update({ head: rev, unreachable: null });
    } catch (error) {
      // A refusal by the node keeps the connection; anything else (lost, timed out) makes a new one next time.
      if (!(error instanceof RemoteError)) this.dropConnection();
      this.update({ unreachable: error instanceof AppError ? error.message : `This machine's node did not answer: ${(error as Error).message}` });
    }
  }

  /** The folder's base and own changes; a folder that cannot be read says why instead. */
  private async scan(folder: string): Promise<Pick<FolderSyncView, "problem" | "base" | "toPush" | "toPushCount" | "skipped">> {
    const problem = showFolderProblem(folder, this.options.dataDir);
    if (problem !== null) return { problem, base: null, toPush: null, toPushCount: 0, skipped: null };
    try {
      const state = ShowFolder.open(folder);
      let skipped: string | null = null;
      const changes = await state.changes({ warn: (line) => (skipped = line.trim()), cache: this.hashes(folder) });
      return { problem: null, base: state.base, toPush: changes.slice(0, CHANGES_LISTED).map(({ path, kind }) => ({ path, kind })), toPushCount: changes.length, skipped };
    } catch (error) {
      const message = error instanceof AppError ? error.message : `${folder} cannot be read: ${(error as Error).message}`;
      return { problem: message, base: null, toPush: null, toPushCount: 0, skipped: null };
    }
  }

  private hashes(folder: string): FileHashCache {
    if (this.cache?.folder !== folder) this.cache = { folder, hashes: new FileHashCache(this.wallClock) };
    return this.cache.hashes;
  }

  /** One lasting connection to this node's `/files` for the head and the log; made again after it broke. */
  private async client(node: OwnNode): Promise<ShowFileClient> {
    const address = formatHostPort(node.at);
    if (this.connection && (this.connection.address !== address || this.connection.keyFingerprint !== node.keyFingerprint)) this.dropConnection();
    if (this.connection) {
      const files = await this.connection.files.catch(() => null);
      if (files?.open) return files;
      this.dropConnection();
    }
    const connecting = connectShowFiles(node.net, node.at, false);
    this.connection = { address, keyFingerprint: node.keyFingerprint, files: connecting };
    return connecting;
  }

  private dropConnection(): void {
    void this.connection?.files.then((files) => files.close(), () => {});
    this.connection = null;
  }

  private update(changes: Partial<FolderSyncView>): void {
    this.current = { ...this.current, ...changes };
  }
}
