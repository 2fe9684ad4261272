/**
 * The show file's history for the Synced storage panel: read from this
 * server's own store, or asked of the main on `/files` (the same `log`
 * request `understudy log` makes).
 */
import type { HostPort } from "../core/config.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import { callOnce } from "../net/peer-requests.ts";
import { logResult, type LogEntry } from "./show-file-protocol.ts";
import type { RevisionInfo } from "../store/show-file-store.ts";

/** A page waits this long at most for the main's answer. */
const HISTORY_TIMEOUT_MS = 3000;

export function logEntryOf(r: RevisionInfo): LogEntry {
  return { rev: r.rev, message: r.message, author: r.author, created: new Date(r.created).toISOString(), files: r.changes };
}

export function fetchShowFileLog(net: PeerDialer, at: HostPort, limit: number): Promise<LogEntry[]> {
  return callOnce(net, at, "/files", { method: "log", params: { limit }, schema: logResult, timeoutMs: HISTORY_TIMEOUT_MS });
}
