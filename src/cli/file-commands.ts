/**
 * `understudy pull|push|log`: a folder of show files kept in step with the
 * server over the `/files` calls of the peer port. The folder side lives in
 * show-folder.ts; this file parses flags, makes the calls and prints results.
 * Refusals from the server (a push conflict, the read-only message while the
 * backup serves) are passed on with the server's own words.
 */
import { existsSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { AppError } from "../core/errors.ts";
import { defaultConfig } from "../core/config.ts";
import { RemoteError } from "../net/rpc.ts";
import type { ShowFileClient } from "../services/show-file-client.ts";
import { headResult, logResult, type LogEntry } from "../services/show-file-protocol.ts";
import { ensureFolder, ShowFolder } from "../services/show-folder/show-folder.ts";
import { describeKept } from "../services/show-folder/pull-placement.ts";
import { conflictAdvice, connectShowFiles, pushFolder, pushedWords, receivePull, type FolderPushed } from "../services/show-folder/show-transfer.ts";
import type { ProgressFor } from "../services/show-folder/transfer-progress.ts";
import { parseCommand, UsageError } from "./args.ts";
import { DEFAULT_NODE, NODE_FLAGS, nodeDialer, nodeTarget } from "./node-connection.ts";
import { ProgressBar } from "./progress-bar.ts";
import { systemTimers } from "../net/system-time.ts";

export type FileCommandName = "pull" | "push" | "log";

const COMMON_HELP = `Common flags: --node HOST:PORT (default ${DEFAULT_NODE}, this machine's node)
              --key FILE (default DATA/network.key; --data DIR or UNDERSTUDY_DATA)
`;

export const FILE_HELP: Record<FileCommandName, string> = {
  pull: `Usage: understudy pull DIR [--watch [--interval-ms N]] [--node HOST:PORT] [--key FILE]

Brings DIR (made if missing) up to the server's latest revision of the show file.
Files you changed since the last pull or push are never overwritten: if the
server changed them too, the pull is refused, names them, and writes nothing.
A file you save while the pull runs is kept too: the server's version is saved
beside it (NAME.from-revision-N), the pull names it and exits 1, and DIR stays
at its revision until you pull again.
A pull cut short (a dropped link, Ctrl-C) goes on where it stopped when run again.
DIR/.understudy/ records the revision DIR is at; leave it alone.

  --watch            Auto-Pull: keep running and pull every new revision as it arrives (Ctrl-C stops)
  --interval-ms N    how often --watch asks for a new revision (default 1000)

${COMMON_HELP}`,
  push: `Usage: understudy push DIR [-m MESSAGE] [--name NAME] [--node HOST:PORT] [--key FILE]

Sends every file added, changed or deleted in DIR since its revision to the
server as one new revision. If someone else changed one of those files first,
the push is refused (nothing is written): pull first, then push again. Only
pieces of files the server does not have travel; files matched by
DIR/.understudyignore (gitignore syntax) are never pushed.

  -m, --message MESSAGE   what changed, shown by "understudy log"
  --name NAME             the author (default: this machine's host name)

${COMMON_HELP}`,
  log: `Usage: understudy log [--limit N] [--node HOST:PORT] [--key FILE]

Lists the show file's revisions, newest first: revision, time, author, files, message.

  --limit N   how many (1 to 1000, default 50)

${COMMON_HELP}`,
};

/** Where the command prints its result; stdout unless a test listens. */
export type Output = (text: string) => void;
const stdout: Output = (text) => process.stdout.write(text);

export const DEFAULT_WATCH_INTERVAL_MS = 1000;

/** Aborted by Ctrl-C (SIGINT), so `pull --watch` ends between pulls, never in the middle of writing one. */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  return controller.signal;
}

