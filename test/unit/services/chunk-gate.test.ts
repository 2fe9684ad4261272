/**
 * Chunk work in flight, bounded: a key holder pipelining chunk calls without waiting for answers
 * (docs/design.md §Security). The gate alone over a pretend connection, then the attack over real
 * secure sockets against AssetService and FilesService, with the stores' writes held so what the
 * server holds can be read while the flood waits.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { randomFillSync } from "node:crypto";
import nacl from "tweetnacl";
import { AppError } from "../../../src/core/errors.ts";
import { AssetClient } from "../../../src/services/asset-protocol.ts";
import { ChunkBudget, ChunkCallsOverLimit, DEFAULT_CHUNK_LIMITS, processChunkBudget } from "../../../src/services/chunk-gate.ts";
import { BulkOp, bulkHeader, MAX_PENDING_BULK } from "../../../src/services/bulk-lane.ts";
import { ShowFileClient } from "../../../src/services/show-file-client.ts";
import { pushResult } from "../../../src/services/show-file-protocol.ts";
import { connectSecure } from "../../../src/net/secure-socket.ts";
import { ASSET_CHUNK_BYTES } from "../../../src/store/asset-store.ts";
import { sha256Hex } from "../../../src/store/content-hash.ts";
import { waitFor } from "../../support/wait-for.ts";
import { startFilesServer } from "../cli/files-server.ts";
import { assetFixtures, type AssetNode } from "./asset-harness.ts";

const networkKey = nacl.randomBytes(32);
const fixtures = assetFixtures(networkKey);
const { cleanups } = fixtures;
afterEach(fixtures.closeAll);
const randomBytes = (size: number) => randomFillSync(new Uint8Array(size));
const LIMIT = DEFAULT_CHUNK_LIMITS.perConnection;

/** A connection as the gate sees it: counts pauses and resumes. */
function pretendConnection() {
  return {
    open: true,
    paused: false,
    pauseReading() {
      this.paused = true;
    },
    resumeReading() {
      this.paused = false;
    },
  };
}

/** Work that finishes when the test says so. */
function heldWork() {
  const releases: (() => void)[] = [];
  return {
    work: () => new Promise<string>((resolve) => releases.push(() => resolve("done"))),
    releaseOne: () => releases.shift()!(),
    releaseAll: () => releases.splice(0).forEach((release) => release()),
  };
}

describe("the gate", () => {
  test("a connection is paused at its bound, one call more is refused with a code, and it is read again once an answer goes", async () => {
    const budget = new ChunkBudget({ perConnection: 4, perProcess: 100 });
    const connection = pretendConnection();
    const gate = budget.gate(connection);
    const held = heldWork();
    const running = Array.from({ length: 4 }, () => gate.run(held.work));
    expect(connection.paused).toBe(true);
    expect(gate.inFlight).toBe(4);
    const refused = await gate.run(held.work).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ChunkCallsOverLimit);
    expect(refused).toMatchObject({ code: "TOO_MANY_CHUNK_CALLS", status: 429 });
    expect((refused as AppError).message).toContain("nothing was stored");
    held.releaseOne();
    await running[0];
    expect(connection.paused).toBe(false);
    expect(gate.inFlight).toBe(3);
    held.releaseAll();
    expect(await Promise.all(running)).toEqual(["done", "done", "done", "done"]);
    expect(budget.inFlight).toBe(0);
  });

  test("at the process bound, a connection adding work is paused (never refused) until the process drops below it", async () => {
    const budget = new ChunkBudget({ perConnection: 10, perProcess: 3 });
    const [a, b] = [pretendConnection(), pretendConnection()];
    const [gateA, gateB] = [budget.gate(a), budget.gate(b)];
    const held = heldWork();
    const first = [gateA.run(held.work), gateA.run(held.work), gateA.run(held.work)];
    expect(a.paused).toBe(true);
    // B brings one more (already read when A paused): taken, and B pauses too.
    const late = gateB.run(held.work);
    expect(b.paused).toBe(true);
    expect(budget.inFlight).toBe(4);
    held.releaseOne();
    await first[0];
    expect(budget.inFlight).toBe(3);
    expect([a.paused, b.paused]).toEqual([true, true]);
    held.releaseOne();
    await first[1];
    expect([a.paused, b.paused]).toEqual([false, false]);
    held.releaseAll();
    await Promise.all([...first, late]);
    expect(budget.peak).toBe(4);
  });

  test("a failed call gives its place back too", async () => {
    const budget = new ChunkBudget({ perConnection: 1, perProcess: 10 });
    const connection = pretendConnection();
    const gate = budget.gate(connection);
    const failed = await gate.run(() => Promise.reject(new AppError("DISK_FULL", "full"))).catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: "DISK_FULL" });
    expect([gate.inFlight, budget.inFlight, connection.paused]).toEqual([0, 0, false]);
  });
});

