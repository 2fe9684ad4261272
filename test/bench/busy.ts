/**
 * `BUSY=n`: n processes spinning on the CPU beside a benchmark, as the other engineers' work does
 * on a shared machine. Each stops by itself after `maxMs` should the bench die before `stop`.
 */
import type { Subprocess } from "bun";

export const BUSY = Number(process.env.BUSY ?? 0);

export function startBusy(n = BUSY, maxMs = 3_600_000): () => Promise<void> {
  const procs: Subprocess[] = [];
  for (let i = 0; i < n; i++) {
    procs.push(Bun.spawn([process.execPath, "-e", `const end = Date.now() + ${maxMs}; while (Date.now() < end) {}`], { stdout: "ignore", stderr: "ignore" }));
  }
  return async () => {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
  };
}

/** The 1-minute load average, for the results table. */
export async function loadAverage(): Promise<string> {
  try {
    return (await Bun.file("/proc/loadavg").text()).split(" ")[0] ?? "?";
  } catch {
    return "?";
  }
}
