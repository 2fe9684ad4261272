/**
 * What the store benchmark measures besides wall time: CPU seconds of running
 * processes (from /proc, Linux) and of finished commands (their resource
 * usage), and heartbeat gaps as the peers see them.
 */
import { readFileSync } from "node:fs";
import type { Subprocess } from "bun";

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds of a running process, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name is in parentheses and may hold spaces: count fields after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** User + system CPU seconds of a finished command. */
export function commandCpuSeconds(proc: Subprocess): number {
  const cpu = proc.resourceUsage()?.cpuTime;
  return cpu ? Number(cpu.user + cpu.system) / 1e6 : Number.NaN;
}

/**
 * Polls `/api/status` of each machine every `everyMs` and keeps, per machine, the longest
 * silence it reported from the peer named `from` (lastHeardMsAgo). With heartbeats every H ms,
 * the longest silence minus H bounds the sender's send jitter from above (the receiver's own
 * stalls count too).
 */
export class HeartbeatGaps {
  private readonly longest = new Map<string, number>();
  private running = true;
  private readonly done: Promise<void>;

  constructor(watch: { ui: string; from: string; label: string }[], everyMs = 50) {
    this.done = (async () => {
      while (this.running) {
        await Promise.all(
          watch.map(async ({ ui, from, label }) => {
            const status = (await fetch(`${ui}/api/status`).then((r) => r.json(), () => null)) as { failover?: { peers: { name: string; lastHeardMsAgo: number }[] } } | null;
            const heard = status?.failover?.peers.find((p) => p.name === from)?.lastHeardMsAgo;
            if (heard !== undefined) this.longest.set(label, Math.max(this.longest.get(label) ?? 0, heard));
          }),
        );
        await Bun.sleep(everyMs);
      }
    })();
  }

  /** Stops polling; the longest silence per label, in ms. */
  async stop(): Promise<Map<string, number>> {
    this.running = false;
    await this.done;
    return this.longest;
  }
}