/** Holds the attack's chunk puts (by upload id) until `release`; counts those that then stored. */
function holdPuts(server: AssetNode) {
  const assets = server.stores!.assets;
  const put = assets.putChunkAsync.bind(assets);
  const ids = new Set<string>();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const counts = { stored: 0 };
  assets.putChunkAsync = (id, idx, bytes) => {
    if (!ids.has(id)) return put(id, idx, bytes);
    return released.then(() => put(id, idx, bytes)).then((result) => {
      counts.stored++;
      return result;
    });
  };
  return { hold: (id: string) => ids.add(id), release, counts };
}

/** Sends `calls` chunk calls (bulk frame, then the call) without waiting for any answer; each settles as "stored" or its error. */
function flood(attacker: AssetClient, uploadId: string, bytes: Uint8Array, calls: number, answered = { count: 0 }): Promise<unknown[]> {
  const settle = (outcome: unknown) => {
    answered.count++;
    return outcome;
  };
  return Promise.all(Array.from({ length: calls }, () => attacker.sendChunk(uploadId, 0, bytes).then(() => settle("stored"), settle)));
}

function tally(outcomes: unknown[]) {
  const refused = outcomes.filter((o) => o !== "stored");
  // Every call is answered: stored, or refused with the typed code (never a hang, a timeout or a lost connection).
  for (const r of refused) expect(r).toMatchObject({ code: "TOO_MANY_CHUNK_CALLS" });
  return { stored: outcomes.length - refused.length, refused: refused.length };
}

