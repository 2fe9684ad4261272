/**
 * Console benchmark: how long an open page takes to show a failover and a
 * failback. A main, a backup and a client (real executables on loopback,
 * product timings: heartbeat 100 ms, timeout 1000 ms); the live streams
 * (/events) of the backup's and the client's Machines panels are read as a
 * browser would. The main is killed (-9), then restarted; each time is from
 * the fault (or the restart) to the first stream message whose chip reads
 * the new state. TRIALS=n (default 10).
 */
import { Cluster, DEFAULTS } from "../support/cluster.ts";

const TRIALS = Number(process.env.TRIALS ?? 10);

/** Reads an SSE stream, remembering when each chip text first appeared after `since`. */
function watch(url: string) {
  const controller = new AbortController();
  let text = "";
  let mark = 0;
  const waiters: { chip: string; since: number; resolve: (ms: number) => void }[] = [];
  void (async () => {
    const response = await fetch(url, { signal: controller.signal });
    const reader = response.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += new TextDecoder().decode(value);
      const now = performance.now();
      for (const w of waiters.splice(0)) {
        if (text.slice(mark).includes(`role="status" aria-live="polite">${w.chip}<`)) w.resolve(now - w.since);
        else waiters.push(w);
      }
    }
  })().catch(() => {});
  return {
    /** Resolves with the ms from `since` until a message carries `chip`. */
    until(chip: string, since: number): Promise<number> {
      mark = text.length;
      return new Promise((resolve) => waiters.push({ chip, since, resolve }));
    },
    close: () => controller.abort(),
  };
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
const row = (what: string, xs: number[]) =>
  `| ${what} | ${xs.length} | ${Math.min(...xs).toFixed(0)} | ${percentile(xs, 50).toFixed(0)} | ${percentile(xs, 95).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`;

const results: Record<string, number[]> = { "kill -9 → backup's page reads Backup is active": [], "kill -9 → client's page reads Backup is active": [], "restart → client's page reads Backup is idle": [] };
for (let t = 0; t < TRIALS; t++) {
  const c = await Cluster.start({ ...DEFAULTS, clients: ["control"] });
  try {
    await c.waitAll("linked", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 20_000 });
    const backup = watch(`${c.machine("backup").ui}/events?panel=machines`);
    const client = watch(`${c.machine("control").ui}/events?panel=machines`);
    await Bun.sleep(1500);
    const killedAt = performance.now();
    const seen = [backup.until("Backup is active", killedAt), client.until("Backup is active", killedAt)];
    await c.kill("main");
    const [b, cl] = (await Promise.all(seen)) as [number, number];
    results["kill -9 → backup's page reads Backup is active"]!.push(b);
    results["kill -9 → client's page reads Backup is active"]!.push(cl);
    const restartAt = performance.now();
    const back = client.until("Backup is idle", restartAt);
    await c.restart("main");
    results["restart → client's page reads Backup is idle"]!.push(await back);
    backup.close();
    client.close();
  } finally {
    await c.shutdown();
  }
}
console.log("\n| what | trials | min ms | median ms | p95 ms | max ms |\n|---|---|---|---|---|---|");
for (const [what, xs] of Object.entries(results)) console.log(row(what, xs));
