/**
 * What hashing a chunk costs the event loop, inline and through the chunk hasher's worker
 * (src/store/chunk-hasher.ts): CPU of this process's first thread (its event loop) and of the
 * whole process, per MiB, from /proc (Linux). `bun test/bench/store-hash.ts`; CHUNKS (512) × 1 MiB.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chunkHasher } from "../../src/store/chunk-hasher.ts";
import { sha256Hex } from "../../src/store/content-hash.ts";

const CHUNKS = Number(process.env.CHUNKS ?? 512);
const IN_FLIGHT = 8;

function cpuMs(path: string): number {
  const stat = readFileSync(path, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
const eventLoopMs = () => cpuMs(`/proc/${process.pid}/task/${process.pid}/stat`);
const processMs = () => cpuMs(`/proc/${process.pid}/stat`);

const chunks = Array.from({ length: 16 }, () => randomBytes(1024 * 1024));
await chunkHasher.sha256Hex(chunks[0]!);
console.log("| hashing | event loop CPU ms/MiB | process CPU ms/MiB | wall ms/MiB |");
console.log("|---|---|---|---|");
for (const mode of ["inline sha256Hex", "chunk hasher (worker)", "inline sha256Hex", "chunk hasher (worker)"]) {
  const loop0 = eventLoopMs();
  const proc0 = processMs();
  const t0 = performance.now();
  if (mode.startsWith("inline")) for (let i = 0; i < CHUNKS; i++) sha256Hex(chunks[i % 16]!);
  else for (let i = 0; i < CHUNKS; i += IN_FLIGHT) await Promise.all(chunks.slice(i % 16, (i % 16) + IN_FLIGHT).map((c) => chunkHasher.sha256Hex(c)));
  const per = (ms: number) => (ms / CHUNKS).toFixed(2);
  console.log(`| ${mode} | ${per(eventLoopMs() - loop0)} | ${per(processMs() - proc0)} | ${per(performance.now() - t0)} |`);
}
chunkHasher.close();
