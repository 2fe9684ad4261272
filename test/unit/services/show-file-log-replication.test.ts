/**
 * The backup's show-file log sink (services/show-file-log-replication.ts) against
 * a scripted main: frames of a connection that closed never hold up the next one.
 */
import { expect, test } from "bun:test";
import { encodeWireJson } from "../../../src/core/wire-json.ts";
import { createLogger } from "../../../src/log.ts";
import type { PeerDialer } from "../../../src/net/peer-net.ts";
import type { ConnectionEvents, SecureConnection } from "../../../src/net/secure-socket.ts";
import { LogReplicationSink, LogReplicationSource, MAX_QUEUED_CHUNK_REQUESTS } from "../../../src/services/show-file-log-replication.ts";
import { openDatabase } from "../../../src/store/database.ts";
import { createStores } from "../../../src/store/stores.ts";
import { ManualTimers } from "../../support/clock.ts";
import { waitFor } from "../../support/wait-for.ts";

const log = createLogger(() => "json", () => {});
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

/** A connection the test plays the main on: what the sink sent, and the handlers it gave. */
type Scripted = { connection: SecureConnection; sent: unknown[]; events: ConnectionEvents; open: boolean };

function scriptedDialer(): { net: PeerDialer; connections: Scripted[] } {
  const connections: Scripted[] = [];
  const net: PeerDialer = {
    dial: async (_to, _path, events) => {
      const scripted = { sent: [] as unknown[], open: true } as Scripted;
      scripted.connection = {
        peer: { machineId: "main", publicKey: new Uint8Array(32), address: "main:1" },
        send: (payload) => (scripted.sent.push(JSON.parse(new TextDecoder().decode(payload))), scripted.open),
        sendSealed: () => scripted.open,
        sendBulk: () => scripted.open,
        close: () => void (scripted.open = false),
        get open() {
          return scripted.open;
        },
      };
      scripted.events = events(scripted.connection);
      connections.push(scripted);
      return scripted.connection;
    },
  };
  return { net, connections };
}

test("entries that arrived on a connection that then closed are dropped, and the next connection's are applied", async () => {
  const main = createStores(openDatabase(":memory:"));
  for (let rev = 1; rev <= 2; rev++) main.showFile.push({ base: rev - 1, changes: [{ path: `cue${rev}.json`, content: new TextEncoder().encode(`{"cue":${rev}}`) }], message: "m", author: "t" });
  const entries = main.log.entriesSince(0);
  expect(entries).toHaveLength(2);
  const backup = createStores(openDatabase(":memory:"));
  // The same history as the main, nothing applied yet (as after its snapshot of an empty show file).
  backup.log.database.run("UPDATE replication_state SET log_id = ?", [main.log.position().logId]);
  const timers = new ManualTimers();
  const { net, connections } = scriptedDialer();
  const sink = new LogReplicationSink({ net, source: () => ({ host: "main", port: 1 }), stores: backup, retryMs: 100, log, clock: timers.clock, timers });
  await settle();
  expect(connections).toHaveLength(1);
  const first = connections[0]!;
  // Both entries arrive; the first asks for its chunk; the main goes away before answering.
  first.events.message(encodeWireJson({ type: "entries", entries: [entries[0]] }));
  first.events.message(encodeWireJson({ type: "entries", entries: [entries[1]] }));
  await settle();
  expect(first.sent.some((f) => (f as { type: string }).type === "chunks")).toBe(true);
  first.open = false;
  first.events.close("The connection was lost.");
  await settle();
  // The sink dials again; this main answers each chunk request on the bulk lane.
  timers.advance(100);
  await settle();
  expect(connections).toHaveLength(2);
  const second = connections[1]!;
  const answered = new Set<string>();
  const answer = async () => {
    for (const frame of second.sent as { type: string; hashes?: string[] }[]) {
      for (const hash of frame.type === "chunks" ? (frame.hashes ?? []) : []) {
        if (answered.has(hash)) continue;
        answered.add(hash);
        const bytes = await main.assets.chunkAsync(hash);
        const payload = new Uint8Array(32 + bytes.length);
        payload.set(Buffer.from(hash, "hex"));
        payload.set(bytes, 32);
        second.events.bulk!(payload);
      }
    }
  };
  second.events.message(encodeWireJson({ type: "entries", entries }));
  for (let i = 0; i < 5; i++) {
    await settle();
    await answer();
  }
  await settle();
  expect(backup.log.position().lastSeq).toBe(2);
  expect(backup.showFile.head()).toBe(2);
  sink.stop();
});

