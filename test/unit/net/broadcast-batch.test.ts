/**
 * Fan-out coalescing: frames for one set of connections in one turn of the
 * event loop are sealed and published once; anything else for a member sends
 * what is pending first, so every connection keeps its order.
 */
import { describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fanOut, openBroadcast } from "../../../src/net/broadcast.ts";
import { BroadcastBatch } from "../../../src/net/broadcast-batch.ts";
import { deriveBroadcastKey } from "../../../src/net/crypto.ts";
import { FanoutGroups } from "../../../src/net/fanout-groups.ts";
import { FrameBatcher, splitFrames } from "../../../src/net/frame-batch.ts";
import type { SecureConnection } from "../../../src/net/secure-socket.ts";

const key = deriveBroadcastKey(nacl.randomBytes(32), 2);

/** Connections that cannot join topics, so every broadcast lands in `sealed` and every channel write in `sent`. */
function connections(ids: string[]) {
  const log = new Map<string, string[]>(ids.map((id) => [id, []]));
  const seals: Uint8Array[] = [];
  const map = new Map<string, SecureConnection>(
    ids.map((id) => [
      id,
      {
        peer: { machineId: id, publicKey: new Uint8Array(32), address: id },
        open: true,
        send: (payload: Uint8Array) => log.get(id)!.push(...splitFrames(payload).map((t) => `own ${t}`)) > 0,
        sendSealed: (frame: Uint8Array) => {
          if (!seals.includes(frame)) seals.push(frame);
          return log.get(id)!.push(...splitFrames(openBroadcast(key, frame, "hub")).map((t) => `all ${t}`)) > 0;
        },
        sendBulk: () => true,
        close() {},
      } as SecureConnection,
    ]),
  );
  return { map, log, seals };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("BroadcastBatch", () => {
  test("a burst to the same subscribers in one turn is sealed once, in order", async () => {
    const { map, log, seals } = connections(["a", "b", "c"]);
    const broadcasts = new BroadcastBatch();
    for (let i = 0; i < 50; i++) fanOut(`m${i}`, ["a", "b", "c"], map, key, new FanoutGroups(), undefined, broadcasts);
    expect(seals.length).toBe(0);
    await nextTurn();
    expect(seals.length).toBe(1);
    for (const id of ["a", "b", "c"]) expect(log.get(id)).toEqual(Array.from({ length: 50 }, (_, i) => `all m${i}`));
  });

  test("a frame for one member, or for another set, sends what is pending first: each connection keeps its order", async () => {
    const { map, log } = connections(["a", "b", "c"]);
    const broadcasts = new BroadcastBatch();
    const batches = new Map([...map].map(([id, c]) => [id, new FrameBatcher((p) => c.send(p))]));
    const groups = new FanoutGroups();
    fanOut("1", ["a", "b"], map, key, groups, batches, broadcasts);
    fanOut("2", ["a"], map, key, groups, batches, broadcasts);
    fanOut("3", ["a", "b"], map, key, groups, batches, broadcasts);
    fanOut("4", ["b", "c"], map, key, groups, batches, broadcasts);
    await nextTurn();
    await nextTurn();
    expect(log.get("a")).toEqual(["all 1", "own 2", "all 3"]);
    expect(log.get("b")).toEqual(["all 1", "all 3", "all 4"]);
    expect(log.get("c")).toEqual(["all 4"]);
  });

  test("bounded: past maxBytes a batch goes out at once", () => {
    const { map, seals } = connections(["a", "b"]);
    const broadcasts = new BroadcastBatch(100);
    for (let i = 0; i < 10; i++) fanOut("x".repeat(30), ["a", "b"], map, key, new FanoutGroups(), undefined, broadcasts);
    expect(seals.length).toBe(2); // 4 + 4 sent, 2 pending
    broadcasts.clear();
  });

  test("a connection gone before the batch goes out is skipped", async () => {
    const { map, log } = connections(["a", "b", "c"]);
    const broadcasts = new BroadcastBatch();
    fanOut("1", ["a", "b", "c"], map, key, new FanoutGroups(), undefined, broadcasts);
    map.delete("c");
    await nextTurn();
    expect([log.get("a"), log.get("c")]).toEqual([["all 1"], []]);
  });
});
