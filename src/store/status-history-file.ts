/**
 * The failover counts and the last failover records, kept in the data dir so a
 * restarted machine still tells what happened before it (issue 18 finding 10).
 * Bounded by its schema (core/status-history.ts); an unreadable file is
 * ignored: the history is for the operator's eyes, never for a decision.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { durableHistorySchema, type DurableHistory } from "../core/status-history.ts";
import type { Logger } from "../log.ts";
import { writeFileAtomic } from "./atomic-file.ts";

export const STATUS_HISTORY_FILE = "status-history.json";

export function loadStatusHistory(dataDir: string): DurableHistory | null {
  const path = join(dataDir, STATUS_HISTORY_FILE);
  if (!existsSync(path)) return null;
  try {
    const parsed = durableHistorySchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Saves it; a failed write (a full disk) is logged, never thrown: it must not stop the sampling. */
export function saveStatusHistory(dataDir: string, history: DurableHistory, log: Logger): void {
  try {
    writeFileAtomic(join(dataDir, STATUS_HISTORY_FILE), `${JSON.stringify(history)}\n`, 0o600);
  } catch (error) {
    log.warn("status history not saved", { message: (error as Error).message });
  }
}
