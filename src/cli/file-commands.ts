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
import { validateShowPath } from "../core/show-paths.ts";
import { MAX_RPC_FRAME_BYTES, RemoteError, RpcClient } from "../net/rpc.ts";
import { logResult, MAX_FILE_BYTES, MAX_PUSH_FILES, pullResult, pushResult, type FileChange, type LogEntry, type PushResult } from "../services/show-file-protocol.ts";
import { parseCommand, UsageError } from "./args.ts";
import { connectNode, DEFAULT_NODE, NODE_FLAGS, nodeTarget } from "./node-connection.ts";
import { ensureFolder, ShowFolder, type LocalChange } from "./show-folder.ts";

export type FileCommandName = "pull" | "push" | "log";

const COMMON_HELP = `Common flags: --node HOST:PORT (default ${DEFAULT_NODE}, this machine's node)
              --key FILE (default DATA/network.key; --data DIR or UNDERSTUDY_DATA)
`;

export const FILE_HELP: Record<FileCommandName, string> = {
  pull: `Usage: understudy pull DIR [--node HOST:PORT] [--key FILE]

Brings DIR (made if missing) up to the server's latest revision of the show file.
Files you changed since the last pull or push are never overwritten: if the
server changed them too, the pull is refused, names them, and writes nothing.
DIR/.understudy/ records the revision DIR is at; leave it alone.

${COMMON_HELP}`,
  push: `Usage: understudy push DIR [-m MESSAGE] [--name NAME] [--node HOST:PORT] [--key FILE]

Sends every file added, changed or deleted in DIR since its revision to the
server as one new revision. If someone else changed one of those files first,
the push is refused (nothing is written): pull first, then push again.

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

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Runs `understudy NAME ARGV`; returns the exit code, throws AppError (a UsageError for a bad command line). */
export async function fileCommand(name: FileCommandName, argv: string[], out: Output = stdout): Promise<number> {
  const command = `understudy ${name}`;
  const extra = {
    pull: {},
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
    return withFiles(options, (files) => log(files, limit, out));
  }
  const dir = positionals[0]!;
  if (name === "pull") {
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`${command}: ${dir} is a file, not a folder`);
    const folder = ShowFolder.open(dir);
    return withFiles(options, (files) => pull(files, folder, out));
  }
  const message = typeof options.message === "string" ? options.message : "";
  if (message.length > 1000) throw new UsageError(`${command}: -m MESSAGE is longer than 1000 characters`);
  const author = typeof options.name === "string" ? options.name : defaultConfig(hostname()).name;
  if (author.length < 1 || author.length > 128) throw new UsageError(`${command}: --name must be 1 to 128 characters`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${command}: ${dir} is not a folder (pull into it first)`);
  const folder = ShowFolder.open(dir);
  return withFiles(options, (files) => push(files, folder, message, author, out));
}

/** Connects to the node's `/files`, runs `body`, and always closes. */
async function withFiles(options: Record<string, unknown>, body: (files: RpcClient) => Promise<number>): Promise<number> {
  const target = nodeTarget(options);
  const files = new RpcClient();
  files.attach(await connectNode(target, "/files", () => files.events()));
  try {
    return await body(files);
  } finally {
    files.close();
  }
}

async function pull(files: RpcClient, folder: ShowFolder, out: Output): Promise<number> {
  const result = await files.call("pull", { since: folder.base }, pullResult);
  ensureFolder(folder.dir); // only once the server answered: a failed first pull leaves no empty folder behind
  const applied = folder.applyPull(result);
  out(`${folder.dir} is at revision ${result.head} (${plural(applied.written.length + applied.deleted.length, "file")} changed)\n`);
  return 0;
}

async function push(files: RpcClient, folder: ShowFolder, message: string, author: string, out: Output): Promise<number> {
  const changes = folder.changes();
  if (changes.length === 0) {
    out(`Nothing to push: no file in ${folder.dir} changed since revision ${folder.base}.\n`);
    return 0;
  }
  const base = folder.base;
  const params = { base, changes: toWire(changes), message, author };
  checkPushSize(Buffer.byteLength(JSON.stringify({ id: 1, method: "push", params })), changes.length);
  let result: PushResult;
  try {
    result = await files.call("push", params, pushResult);
  } catch (error) {
    if (error instanceof RemoteError && error.code === "PUSH_CONFLICT") {
      throw new AppError(
        error.code,
        `${error.message} Pull first: move your copies of those files out of ${folder.dir}, run "understudy pull ${folder.dir}", put your changes back into the pulled files, and push again.`,
        { status: error.status, cause: error },
      );
    }
    throw error;
  }
  const inStep = folder.recordPush(result.rev, changes);
  const backup = { backup: "the backup has it", behind: "the backup is behind", none: "no backup" }[result.replicated];
  out(`Pushed revision ${result.rev} (${plural(changes.length, "file")}); ${backup}\n`);
  if (!inStep) {
    // Others pushed between our base and our revision: bring their changes in now, or our next push would conflict with our own.
    const caughtUp = await files.call("pull", { since: base }, pullResult);
    const applied = folder.applyPull(caughtUp);
    const theirs = applied.written.length + applied.deleted.length;
    out(`Also pulled ${plural(theirs, "file")} changed by others since revision ${base}; ${folder.dir} is at revision ${caughtUp.head}\n`);
  }
  return 0;
}

/** Show files are small and checked before anything is sent, naming the file that does not fit. */
function toWire(changes: readonly LocalChange[]): FileChange[] {
  if (changes.length > MAX_PUSH_FILES) throw new AppError("PUSH_TOO_LARGE", `${changes.length} files changed; one push carries at most ${MAX_PUSH_FILES}. Move some out of the folder, push, then move them back and push again.`, { status: 413 });
  return changes.map((change) => {
    validateShowPath(change.path);
    if (change.content !== null && change.content.length > MAX_FILE_BYTES) {
      const mib = (change.content.length / 1024 / 1024).toFixed(1);
      throw new AppError("SHOW_FILE_TOO_LARGE", `${JSON.stringify(change.path)} is ${mib} MiB; a show file may be at most ${MAX_FILE_BYTES / 1024 / 1024} MiB. Large media belong in the Asset Hub.`, { status: 413 });
    }
    return { path: change.path, content: change.content === null ? null : Buffer.from(change.content).toString("base64") };
  });
}

function checkPushSize(encodedBytes: number, count: number): void {
  // The frame is sealed and sent as one message; the server refuses anything larger.
  if (encodedBytes <= MAX_RPC_FRAME_BYTES - 1024) return;
  const mib = (encodedBytes / 1024 / 1024).toFixed(1);
  throw new AppError(
    "PUSH_TOO_LARGE",
    `The ${plural(count, "changed file")} come to ${mib} MiB once encoded; one push carries at most ${MAX_RPC_FRAME_BYTES / 1024 / 1024} MiB. Move some of them out of the folder, push, then move them back and push again.`,
    { status: 413 },
  );
}

async function log(files: RpcClient, limit: number, out: Output): Promise<number> {
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