test("a follower that queues chunk requests without waiting for the chunks is closed; one that waits is served", async () => {
  const main = createStores(openDatabase(":memory:"));
  main.showFile.push({ base: 0, changes: [{ path: "clip.bin", content: new Uint8Array(200_000).fill(7) }], message: "m", author: "t" });
  const change = main.showFile.pull(0).changes[0]!;
  const chunkHash = "chunks" in change ? change.chunks[0]! : "";
  const source = new LogReplicationSource(main, () => true, log);
  const follower = (): { closed: string | null; bulk: number; events: ConnectionEvents } => {
    const state = { closed: null as string | null, bulk: 0, events: null as unknown as ConnectionEvents };
    state.events = source.accept({
      peer: { machineId: "backup", publicKey: new Uint8Array(32), address: "backup:1" },
      send: () => state.closed === null,
      sendSealed: () => state.closed === null,
      sendBulk: () => (state.bulk++, state.closed === null),
      close: (_code, reason) => void (state.closed = reason ?? "closed"),
      get open() {
        return state.closed === null;
      },
    });
    return state;
  };
  const flooding = follower();
  for (let i = 0; i <= MAX_QUEUED_CHUNK_REQUESTS; i++) flooding.events.message(encodeWireJson({ type: "chunks", hashes: Array(64).fill(chunkHash) }));
  expect(flooding.closed).toContain(`More than ${MAX_QUEUED_CHUNK_REQUESTS} chunk requests queued`);
  const waiting = follower();
  for (let i = 0; i < 3 * MAX_QUEUED_CHUNK_REQUESTS; i++) {
    waiting.events.message(encodeWireJson({ type: "chunks", hashes: [chunkHash] }));
    await waitFor("the chunk sent", () => waiting.bulk === i + 1);
  }
  expect(waiting.closed).toBeNull();
  expect(waiting.bulk).toBe(3 * MAX_QUEUED_CHUNK_REQUESTS);
});

test("a main that has not recorded its side of the pairing still streams its writes to the backup following it (sim seed 61342)", async () => {
  const main = createStores(openDatabase(":memory:"));
  const push = (rev: number) => main.showFile.push({ base: rev - 1, changes: [{ path: `cue${rev}.json`, content: new TextEncoder().encode(`{"cue":${rev}}`) }], message: "m", author: "t" });
  push(1);
  let paired = false;
  const source = new LogReplicationSource(main, () => paired, log);
  const sent: { type: string; entries?: { seq: number }[] }[] = [];
  const events = source.accept({
    peer: { machineId: "backup", publicKey: new Uint8Array(32), address: "backup:1" },
    send: (payload) => (sent.push(JSON.parse(new TextDecoder().decode(payload))), true),
    sendSealed: () => true,
    sendBulk: () => true,
    close: () => {},
    open: true,
  });
  // The backup follows this main (it paired before the main restarted without its record) and holds entry 1.
  events.message(encodeWireJson({ type: "hello", position: { ...main.log.position(), snapshot: null } }));
  expect(sent.map((f) => f.type)).toEqual(["plan"]);
  push(2);
  expect(await source.waitApplied(main.log.position().lastSeq, 100)).toBe("none");
  const streamed = sent.flatMap((f) => (f.type === "entries" ? f.entries!.map((e) => e.seq) : []));
  expect(streamed).toEqual([main.log.position().lastSeq]);
  paired = true;
  expect(source.status().state).toBe("behind");
});
