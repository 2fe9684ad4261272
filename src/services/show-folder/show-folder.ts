/**
 * A folder of show files kept in step with the server: the folder side of
 * `understudy pull` and `understudy push`, and of the node's Synced storage panel.
 *
 * The folder remembers, in DIR/.understudy/state.json, the revision it was last
 * in step with (its base) and the SHA-256 of every file as of that base. A local
 * change is any difference between the folder and those hashes. A pull never
 * overwrites a local change and never writes outside the folder; it checks
 * every path first and writes nothing when one is refused. Each file is written
 * atomically and the state last, so a pull cut short is simply pulled again:
 * files already written match what the server sends and are not in the way, and
 * the file it was writing resumes (pull-download.ts).
 *
 * Files are known by their chunks (file-chunks.ts): their hash is the show
 * file's content address, and only chunks the other side lacks ever travel.
 * Paths matched by `.understudyignore` are neither pushed nor seen as deleted.
 */
import { mkdirSync, readdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { manifestProblem } from "../../core/show-manifest.ts";
import { assertNoShowPathCollisions, InvalidShowPath, SHOW_FOLDER_STATE_NAME, showPathProblem } from "../../core/show-paths.ts";
import type { PullResult } from "../show-file-protocol.ts";
import { wallClock } from "../../net/system-time.ts";
import { writeFileAtomic } from "../../store/atomic-file.ts";
import { SHA256_HEX, fileHashOfChunks } from "../../store/content-hash.ts";
import { CHUNK_BYTES, chunkFile, type ChunkedFile } from "./file-chunks.ts";
import type { FileHashCache } from "./file-hash-cache.ts";
import { downloadFiles, type ChunkFetcher, type FileToWrite } from "./pull-download.ts";
import { nextTurn } from "./next-turn.ts";
import { checkLocal, deleteChecked, lstatOrNull, placeChecked, type CheckedLocal, type KeptFile } from "./pull-placement.ts";
import { loadIgnoreRule } from "./show-ignore.ts";
import type { ProgressFor } from "./transfer-progress.ts";
import { LocalChangesInTheWay, PullListRefused, PullTargetBlocked, ShowFolderStateDamaged } from "./show-folder-errors.ts";

export { LocalChangesInTheWay, PullListRefused, PullTargetBlocked, ShowFolderStateDamaged } from "./show-folder-errors.ts";

/** The folder's own bookkeeping, never scanned, pushed or pulled into. */
export const STATE_DIR = SHOW_FOLDER_STATE_NAME;
export const STATE_FILE = "state.json";
/** Files looked at between two turns of the event loop when listing changes. */
const YIELD_EVERY_FILES = 256;

const stateSchema = z.strictObject({
  version: z.literal(1),
  base: z.int().nonnegative(),
  files: z.record(z.string().min(1), z.string().regex(SHA256_HEX)),
});
export type ShowFolderState = z.infer<typeof stateSchema>;

/** Where a line for the person goes (links and special files left out of a push); stderr by default. */
export type Warn = (line: string) => void;
const warnOnStderr: Warn = (line) => process.stderr.write(line);

/** A file that differs from the base: added or changed with its chunks, or deleted (file null). */
export type LocalChange = { path: string; kind: "added" | "changed" | "deleted"; file: ChunkedFile | null };

const list = (paths: readonly string[]) => paths.map((p) => JSON.stringify(p)).join(", ");

/** What applyPull did; `kept`: files the operator changed during the pull, left as they were. */
export type PullApplied = { base: number; written: string[]; deleted: string[]; kept: KeptFile[] };

export type ApplyPullOptions = {
  progressFor?: ProgressFor;
  /** The list is every file at the head (a pull from 0): see applyPull. */
  full?: boolean;
  /** Called just before each file is checked and put in place or deleted (tests land an edit there). */
  beforePlace?: (path: string) => void | Promise<void>;
};

export class ShowFolder {
  private constructor(
    readonly dir: string,
    private state: ShowFolderState,
  ) {}

  /** The folder at `dir` with its recorded state; a folder never pulled (or not made yet) is at revision 0 with no files. */
  static open(dir: string): ShowFolder {
    const file = join(dir, STATE_DIR, STATE_FILE);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new ShowFolder(dir, { version: 1, base: 0, files: {} });
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new ShowFolderStateDamaged(file, "not JSON", error);
    }
    const parsed = stateSchema.safeParse(json);
    if (!parsed.success) {
      const why = parsed.error.issues.map((issue) => `${issue.path.join(".") || "the whole file"}: ${issue.message}`).join("; ");
      throw new ShowFolderStateDamaged(file, why, parsed.error);
    }
    return new ShowFolder(dir, parsed.data);
  }

  /** The revision this folder was last in step with. */
  get base(): number {
    return this.state.base;
  }

  /** SHA-256 of every file as of the base, by path. */
  get recorded(): Readonly<Record<string, string>> {
    return this.state.files;
  }

  /**
   * Every difference between the folder and its base, sorted by path; paths `.understudyignore` matches are
   * left out. Links and special files are left out too, named in one `warn` line. With a `cache`, files
   * unchanged since an earlier scan are not read again.
   */
  async changes(options: { warn?: Warn; cache?: FileHashCache } = {}): Promise<LocalChange[]> {
    const { warn = warnOnStderr, cache } = options;
    const ignored = loadIgnoreRule(this.dir);
    const { files, skipped } = this.scan();
    const shown = skipped.filter((path) => !ignored(path));
    if (shown.length > 0) warn(`Skipped ${shown.length === 1 ? "1 entry that is" : `${shown.length} entries that are`} not a regular file or folder (links are never followed): ${list(shown)}\n`);
    const present = new Set(files.filter((path) => !ignored(path)));
    cache?.keepOnly(new Set([...present].map((path) => join(this.dir, path))));
    const out: LocalChange[] = [];
    let looked = 0;
    for (const path of present) {
      // Remembered hashes answer without I/O, so nothing else would hand the event loop back in a large folder.
      if (++looked % YIELD_EVERY_FILES === 0) await nextTurn();
      const recorded = this.state.files[path];
      const file = cache ? await cache.chunk(join(this.dir, path)) : await chunkFile(join(this.dir, path));
      if (recorded === undefined) out.push({ path, kind: "added", file });
      else if (recorded !== file.hash) out.push({ path, kind: "changed", file });
    }
    for (const path of Object.keys(this.state.files)) {
      if (!present.has(path) && !ignored(path)) out.push({ path, kind: "deleted", file: null });
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /**
   * Writes what the server sent. Refuses, before writing anything: a list that is not what a main
   * would send (core/show-manifest.ts); a path that is not a valid show-file path or is in
   * `.understudy`; a path that would go through a link or land on a folder; a file changed here
   * since the base whose server version differs from the local one. Each file is looked at again
   * just before it is put in place: one the operator changed meanwhile is kept, and the incoming
   * version saved beside it (`kept`, pull-placement.ts). The base moves to the head only when
   * everything was placed; the files placed are recorded either way (a pull cut short too), so
   * they never show as the operator's own changes.
   *
   * `full`: the list is every file of the head (a pull from 0 because the server does not know
   * this folder's base); files recorded here but not on the server stop being recorded.
   */
  async applyPull(result: PullResult, fetch: ChunkFetcher, options: ApplyPullOptions = {}): Promise<PullApplied> {
    const { full = false, beforePlace } = options;
    const incoming = checkedPullList(result).map((c) => ({ path: c.path, content: "deleted" in c ? null : { size: c.size, chunks: c.chunks } }));
    assertNoShowPathCollisions(incoming.filter((c) => c.content !== null).map((c) => c.path));
    const deleting = new Set(incoming.filter((c) => c.content === null).map((c) => c.path));
    const plan = [];
    for (const change of incoming) {
      this.checkAncestors(change.path, change.content !== null, deleting);
      plan.push({ ...change, theirs: change.content === null ? null : fileHashOfChunks(change.content.chunks), local: await checkLocal(this.dir, change.path, wallClock) });
    }
    const blocked = plan.find((step) => step.content !== null && step.local.hash === "other");
    if (blocked) throw new PullTargetBlocked(this.dir, blocked.path, "it is a folder or a link");
    // A file moved out of the folder is brought back: that loses nothing, and it is how the refusal's advice goes on.
    const inTheWay = plan.filter((step) => step.local.hash !== "other" && step.local.hash !== null && step.local.hash !== (this.state.files[step.path] ?? null) && step.local.hash !== step.theirs);
    if (inTheWay.length > 0) throw new LocalChangesInTheWay(this.dir, inTheWay.map((step) => step.path).sort(), this.state.base);

    const files: Record<string, string> = full ? {} : { ...this.state.files };
    const written: string[] = [];
    const deleted: string[] = [];
    const kept: KeptFile[] = [];
    const keep = (path: string, savedAs: string | null) => {
      kept.push({ path, savedAs });
      const recorded = this.state.files[path];
      if (recorded === undefined) delete files[path];
      else files[path] = recorded;
    };
    const checked = new Map<string, CheckedLocal>();
    const toDelete: string[] = [];
    const toWrite: FileToWrite[] = [];
    for (const step of plan) {
      if (step.theirs === null) {
        // Nothing here, or not a show file (left alone): no longer recorded. A file is recorded as gone once it is.
        if (step.local.hash !== null && step.local.hash !== "other") toDelete.push(step.path);
        else delete files[step.path];
      } else if (step.local.hash === step.theirs) files[step.path] = step.theirs;
      else toWrite.push({ path: step.path, size: step.content!.size, chunks: step.content!.chunks, hash: step.theirs });
      checked.set(step.path, step.local);
    }
    const place = async (file: FileToWrite, from: string) => {
      await beforePlace?.(file.path);
      const savedAs = await placeChecked(this.dir, STATE_DIR, file.path, from, checked.get(file.path)!, result.head);
      if (savedAs !== null) return keep(file.path, savedAs);
      files[file.path] = file.hash;
      written.push(file.path);
    };
    try {
      // Deletions first: a file may give way to a folder of the same name.
      for (const path of toDelete) {
        await beforePlace?.(path);
        if (!(await deleteChecked(this.dir, path, checked.get(path)!))) {
          keep(path, null);
          continue;
        }
        delete files[path];
        this.removeEmptyFolders(path);
        deleted.push(path);
      }
      await downloadFiles(this.dir, STATE_DIR, toWrite, fetch, place, options.progressFor);
    } finally {
      // What was placed is recorded even when the pull stops part way; the base moves only when all of it was.
      const complete = kept.length === 0 && deleted.length === toDelete.length && written.length === toWrite.length;
      this.record({ version: 1, base: complete ? result.head : full ? 0 : this.state.base, files });
    }
    return { base: this.state.base, written, deleted, kept: kept.sort((a, b) => (a.path < b.path ? -1 : 1)) };
  }

  /**
   * Records a push the server took as revision `rev` (null: the server held
   * every change already and wrote none). The base moves to `rev` only when no
   * one else pushed between (rev = base + 1); otherwise the caller pulls from
   * the old base, which brings the others' changes (the pushed files already
   * match and are not in the way). Returns whether the folder is now in step.
   */
  recordPush(rev: number | null, pushed: readonly LocalChange[]): boolean {
    const files = { ...this.state.files };
    for (const change of pushed) {
      if (change.file === null) delete files[change.path];
      else files[change.path] = change.file.hash;
    }
    const inStep = rev !== null && rev === this.state.base + 1;
    this.record({ version: 1, base: inStep ? rev : this.state.base, files });
    return inStep;
  }

  private record(state: ShowFolderState): void {
    writeFileAtomic(join(this.dir, STATE_DIR, STATE_FILE), `${JSON.stringify(state, null, 1)}\n`);
    this.state = state;
  }

  /** Regular files under the folder, relative with forward slashes; links and special files are not show files (`skipped`). */
  private scan(): { files: string[]; skipped: string[] } {
    const files: string[] = [];
    const skipped: string[] = [];
    const walk = (relative: string) => {
      for (const entry of readdirSync(join(this.dir, relative), { withFileTypes: true })) {
        const path = relative === "" ? entry.name : `${relative}/${entry.name}`;
        if (relative === "" && entry.name === STATE_DIR) continue;
        if (entry.isDirectory()) walk(path);
        else if (entry.isFile()) files.push(path);
        else skipped.push(path);
      }
    };
    walk("");
    return { files, skipped: skipped.sort() };
  }

  /** Every folder on the way to `path` must be a real folder here (a link could lead outside). */
  private checkAncestors(path: string, writing: boolean, deleting: ReadonlySet<string>): void {
    const segments = path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const ancestor = segments.slice(0, i).join("/");
      const stats = lstatOrNull(join(this.dir, ancestor));
      if (stats === null) return;
      if (stats.isDirectory()) continue;
      if (stats.isSymbolicLink()) throw new PullTargetBlocked(this.dir, path, `${JSON.stringify(ancestor)} is a link`);
      // A file where a folder should be: fine when this pull deletes it, or when there is nothing to delete below it.
      if (!writing || (stats.isFile() && deleting.has(ancestor))) return;
      throw new PullTargetBlocked(this.dir, path, `${JSON.stringify(ancestor)} is a file`);
    }
  }

  private removeEmptyFolders(path: string): void {
    const segments = path.split("/");
    for (let i = segments.length - 1; i > 0; i--) {
      const folder = join(this.dir, segments.slice(0, i).join("/"));
      if (readdirSync(folder).length > 0) return;
      rmdirSync(folder);
    }
  }
}

/**
 * The server's list, refused unless it is what a main would send (the check the main makes of a
 * push, core/show-manifest.ts): valid paths outside `.understudy`, each once, sizes their chunks
 * can hold. Checked before a byte is written.
 */
function checkedPullList(result: PullResult): PullResult["changes"] {
  for (const change of result.changes) {
    const problem = showPathProblem(change.path);
    if (problem !== undefined) throw new InvalidShowPath(change.path, problem);
  }
  const problem = manifestProblem(result.changes, CHUNK_BYTES, "pull");
  if (problem !== undefined) throw new PullListRefused(problem.problem);
  return result.changes;
}

/** Makes `dir` if it is missing (pull into a new folder). */
export function ensureFolder(dir: string): void {
  mkdirSync(dir, { recursive: true });
}
