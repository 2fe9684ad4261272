/**
 * `bun run bench folder-sync`: does the node's own show-folder work (the
 * Synced storage panel) hold up its event loop, and so its heartbeats?
 *
 * A timer due every TICK_MS measures how late it fires (event-loop lag) while
 * the node process lists a folder of SIZE_MIB (first scan, then a rescan with
 * remembered hashes), pushes it from a client's page and pulls it into an
 * empty folder; beside it, the same folder hashed the way the command line
 * did before (synchronous reads), for scale. The client runs in this process,
 * the main in its own (the executable), on loopback; folders in temp dirs.
 * BENCH_ARGS="--mib N" changes the size (default 512).
 */
import { randomFillSync, createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import { createLogger } from "../../src/log.ts";
import { FolderSync } from "../../src/services/show-folder/folder-sync.ts";
import { formPost, setUpDataDir, startNode } from "../support/machine-node.ts";
import { startMachine, tempDir } from "../support/machine-process.ts";
import { removeTempDirs } from "../support/temp-dirs.ts";
import { waitFor } from "../support/wait-for.ts";

const TICK_MS = 5;
const FILE_MIB = 8;
const mibArg = process.argv.indexOf("--mib");
const SIZE_MIB = mibArg > 0 ? Number(process.argv[mibArg + 1]) : 512;

/** Lateness of a TICK_MS timer while `work` runs: max and p99, in ms. */
async function lagDuring(work: () => Promise<unknown>): Promise<{ ms: number; maxLag: number; p99Lag: number }> {
  const lags: number[] = [];
  let expected = performance.now() + TICK_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - expected));
    expected = now + TICK_MS;
  }, TICK_MS);
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  clearInterval(timer);
  lags.sort((a, b) => a - b);
  return { ms, maxLag: lags.at(-1) ?? ms, p99Lag: lags[Math.floor(lags.length * 0.99)] ?? ms };
}

/** The command line's old way: every chunk read and hashed without yielding. */
function hashSynchronously(dir: string): void {
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    const fd = openSync(join(dir, name), "r");
    for (let got = readSync(fd, buffer); got > 0; got = readSync(fd, buffer)) createHash("sha256").update(buffer.subarray(0, got)).digest("hex");
    closeSync(fd);
  }
}

// A gigabyte or more of folders and chunk caches: gone when the bench ends, however it ends.
process.on("exit", removeTempDirs);
process.on("SIGINT", () => process.exit(130));
const folder = tempDir();
mkdirSync(folder, { recursive: true });
for (let i = 0; i < SIZE_MIB / FILE_MIB; i++) writeFileSync(join(folder, `clip-${i}.bin`), randomFillSync(Buffer.alloc(FILE_MIB << 20)));

const rows: [string, { ms: number; maxLag: number; p99Lag: number }][] = [];
rows.push(["nothing: the machine's own noise, 3 s", await lagDuring(() => Bun.sleep(3000))]);
rows.push(["hash synchronously (the command line's old way)", await lagDuring(async () => hashSynchronously(folder))]);

const sync = new FolderSync({
  dataDir: tempDir(),
  settings: () => ({ folder, autoPull: false }),
  node: () => null,
  readOnly: () => false,
  author: () => "bench",
  log: createLogger(() => "json", () => {}),
});
// File times must be older than RACY_MS to be remembered.
await Bun.sleep(2100);
rows.push(["list Your changes to push, first scan", await lagDuring(() => sync.tick())]);
rows.push(["list Your changes to push, again (hashes remembered)", await lagDuring(() => sync.tick())]);
sync.stop();

// The main in its own process (the real executable), so the lag measured is the client node's alone.
const key = nacl.randomBytes(32);
const main = await startMachine(["--role", "main"], { dataDir: setUpDataDir(key) });
const client = await startNode({ dataDir: setUpDataDir(key), flags: { role: "client", main: main.peer! } });
const htmx = { "hx-request": "true" };
await formPost(client.node, "/storage/folder", { folder }, htmx);
await waitFor("the client lists the folder", () => client.node.folderSync()?.toPushCount === SIZE_MIB / FILE_MIB, 120_000);
rows.push([
  "Push Changes on a client's page, until the main wrote the revision",
  await lagDuring(async () => {
    const response = await formPost(client.node, "/storage/push", { comment: "bench" }, htmx);
    if (response.status !== 200) throw new Error(await response.text());
    await waitFor("the push", () => client.node.folderSync()!.job === null && client.node.folderSync()!.outcome !== null, 300_000, 20);
  }),
]);
const emptyFolder = tempDir();
rows.push([
  "Pull on a client's page into an empty folder",
  await lagDuring(async () => {
    await formPost(client.node, "/storage/folder", { folder: emptyFolder }, htmx);
    await waitFor("the new folder is looked at", () => client.node.folderSync()!.base === 0, 10_000, 20);
    const response = await formPost(client.node, "/storage/pull", {}, htmx);
    if (response.status !== 200) throw new Error(await response.text());
    await waitFor("the pull", () => client.node.folderSync()!.base === 1 && client.node.folderSync()!.job === null, 300_000, 20);
  }),
]);
const outcome = client.node.folderSync()!.outcome;
if (!outcome?.ok) throw new Error(`the pull failed: ${outcome?.message}`);
await client.node.stop();
await main.stop();

console.log(`\nShow folder of ${SIZE_MIB} MiB (${SIZE_MIB / FILE_MIB} files); event-loop lag of a ${TICK_MS} ms timer in the node's process\n`);
console.log("| work | seconds | MB/s | max lag ms | p99 lag ms |");
console.log("|---|---|---|---|---|");
for (const [name, r] of rows) {
  const mbs = (SIZE_MIB * 1.048576) / (r.ms / 1000);
  console.log(`| ${name} | ${(r.ms / 1000).toFixed(2)} | ${name.includes("again") || name.startsWith("nothing") ? "–" : mbs.toFixed(0)} | ${r.maxLag.toFixed(1)} | ${r.p99Lag.toFixed(1)} |`);
}
