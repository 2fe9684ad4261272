/**
 * The show file's history for the Synced storage panel: read from this
 * server's own store, or asked of the main on `/files` (the same `log`
 * request `understudy log` makes).
 */
import type { HostPort } from "../core/config.ts";
import { AppError } from "../core/errors.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import { callOnce } from "../net/peer-requests.ts";
import { logResult, type LogEntry } from "./show-file-protocol.ts";
import type { RevisionInfo, ShowFileStore } from "../store/show-file-store.ts";
import type { FilesMode } from "./files-service.ts";

/** A page waits this long at most for the main's answer. */
const HISTORY_TIMEOUT_MS = 3000;

export function logEntryOf(r: RevisionInfo): LogEntry {
  return { rev: r.rev, message: r.message, author: r.author, created: new Date(r.created).toISOString(), files: r.changes };
}

export function fetchShowFileLog(net: PeerDialer, at: HostPort, limit: number): Promise<LogEntry[]> {
  return callOnce(net, at, "/files", { method: "log", params: { limit }, schema: logResult, timeoutMs: HISTORY_TIMEOUT_MS });
}

/**
 * The last revisions for the Synced storage panel: from this server's own store (`store`), or from the
 * main where show-file calls go now (`route`); `readOnly` by the one rule (core/routing.ts filesRoute).
 */
export async function showFileHistory(route: FilesMode, store: ShowFileStore | null, net: PeerDialer, limit: number): Promise<{ entries: LogEntry[]; readOnly: boolean }> {
  if (store) return { entries: store.log(limit).map(logEntryOf), readOnly: route.kind === "read-only" };
  if (route.kind === "forward") return { entries: await fetchShowFileLog(net, route.to, limit), readOnly: false };
  if (route.kind === "read-only") return { entries: [], readOnly: true };
  throw new AppError("NO_SERVER", "No server answers yet: check the main server's IP on the setup page.", { status: 503 });
}
