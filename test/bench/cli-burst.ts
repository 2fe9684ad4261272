/**
 * The hub bench's command-line burst (issue 20): `understudy pub --count N` -> client P -> main ->
 * client S -> `understudy sub`, against `mosquitto_pub -l` (N lines on stdin) -> mosquitto ->
 * `mosquitto_sub`, QoS 0. Timed from spawning the publishing command to the Nth line on the
 * subscribing command's stdout, so both sides pay their command's start (as a script would).
 * Whole means every line arrived, in order, once.
 */
import type { Subprocess } from "bun";

export type CliBurstResult = { ms: number; ok: boolean; lines: number };

/** Reads `proc`'s stdout line by line into `lines`; `onLine` after each. */
function collectLines(proc: Subprocess<"ignore", "pipe", "inherit">, lines: string[], onLine: () => void): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  return (async () => {
    for await (const chunk of proc.stdout) {
      const text = rest + decoder.decode(chunk, { stream: true });
      const parts = text.split("\n");
      rest = parts.pop()!;
      for (const part of parts) lines.push(part);
      onLine();
    }
  })();
}

export type CliSide = {
  /** The subscribing command, printing one line per message on `filter`. */
  subscriber(filter: string): string[];
  /** Publishes one warm-up message on `topic` (a command that exits). */
  warm(topic: string): string[];
  /** Starts the burst of `count` on `topic`: the command and what it reads on stdin (or null). */
  burst(topic: string, count: number): { cmd: string[]; stdin: Uint8Array | null };
  /** The message number in one line the subscriber printed (to check order), or null. */
  seqOf(line: string): number | null;
};

const PAD = "p".repeat(100);

export function understudySide(bin: string, sub: string, pub: string, keyFile: string): CliSide {
  const node = (address: string) => ["--node", address, "--key", keyFile];
  return {
    subscriber: (filter) => [bin, "sub", filter, ...node(sub)],
    warm: (topic) => [bin, "pub", topic, "{}", ...node(pub)],
    burst: (topic, count) => ({ cmd: [bin, "pub", topic, JSON.stringify({ pad: PAD }), "--count", String(count), ...node(pub)], stdin: null }),
    seqOf: (line) => (JSON.parse(line) as { seq: number }).seq,
  };
}

export function mosquittoSide(port: number): CliSide {
  const at = ["-h", "127.0.0.1", "-p", String(port), "-q", "0"];
  return {
    subscriber: (filter) => ["mosquitto_sub", ...at, "-t", filter],
    warm: (topic) => ["mosquitto_pub", ...at, "-t", topic, "-m", "{}"],
    burst: (topic, count) => {
      const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ seq: i + 1, pad: PAD })).join("\n");
      return { cmd: ["mosquitto_pub", ...at, "-t", topic, "-l"], stdin: new TextEncoder().encode(`${lines}\n`) };
    },
    seqOf: (line) => (JSON.parse(line) as { seq?: number }).seq ?? null,
  };
}

let run = 0;

/** One burst of `count` through `side`; gives up after `limitMs` (then not whole). */
export async function cliBurst(side: CliSide, count: number, limitMs: number): Promise<CliBurstResult> {
  const base = `cli/r${++run}-${process.pid}`;
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  const subscriber = Bun.spawn(side.subscriber(`${base}/#`), { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const reading = collectLines(subscriber, lines, () => wake?.());
  const until = async (done: () => boolean, ms: number) => {
    const end = performance.now() + ms;
    while (!done() && performance.now() < end) {
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), Bun.sleep(Math.max(1, Math.min(100, end - performance.now())))]);
      wake = null;
    }
  };
  try {
    // Live once a warm-up message comes through (the subscription reached the broker).
    const liveBy = performance.now() + 15_000;
    while (lines.length === 0 && performance.now() < liveBy) {
      await Bun.spawn(side.warm(`${base}/warm`), { stdout: "ignore", stderr: "inherit" }).exited;
      await until(() => lines.length > 0, 300);
    }
    if (lines.length === 0) return { ms: Number.NaN, ok: false, lines: 0 };
    await Bun.sleep(200);
    const warm = lines.length;
    const { cmd, stdin } = side.burst(`${base}/x`, count);
    const start = performance.now();
    const publisher = Bun.spawn(cmd, { stdin: stdin ? "pipe" : "ignore", stdout: "ignore", stderr: "inherit" });
    if (stdin && publisher.stdin) {
      publisher.stdin.write(stdin);
      await publisher.stdin.end();
    }
    await until(() => lines.length - warm >= count, limitMs);
    const ms = performance.now() - start;
    await publisher.exited;
    await Bun.sleep(100);
    const burst = lines.slice(warm).filter((line) => line.length > 0);
    const ok = burst.length === count && burst.every((line, i) => side.seqOf(line) === i + 1);
    return { ms, ok, lines: burst.length };
  } finally {
    subscriber.kill();
    await reading.catch(() => {});
  }
}