describe("a key holder pipelining asset chunk calls", () => {
  const node = (budget: ChunkBudget): AssetNode => fixtures.node({ chunkBudget: budget });
  const client = fixtures.client;
  async function upload(c: AssetClient, data: Uint8Array): Promise<string> {
    const begun = await c.begin({ name: "intro.mov", size: data.length });
    for (let idx = 0; idx < begun.chunkCount; idx++) await c.sendChunk(begun.id, idx, data.subarray(idx * ASSET_CHUNK_BYTES, (idx + 1) * ASSET_CHUNK_BYTES));
    return (await c.commit(begun.id, sha256Hex(data))).asset.id;
  }

  test("5,000 calls on one connection: the server holds its bound, stops reading the rest, answers others; every call is answered and every acknowledged chunk stored", async () => {
    const budget = new ChunkBudget();
    const server = node(budget);
    const puts = holdPuts(server);
    const attacker = await client(server);
    const bytes = randomBytes(1024);
    const begun = await attacker.begin({ name: "flood", size: bytes.length });
    puts.hold(begun.id);
    const answered = { count: 0 };
    const outcomes = flood(attacker, begun.id, bytes, 5000, answered);
    await waitFor("the connection's bound under way", () => budget.inFlight === LIMIT);
    expect(budget.peak).toBe(LIMIT);

    // While the flood waits: another caller is answered, and a well-behaved upload goes through whole.
    const honest = await client(server);
    const data = randomBytes(2.5 * ASSET_CHUNK_BYTES);
    const id = await upload(honest, data);
    expect((await honest.list()).map((a) => a.id)).toContain(id);
    expect(budget.inFlight).toBe(LIMIT);
    // The connection was paused, not drained by refusals: most of the flood was never read while the bound held.
    expect(answered.count).toBeLessThan((5000 - LIMIT) / 2);

    puts.release();
    const { stored, refused } = tally(await outcomes);
    expect(stored + refused).toBe(5000);
    expect(puts.counts.stored).toBe(stored);
    expect(budget.peak).toBeLessThanOrEqual(LIMIT + 1);
    expect(budget.inFlight).toBe(0);
    // The flooding connection still works: its upload commits.
    expect((await attacker.commit(begun.id, sha256Hex(bytes))).asset.size).toBe(1024);
  });

  test("several flooding connections: none holds more than its bound, the process bound pauses them, a well-behaved upload is slowed and then completes", async () => {
    const connections = 4;
    const budget = new ChunkBudget({ perConnection: LIMIT, perProcess: 2 * LIMIT });
    const server = node(budget);
    const puts = holdPuts(server);
    // Quarter-MiB chunks: what Bun reads before a pause takes effect holds only a few.
    const bytes = randomBytes(ASSET_CHUNK_BYTES / 4);
    const floods: Promise<unknown[]>[] = [];
    for (let i = 0; i < connections; i++) {
      const attacker = await client(server);
      const begun = await attacker.begin({ name: `flood-${i}`, size: bytes.length });
      puts.hold(begun.id);
      floods.push(flood(attacker, begun.id, bytes, 96));
    }
    await waitFor("the process bound reached", () => budget.full);
    const honest = await client(server);
    const data = randomBytes(1.5 * ASSET_CHUNK_BYTES);
    const honestUpload = upload(honest, data);
    // A caller that sends no chunks is still answered while the flood holds the process at its bound.
    expect(await (await client(server)).list()).toEqual([]);
    expect(budget.inFlight).toBeLessThanOrEqual(connections * LIMIT + 1);
    expect(budget.inFlight).toBeLessThan(connections * LIMIT);

    puts.release();
    const results = (await Promise.all(floods)).map(tally);
    expect(results.reduce((n, r) => n + r.stored + r.refused, 0)).toBe(connections * 96);
    expect(puts.counts.stored).toBe(results.reduce((n, r) => n + r.stored, 0));
    expect(await honestUpload).toBeString();
    expect(budget.inFlight).toBe(0);
  });

  test("bulk frames parked without their calls: the fifth closes the connection, nothing is stored", async () => {
    const server = node(new ChunkBudget());
    let closed = "";
    const connection = await connectSecure(server.address, "/assets", { networkKey, machine: nacl.sign.keyPair() }, () => ({ message() {}, close: (reason) => void (closed = reason) }));
    cleanups.push(() => connection.close());
    for (let tag = 0; tag <= MAX_PENDING_BULK; tag++) connection.sendBulk(randomBytes(ASSET_CHUNK_BYTES), bulkHeader(BulkOp.chunk, tag));
    await waitFor("the server to close the connection", () => closed !== "");
    expect(closed).toContain(`More than ${MAX_PENDING_BULK} asset chunks arrived without their calls`);
    expect(server.putChunks).toEqual([]);
  });
});

describe("a key holder pipelining show-file chunk calls", () => {
  test("2,000 files.put on one connection: at most the bound under way, every call answered, a push after it works", async () => {
    const server = startFilesServer();
    cleanups.push(server.stop);
    const pusher = new ShowFileClient();
    pusher.attach(await connectSecure(`127.0.0.1:${server.server.port}`, "/files", { networkKey: server.networkKey, machine: nacl.sign.keyPair() }, () => pusher.events()));
    cleanups.push(() => pusher.close());
    // The chunks' writes wait until the flood has been sent, so what the server holds can be read.
    const intake = server.show.stores.chunkIntake;
    const accept = intake.accept.bind(intake);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    intake.accept = (hash, bytes) => released.then(() => accept(hash, bytes));
    const inFlightBefore = processChunkBudget.inFlight;
    const chunks = Array.from({ length: 2000 }, () => randomBytes(512));
    const flooding = Promise.all(chunks.map((bytes) => pusher.putChunk(bytes).then(() => "stored", (e: unknown) => e)));
    await waitFor("the connection's bound under way", () => processChunkBudget.inFlight - inFlightBefore === LIMIT);
    release();
    const outcomes = await flooding;
    const { stored } = tally(outcomes);
    expect(stored).toBeGreaterThan(2000 / 2);
    expect(processChunkBudget.inFlight).toBe(inFlightBefore);
    const first = outcomes.indexOf("stored");
    const pushed = await pusher.call("push", { base: 0, author: "test", changes: [{ path: "a.txt", size: 512, chunks: [sha256Hex(chunks[first]!)] }] }, pushResult);
    expect(pushed.rev).toBe(1);
  });
});
