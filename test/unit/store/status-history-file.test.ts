import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadStatusHistory, saveStatusHistory, STATUS_HISTORY_FILE } from "../../../src/store/status-history-file.ts";
import { createLogger } from "../../../src/log.ts";
import { tempDir } from "../../support/temp-dirs.ts";

const silent = createLogger(() => "json", () => {});

test("saved history loads back; none, or an unreadable or oversized file, loads as nothing", () => {
  const dir = tempDir();
  expect(loadStatusHistory(dir)).toBeNull();
  const history = { failovers: 2, failbacks: 1, records: [{ at: "2026-11-30T10:00:01.000Z", server: "backup" as const, tookMs: 1040, why: "The main server stopped answering." }] };
  saveStatusHistory(dir, history, silent);
  expect(loadStatusHistory(dir)).toEqual(history);
  writeFileSync(join(dir, STATUS_HISTORY_FILE), "{not json");
  expect(loadStatusHistory(dir)).toBeNull();
  writeFileSync(join(dir, STATUS_HISTORY_FILE), JSON.stringify({ ...history, records: new Array(500).fill(history.records[0]) }));
  expect(loadStatusHistory(dir)).toBeNull();
});

test("a failed save is logged, never thrown", () => {
  const warned: string[] = [];
  const log = createLogger(() => "json", (line: string) => warned.push(line));
  saveStatusHistory("/proc/no-such-dir/understudy", { failovers: 0, failbacks: 0, records: [] }, log);
  expect(warned.join("")).toContain("status history not saved");
});
