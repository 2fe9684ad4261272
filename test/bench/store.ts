/**
 * Store benchmark: a main and its backup (real executables on loopback).
 * Replication lag: 100 pushes/s of a 10 KB file for PUSHES pushes; each push
 * is acknowledged only after the backup applied it, so the push round trip
 * is an upper bound on the lag. Printed as p50/p99 with the "behind" count.
 * Asset: a file of ASSET_MB MiB (default 1024) uploaded with `asset put`
 * through the main until the backup holds it too, beside a plain `cp` of the
 * same file on the same disk in the same run (the physical reference).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { RpcClient } from "../../src/net/rpc.ts";
import { connectSecure } from "../../src/net/secure-socket.ts";
import { pushResult } from "../../src/net/show-file-protocol.ts";
import { executable } from "../support/executable.ts";
import { devLicenseText } from "../support/licenses.ts";
import { freePeerPort } from "../support/cluster.ts";

const PUSHES = Number(process.env.PUSHES ?? 1000);

/** Seconds from `since` until the main says its backup's copy is in sync. */
async function waitReplicated(since: number): Promise<number> {
  for (let i = 0; i < 6000; i++) {
    const status = (await (await fetch(`http://${mainUi()}/api/status`)).json()) as { showFile: { backup: { state: string } } | null };
    if (status.showFile?.backup.state === "in-sync") return (performance.now() - since) / 1000;
    await Bun.sleep(50);
  }
  throw new Error("the backup did not catch up within 5 minutes");
}
const bin = await executable();
const dir = mkdtempSync(join(tmpdir(), "understudy-bench-store-"));
const keyFile = join(dir, "net.key");
const licFile = join(dir, "lic.json");
Bun.spawnSync([bin, "keys", "generate", "--out", keyFile]);
writeFileSync(licFile, devLicenseText({ type: "server-with-failover", holder: "*" }));
const networkKey = parseNetworkKey(await Bun.file(keyFile).text(), keyFile);

const [pm, pb, um] = [await freePeerPort(), await freePeerPort(), await freePeerPort()];
const mainUi = () => `127.0.0.1:${um}`;
const common = ["--key", keyFile, "--license", licFile, "--discovery", "off", "--mqtt-listen", "off", "--log", "json"];
const procs = [
  Bun.spawn([bin, "run", "--role", "main", "--data", mkdtempSync(join(dir, "m-")), "--ui-listen", mainUi(), "--peer-listen", `127.0.0.1:${pm}`, "--backup", `127.0.0.1:${pb}`, ...common], { stdout: "ignore", stderr: "ignore" }),
  Bun.spawn([bin, "run", "--role", "backup", "--data", mkdtempSync(join(dir, "b-")), "--ui-listen", "127.0.0.1:0", "--peer-listen", `127.0.0.1:${pb}`, "--main", `127.0.0.1:${pm}`, ...common], { stdout: "ignore", stderr: "ignore" }),
];
try {
  for (let i = 0; ; i++) {
    const status = await fetch(`http://${mainUi()}/api/status`).then((r) => r.json() as Promise<{ failover: { state: string } | null }>, () => null);
    if (status?.failover?.state === "active") break;
    if (i > 200) throw new Error("the main did not become active");
    await Bun.sleep(50);
  }
  const client = new RpcClient();
  for (let i = 0; ; i++) {
    try {
      client.attach(await connectSecure(`127.0.0.1:${pm}`, "/files", { networkKey, machine: nacl.sign.keyPair() }, () => client.events()));
      break;
    } catch (error) {
      if (i > 100) throw error;
      await Bun.sleep(50);
    }
  }
  // Wait until the backup follows: a first push acknowledged by it.
  for (let base = 0, i = 0; ; i++) {
    const r = await client.call("push", { base, author: "bench", message: "warm-up", changes: [{ path: `warm/${i}`, content: Buffer.from("x").toString("base64") }] }, pushResult);
    base = r.rev;
    if (r.replicated === "backup") break;
    await Bun.sleep(100);
  }
  const payload = Buffer.from(nacl.randomBytes(10 * 1024)).toString("base64");
  const latencies: number[] = [];
  let behind = 0;
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < PUSHES; i++) {
    const due = started + i * 10;
    const wait = due - performance.now();
    if (wait > 0) await Bun.sleep(wait);
    const t0 = performance.now();
    inflight.push(
      client.call("push", { base: 0, author: "bench", message: `push ${i}`, changes: [{ path: `lag/${i}.bin`, content: payload }] }, pushResult).then((r) => {
        latencies.push(performance.now() - t0);
        if (r.replicated !== "backup") behind++;
      }),
    );
  }
  await Promise.all(inflight);
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
  const rate = PUSHES / ((performance.now() - started) / 1000);
  console.log("| measure | pushes | rate /s | p50 ms | p99 ms | max ms | acknowledged as behind |");
  console.log("|---|---|---|---|---|---|---|");
  console.log(`| push acknowledged after the backup applied it (10 KB) | ${PUSHES} | ${rate.toFixed(0)} | ${at(0.5).toFixed(1)} | ${at(0.99).toFixed(1)} | ${sorted[sorted.length - 1]!.toFixed(1)} | ${behind} |`);
  client.close();

  const assetMb = Number(process.env.ASSET_MB ?? 1024);
  const file = join(dir, "asset.bin");
  {
    const chunk = nacl.randomBytes(1024 * 1024);
    const writer = Bun.file(file).writer();
    for (let i = 0; i < assetMb; i++) {
      chunk[0] = i & 0xff;
      chunk[1] = (i >> 8) & 0xff;
      writer.write(chunk);
    }
    await writer.end();
  }
  const bytes = assetMb * 1024 * 1024;
  // Both runs start from a cold page cache when we may drop it (root), so the copy
  // measures the disk, not memory; without root the copy may read from cache.
  const dropCaches = () => {
    Bun.spawnSync(["sync"]);
    if (process.getuid?.() === 0) Bun.spawnSync(["sh", "-c", "echo 3 > /proc/sys/vm/drop_caches"]);
  };
  dropCaches();
  const c0 = performance.now();
  Bun.spawnSync(["cp", file, join(dir, "copy.bin")]);
  Bun.spawnSync(["sync"]);
  const copyS = (performance.now() - c0) / 1000;
  dropCaches();
  const u0 = performance.now();
  const put = Bun.spawnSync([bin, "asset", "put", file, "--node", `127.0.0.1:${pm}`, "--key", keyFile], { stderr: "pipe" });
  if (put.exitCode !== 0) throw new Error(`asset put failed: ${put.stderr.toString()}`);
  const uploadS = (performance.now() - u0) / 1000;
  const replicatedS = put.stderr.toString().includes("the backup has it") ? uploadS : await waitReplicated(u0);
  const mbps = (s: number) => (bytes / 1e6 / s).toFixed(0);
  console.log("");
  console.log("| measure | MiB | seconds | MB/s |");
  console.log("|---|---|---|---|");
  console.log(`| plain copy (cp + sync), same disk | ${assetMb} | ${copyS.toFixed(2)} | ${mbps(copyS)} |`);
  console.log(`| asset put, encrypted, until the main acknowledged | ${assetMb} | ${uploadS.toFixed(2)} | ${mbps(uploadS)} |`);
  console.log(`| asset put until the backup holds it too | ${assetMb} | ${replicatedS.toFixed(2)} | ${mbps(replicatedS)} |`);
} finally {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
}
