/**
 * Polls one machine's `GET /api/status` and appends one JSON line per poll to
 * a file: `{ "t": Date.now(), "status": {...} }`, or `{ "t", "error" }` when it
 * does not answer. For machines the test process cannot reach (inside a
 * network namespace): run this in the namespace, read the file afterwards.
 * Wall-clock time, so lines written in several namespaces line up. Bounded:
 * it stops after DURATION_MS on its own.
 *
 *   bun test/support/status-poller.ts http://127.0.0.1:7400 /tmp/main.jsonl 50 60000
 */
import { appendFileSync, readFileSync } from "node:fs";

export type StatusPoll = { t: number; status?: { chip?: string; failover?: { state?: string; epoch?: number; activeServer?: string | null; hubConnected?: boolean } | null }; error?: string };

/** Every poll written to `file` so far (a half-written last line is left out). */
export function readPolls(file: string): StatusPoll[] {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const polls: StatusPoll[] = [];
  for (const line of text.split("\n")) {
    try {
      if (line.trim()) polls.push(JSON.parse(line) as StatusPoll);
    } catch {
      // the line being written right now
    }
  }
  return polls;
}

if (import.meta.main) {
  const [url, file, everyMs, durationMs] = process.argv.slice(2);
  if (!url || !file || !Number(everyMs) || !Number(durationMs)) {
    console.error("usage: status-poller.ts UI_URL OUT_FILE EVERY_MS DURATION_MS");
    process.exit(2);
  }
  const until = Date.now() + Number(durationMs);
  while (Date.now() < until) {
    const t = Date.now();
    let line: StatusPoll;
    try {
      const response = await fetch(`${url}/api/status`, { signal: AbortSignal.timeout(1_000) });
      line = { t, status: await response.json() };
    } catch (error) {
      line = { t, error: (error as Error).message };
    }
    appendFileSync(file, `${JSON.stringify(line)}\n`);
    await Bun.sleep(Math.max(0, t + Number(everyMs) - Date.now()));
  }
}
