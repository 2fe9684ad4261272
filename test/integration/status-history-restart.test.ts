/**
 * The status history outlives a restart (issue 18 finding 10): a restarted
 * main said "none seen since this machine started" about the last failover.
 * The real executable, started on a data dir whose history says a failover
 * happened, shows it on its Status panel and counts it in /metrics.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { executable } from "../support/executable.ts";
import { startMachine, tempDir, type MachineProcess } from "../support/machine-process.ts";

const running: MachineProcess[] = [];
// The executable is built once per run: not inside the first test's time.
beforeAll(() => executable().then(() => undefined), 180_000);
afterAll(async () => {
  for (const m of running) if (m.proc.exitCode === null) await m.stop();
});

test("a restarted machine still tells the last failover and its counts", async () => {
  const dataDir = tempDir();
  const kept = {
    failovers: 3,
    failbacks: 2,
    records: [{ at: "2026-12-07T03:58:12.000Z", server: "backup", tookMs: 1040, why: "The main server stopped answering; it was last heard 1040 ms before." }],
  };
  writeFileSync(join(dataDir, "status-history.json"), JSON.stringify(kept));
  const machine = await startMachine([], { dataDir });
  running.push(machine);
  const page = await (await fetch(`${machine.ui}/status`)).text();
  expect(page).toContain("2026-12-07 03:58:12 UTC: the backup server took over. The main server stopped answering; it was last heard 1040 ms before.");
  expect(page).not.toContain("none seen since this machine started");
  const metrics = await (await fetch(`${machine.ui}/metrics`)).text();
  expect(metrics).toMatch(/^understudy_failovers_total 3$/m);
});