/** A bar on stderr (drawn only on a terminal). */
const bar =
  (label: string): ProgressFor =>
  (total) =>
    new ProgressBar(label, total, process.stderr);

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Runs `understudy NAME ARGV`; returns the exit code, throws AppError (a UsageError for a bad command line). */
export async function fileCommand(name: FileCommandName, argv: string[], out: Output = stdout, signal?: AbortSignal): Promise<number> {
  const command = `understudy ${name}`;
  const extra = {
    pull: { watch: { type: "boolean" }, "interval-ms": { type: "string" } },
    push: { message: { type: "string", short: "m" }, name: { type: "string" } },
    log: { limit: { type: "string" } },
  } as const;
  const arity = name === "log" ? 0 : 1;
  const { values, positionals, help } = parseCommand(command, argv, { ...NODE_FLAGS, ...extra[name] }, { min: arity, max: arity });
  if (help) {
    out(FILE_HELP[name]);
    return 0;
  }
  const options = values as Record<string, unknown>;
  if (name === "log") {
    const limit = options.limit === undefined ? 50 : Number(options.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`${command}: --limit must be a whole number from 1 to 1000, got "${String(options.limit)}"`);
    return withFiles(options, false, (files) => log(files, limit, out));
  }
  const dir = positionals[0]!;
  if (name === "pull") {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`${command}: ${dir} is a file, not a folder`);
    const folder = ShowFolder.open(dir);
    if (options.watch === true) {
      const intervalMs = options["interval-ms"] === undefined ? DEFAULT_WATCH_INTERVAL_MS : Number(options["interval-ms"]);
      if (!Number.isInteger(intervalMs) || intervalMs < 50 || intervalMs > 3_600_000) {
        throw new UsageError(`${command}: --interval-ms must be a whole number from 50 to 3600000, got "${String(options["interval-ms"])}"`);
      }
      // Through the node: it stays connected across a failover, the main may not.
      return withFiles(options, false, (files) => watch(files, folder, intervalMs, signal ?? interruptSignal(), out));
    }
    if (options["interval-ms"] !== undefined) throw new UsageError(`${command}: --interval-ms goes with --watch`);
    return withFiles(options, true, (files) => pull(files, folder, out));
  }
  const message = typeof options.message === "string" ? options.message : "";
  if (message.length > 1000) throw new UsageError(`${command}: -m MESSAGE is longer than 1000 characters`);
  const author = typeof options.name === "string" ? options.name : defaultConfig(hostname()).name;
  if (author.length < 1 || author.length > 128) throw new UsageError(`${command}: --name must be 1 to 128 characters`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${command}: ${dir} is not a folder (pull into it first)`);
  const folder = ShowFolder.open(dir);
  return withFiles(options, true, (files) => push(files, folder, message, author, out));
}

/** Connects to the node's `/files` (or, `direct`, the main's, when the node forwards there), runs `body`, and always closes. */
async function withFiles(options: Record<string, unknown>, direct: boolean, body: (files: ShowFileClient) => Promise<number>): Promise<number> {
  const target = nodeTarget(options);
  // A command is not a machine of the network: a fresh machine key pair per run.
  const files = await connectShowFiles(nodeDialer(target), target.at, direct);
  try {
    return await body(files);
  } finally {
    files.close();
  }
}

async function pull(files: ShowFileClient, folder: ShowFolder, out: Output): Promise<number> {
  // The folder is made only once the server answered: a failed first pull leaves no empty folder behind.
  const applied = await receivePull(files, folder, folder.base, { prepare: () => ensureFolder(folder.dir), progressFor: bar("Pulling") });
  const changed = plural(applied.written.length + applied.deleted.length, "file");
  if (applied.kept.length === 0) {
    out(`${folder.dir} is at revision ${applied.head} (${changed} changed)\n`);
    return 0;
  }
  out(`${folder.dir} pulled revision ${applied.head} in part (${changed} changed). ${describeKept(applied.kept, applied.head, applied.base)}\n`);
  return 1;
}

/**
 * Auto-Pull: pulls, then asks the node for the head every `intervalMs` and pulls each new
 * revision as it appears, until `signal` aborts (Ctrl-C). A refused pull (local changes in
 * the way) is reported and tried again at the next revision; losing the node ends it.
 */
async function watch(files: ShowFileClient, folder: ShowFolder, intervalMs: number, signal: AbortSignal, out: Output): Promise<number> {
  await pull(files, folder, out);
  let seen = folder.base;
  while (!signal.aborted) {
    await sleep(intervalMs, signal);
    if (signal.aborted) break;
    const { rev } = await files.call("head", {}, headResult);
    if (rev === seen) continue;
    seen = rev;
    try {
      await pull(files, ShowFolder.open(folder.dir), out);
    } catch (error) {
      if (!(error instanceof AppError) || error.code === "CONNECTION_LOST") throw error;
      out(`Revision ${rev} not pulled: ${error.message}\n`);
    }
  }
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const cancel = systemTimers.after(ms, done);
    function done() {
      cancel();
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

async function push(files: ShowFileClient, folder: ShowFolder, message: string, author: string, out: Output): Promise<number> {
  let result: FolderPushed | null;
  try {
    result = await pushFolder(files, folder, { message, author }, { progressFor: bar("Pushing"), pullProgressFor: bar("Pulling") });
  } catch (error) {
    if (error instanceof RemoteError && error.code === "PUSH_CONFLICT") throw new AppError(error.code, conflictAdvice(error.message, `run "understudy pull ${folder.dir}"`), { status: error.status, cause: error });
    throw error;
  }
  if (result === null) {
    out(`Nothing to push: no file in ${folder.dir} changed since revision ${folder.base}.\n`);
    return 0;
  }
  out(`${pushedWords(result)}\n`);
  if (result.caughtUp) {
    const { files: pulled, since, head, base, kept } = result.caughtUp;
    const also = pulled === 0 ? "" : `Also pulled ${plural(pulled, "file")} changed by others since revision ${since}; `;
    out(`${also}${folder.dir} is at revision ${base}${head === base ? "" : ` (of ${head})`}\n`);
    if (kept.length > 0) out(`${describeKept(kept, head, base)}\n`);
  }
  return 0;
}

async function log(files: ShowFileClient, limit: number, out: Output): Promise<number> {
  const entries = await files.call("log", { limit }, logResult);
  if (entries.length === 0) out("No revisions yet.\n");
  for (const entry of entries) out(`${formatLogEntry(entry)}\n`);
  return 0;
}

/** One line: revision, time, author, file count, message (newlines folded). */
export function formatLogEntry(entry: LogEntry): string {
  const message = entry.message.replace(/\s*[\r\n]+\s*/g, " ").trim();
  return [`r${entry.rev}`, entry.created, entry.author, plural(entry.files, "file"), message].filter((part) => part !== "").join("  ");
}
