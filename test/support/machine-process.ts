/**
 * One machine as a separate process of the real executable, on loopback ports
 * chosen by the OS (port 0): the test reads the bound addresses from the
 * "started" JSON log line.
 */
import type { Subprocess } from "bun";
import { executable } from "./executable.ts";
import { tempDir } from "./temp-dirs.ts";
import { waitFor } from "./wait-for.ts";
import { eachLine } from "./stream-lines.ts";

export type MachineProcess = {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  dataDir: string;
  ui: string;
  peer: string | null;
  lines: Record<string, unknown>[];
  stderr: () => string;
  /** SIGTERM, then waits for the exit; returns the exit code and how long it took. */
  stop(): Promise<{ code: number | null; ms: number }>;
};

export { tempDir };

export async function startMachine(args: string[], opts: { dataDir?: string; env?: Record<string, string>; bin?: string; cwd?: string } = {}): Promise<MachineProcess> {
  const bin = opts.bin ?? (await executable());
  const dataDir = opts.dataDir ?? tempDir();
  const proc = Bun.spawn(
    [bin, "run", "--data", dataDir, "--log", "json", "--ui-listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--mqtt-listen", "off", "--discovery", "off", ...args],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/bin:/bin", HOME: dataDir, ...opts.env }, cwd: opts.cwd },
  );
  const lines: Record<string, unknown>[] = [];
  let errText = "";
  void eachLine(proc.stdout, (line) => {
    try {
      lines.push(JSON.parse(line));
    } catch {
      lines.push({ raw: line });
    }
  });
  void (async () => {
    for await (const chunk of proc.stderr) errText += new TextDecoder().decode(chunk);
  })();
  const started = await waitFor(
    "the machine's started line",
    () => {
      if (proc.exitCode !== null) throw new Error(`exited with ${proc.exitCode}: ${errText}`);
      return lines.find((l) => l.event === "started");
    },
    15_000,
  ).catch((error) => {
    proc.kill(9);
    throw error;
  });
  return {
    proc,
    dataDir,
    ui: started.ui as string,
    peer: (started.peer as string | null) ?? null,
    lines,
    stderr: () => errText,
    async stop() {
      const t0 = performance.now();
      proc.kill("SIGTERM");
      const code = await proc.exited;
      return { code, ms: performance.now() - t0 };
    },
  };
}
