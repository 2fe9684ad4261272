/**
 * One process per data dir and per port (issue 18 finding 9): a second
 * understudy on a data dir or a setup-pages port that another one holds
 * stops at once with a line naming what is held and by whom.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { executable } from "../support/executable.ts";
import { startMachine, tempDir, type MachineProcess } from "../support/machine-process.ts";

const running: MachineProcess[] = [];
// The executable is built once per run: not inside the first test's time.
beforeAll(() => executable().then(() => undefined), 180_000);
afterAll(async () => {
  for (const m of running) if (m.proc.exitCode === null) await m.stop();
});

async function secondStart(args: string[]) {
  const bin = await executable();
  const proc = Bun.spawn([bin, "run", "--log", "json", "--mqtt-listen", "off", "--discovery", "off", ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: "/usr/bin:/bin", HOME: tempDir() },
  });
  // Bounded: a second process that started would otherwise run until the test's timeout.
  const timer = setTimeout(() => proc.kill(9), 15_000);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, err: await new Response(proc.stderr).text(), out: await new Response(proc.stdout).text() };
}

test("a second start on the same data dir fails, naming the data dir and the process that holds it", async () => {
  const first = await startMachine([]);
  running.push(first);
  const second = await secondStart(["--data", first.dataDir, "--ui-listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0"]);
  expect(second.code).not.toBe(0);
  expect(second.err.trim().split("\n")).toHaveLength(1);
  expect(second.err).toContain(first.dataDir);
  expect(second.err).toContain(`process ${first.proc.pid}`);
  expect(second.out).not.toContain('"started"');
  // The first one still answers; its lock is gone once it stops.
  expect((await fetch(`${first.ui}/api/status`)).status).toBe(200);
  expect((await first.stop()).code).toBe(0);
  expect(existsSync(join(first.dataDir, "understudy.lock"))).toBe(false);
});

test("a lock left by a killed process does not stop the next start", async () => {
  const first = await startMachine([]);
  first.proc.kill(9);
  await first.proc.exited;
  expect(existsSync(join(first.dataDir, "understudy.lock"))).toBe(true);
  const again = await startMachine([], { dataDir: first.dataDir });
  running.push(again);
  expect((await fetch(`${again.ui}/api/status`)).status).toBe(200);
});

test("a second start on a setup-pages port in use fails, naming the port; requests keep reaching the first", async () => {
  const first = await startMachine([]);
  running.push(first);
  const port = new URL(first.ui).port;
  const second = await secondStart(["--data", tempDir(), "--ui-listen", `127.0.0.1:${port}`, "--peer-listen", "127.0.0.1:0"]);
  expect(second.code).not.toBe(0);
  expect(second.err).toContain(`127.0.0.1:${port} (--ui-listen) is already in use by process ${first.proc.pid}`);
  const ids = new Set<string>();
  for (let i = 0; i < 6; i++) ids.add(((await (await fetch(`${first.ui}/api/status`)).json()) as { id: string }).id);
  expect(ids.size).toBe(1);
});
