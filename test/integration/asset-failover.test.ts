/**
 * The Asset Hub across a failover: an asset uploaded through a client is on
 * the backup when the upload is acknowledged; with the main killed, reads go
 * on from the backup's copy and uploads are refused with the read-only message.
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import nacl from "tweetnacl";
import { Cluster } from "../support/cluster.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

test("an acknowledged asset is read from the backup while the main is down; uploads are refused", async () => {
  cluster = await Cluster.start({ clients: ["render"] });
  const c = cluster;
  await c.waitAll("everyone linked", (_n, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, { timeoutMs: 15_000 });
  const node = ["--node", c.peer("render"), "--key", c.keyFile];
  const file = join(c.dir, "stage.exr");
  writeFileSync(file, nacl.randomBytes(3 * 1024 * 1024 + 4321));

  const put = await c.command(["asset", "put", file, ...node], { timeoutMs: 30_000 });
  const id = put.out.trim();
  expect(put.err).toContain("the backup has it");

  await c.kill("main");
  await c.waitStatus("render", "following the backup", (s) => s.chip === "Backup is active" && s.failover?.activeServer === "backup", 10_000);

  const out = join(c.dir, "copy.exr");
  await c.command(["asset", "get", id, out, ...node], { timeoutMs: 30_000 });
  expect(Buffer.from(readFileSync(out)).equals(Buffer.from(readFileSync(file)))).toBe(true);
  const listed = await c.command(["asset", "ls", ...node]);
  expect(listed.out).toContain(id);

  const refused = await c.command(["asset", "put", file, "--name", "again", ...node], { check: false, timeoutMs: 30_000 });
  expect(refused.code).not.toBe(0);
  expect(refused.err).toContain("The main server is down: uploads can't be accepted until it is back");
}, 60_000);
