/**
 * The show file's history for the Synced storage panel: read from this
 * server's own store, or asked of the main on `/files` (the same `log`
 * request `understudy log` makes).
 */
import { RpcClient } from "../net/rpc.ts";
import { connectSecure, type SecureSocketOptions } from "../net/secure-socket.ts";
import { logResult, type LogEntry } from "./show-file-protocol.ts";
import type { RevisionInfo } from "../store/show-file-store.ts";

/** A page waits this long at most for the main's answer. */
const HISTORY_TIMEOUT_MS = 3000;

export function logEntryOf(r: RevisionInfo): LogEntry {
  return { rev: r.rev, message: r.message, author: r.author, created: new Date(r.created).toISOString(), files: r.changes };
}

export async function fetchShowFileLog(address: string, secure: SecureSocketOptions, limit: number): Promise<LogEntry[]> {
  const client = new RpcClient();
  const connection = await connectSecure(address, "/files", secure, () => client.events());
  client.attach(connection);
  try {
    return await client.call("log", { limit }, logResult, HISTORY_TIMEOUT_MS);
  } finally {
    client.close();
  }
}
