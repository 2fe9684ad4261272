import { describe, expect, test } from "bun:test";
import { AckedWrites, ackedRetentionMs, type AckedWrite } from "../../../src/hub/acked-writes.ts";
import { encodeWrite } from "../../../src/hub/outbound-queue.ts";
import { FakeHubServer, FakeNode, Wire, settle } from "./hub-harness.ts";

const write = (seq: number, data: unknown = seq): AckedWrite<string> => ({ ...encodeWrite({ type: "pub", topic: "t", data, origin: "o", seq }), from: "app" });
const seqs = (writes: AckedWrite<string>[]) => writes.map((w) => w.frame.seq);

describe("acknowledged writes kept for a resend", () => {
  test("kept until trim finds them maxAgeMs old, never younger", () => {
    const kept = new AckedWrites<string>();
    kept.add(write(1));
    kept.add(write(2));
    expect(kept.trim(0, 1000)).toBe(0);
    kept.add(write(3));
    expect(kept.trim(600, 1000)).toBe(0);
    expect(kept.trim(1000, 1000)).toBe(2); // 1 and 2 were acknowledged by 0
    expect(kept.trim(1599, 1000)).toBe(0);
    expect(kept.trim(1600, 1000)).toBe(1);
    expect(kept.size).toBe(0);
  });

  test("bounded by count and by bytes: the oldest go first, and are counted", () => {
    const byCount = new AckedWrites<string>(2, 1 << 20);
    for (let seq = 1; seq <= 5; seq++) byCount.add(write(seq));
    expect(seqs(byCount.takeAll())).toEqual([4, 5]);
    expect(byCount.droppedEarly).toBe(3);
    const one = write(1, "x".repeat(100)).bytes;
    const byBytes = new AckedWrites<string>(100, 2 * one);
    for (let seq = 1; seq <= 3; seq++) byBytes.add(write(seq, "x".repeat(100)));
    expect(seqs(byBytes.takeAll())).toEqual([2, 3]);
    const none = new AckedWrites<string>(0, 1 << 20);
    none.add(write(1));
    expect(none.size).toBe(0);
  });

  test("a kept write is handed back as the frame and text it was (only its frame is kept, the text is made again), a set with the version the hub gave it", () => {
    const kept = new AckedWrites<string>();
    const pub = write(1, { zoom: 2, nested: { list: [1, "two", null] }, text: "é ✓" });
    const set = { ...encodeWrite({ type: "set", key: "k", value: { on: true }, origin: "o", seq: 2, acked: { epoch: 3, seq: 7 } }), from: "desk" };
    kept.add(pub);
    kept.add(set);
    const [again1, again2] = kept.takeAll();
    expect(again1).toEqual(pub);
    expect(again2).toEqual(set);
    expect(kept.size).toBe(0);
  });

  test("takeAll hands everything over oldest first and starts afresh (old marks do not drop new writes)", () => {
    const kept = new AckedWrites<string>();
    kept.add(write(1));
    kept.trim(0, 1000);
    expect(seqs(kept.takeAll())).toEqual([1]);
    kept.add(write(2));
    expect(kept.trim(1500, 1000)).toBe(0);
    expect(seqs(kept.takeAll())).toEqual([2]);
    expect(kept.bytes).toBe(0);
  });

  test("the retention covers a failover: twice the timeout plus heartbeats", () => {
    expect(ackedRetentionMs({ failoverTimeoutMs: 1000, heartbeatMs: 100 })).toBe(2400);
  });
});

describe("the node's side", () => {
  const pub = (seq: number) => ({ type: "pub", topic: "t/x", data: seq, origin: "o", seq }) as const;
  /** A node whose server acknowledged pub 1 at time 0 (after a pong for a ping sent at `pingAt`, if given). */
  const ackedAtZero = (pingAt?: number) => {
    const a = new FakeHubServer({ epoch: 1, writable: true, streamId: "A" });
    const p = new FakeNode("P");
    const wire = new Wire(p, a);
    if (pingAt !== undefined) p.uplink.ping(pingAt);
    p.app("app", pub(1));
    settle(wire);
    expect(p.uplink.trimAcked(0, 1000)).toBe(0);
    return { a, p, wire };
  };

  test("nothing ages while the node has no server; once aged out, a write is not resent", () => {
    const { a, p, wire } = ackedAtZero();
    wire.cut();
    expect(p.uplink.trimAcked(5000, 1000)).toBe(0);
    expect(p.uplink.ackedKept).toBe(1);
    const again = new Wire(p, a);
    expect(again.pendingUp().filter((f) => f.type === "pub")).toEqual([pub(1)]);
    settle(again);
    expect(p.of("app", "ack")).toHaveLength(1); // the app heard its ack once
    expect(p.uplink.trimAcked(6000, 1000)).toBe(0);
    p.uplink.ping(7000);
    settle(again); // the server answered a ping sent at 7000: alive 1000 ms after the ack
    expect(p.uplink.trimAcked(7000, 1000)).toBe(1);
    again.cut();
    expect(new Wire(p, a).pendingUp().filter((f) => f.type === "pub")).toEqual([]);
  });

  test("what a server acknowledged is kept until that server is heard alive past the retention", () => {
    const { a, p, wire } = ackedAtZero(0);
    // A frozen server (SIGSTOP, a machine stalled by load) keeps its socket open: the node stays attached and its
    // timer runs on while the failover takes its time. The fan-out may never have left: only a pong says it lived on.
    p.uplink.ping(5000);
    expect(p.uplink.trimAcked(5000, 1000)).toBe(0);
    wire.cut(); // the pong never came: the server was dead
    expect(new Wire(p, a).pendingUp().filter((f) => f.type === "pub")).toEqual([pub(1)]);
  });

  test("a pong cannot age writes past the node's own clock", () => {
    const { p } = ackedAtZero();
    p.uplink.onFrameFromServer({ type: "pong", sentAt: 1e12 }, 500);
    expect(p.uplink.trimAcked(500, 1000)).toBe(0);
    expect(p.uplink.ackedKept).toBe(1);
  });

  test("an app cannot name an acknowledged version: the node drops it; the node names the one its hub gave", () => {
    const a = new FakeHubServer({ epoch: 1, writable: true, streamId: "A" });
    const p = new FakeNode("P");
    const wire = new Wire(p, a);
    settle(wire);
    p.app("app", { type: "set", key: "k", value: 1, origin: "o", seq: 1, acked: { epoch: 9, seq: 9 } });
    expect(wire.pendingUp()).toEqual([{ type: "set", key: "k", value: 1, origin: "o", seq: 1 }]);
    settle(wire);
    wire.cut();
    expect(new Wire(p, a).pendingUp().filter((f) => f.type === "set")).toEqual([
      { type: "set", key: "k", value: 1, origin: "o", seq: 1, acked: { epoch: 1, seq: 1 } },
    ]);
  });

  test("a set acknowledged without a version (a repeat) keeps its place behind the node's later set of that key on the next server (sim seed 112160)", () => {
    const a = new FakeHubServer({ epoch: 1, writable: true, streamId: "A" });
    const b = new FakeHubServer({ epoch: 2, writable: true, streamId: "B" });
    const p = new FakeNode("P");
    const first = new Wire(p, a);
    settle(first);
    p.app("app", { type: "set", key: "k", value: 4, origin: "o", seq: 1 });
    p.app("app", { type: "set", key: "j", value: 5, origin: "o", seq: 2 });
    first.pumpUp();
    first.cut(); // both written on A, their acks lost
    const again = new Wire(p, a);
    settle(again); // resent to A: repeats, acked; seq 1 is no longer the origin's last, so without a version
    p.app("app", { type: "set", key: "k", value: 16, origin: "o", seq: 3 });
    settle(again);
    again.cut(); // A is gone; B never copied any of it
    settle(new Wire(p, b));
    expect(b.hub.retainedEntry("k")?.value).toBe(16);
    expect(b.hub.retainedEntry("j")?.value).toBe(5);
  });

  test("resent writes may fill the queue past its bound: new writes wait behind them, in order, and are not refused", () => {
    const a = new FakeHubServer({ epoch: 1, writable: true, streamId: "A" });
    const b = new FakeHubServer({ epoch: 2, writable: true, streamId: "B" });
    const p = new FakeNode("P", { maxQueuedFrames: 2 });
    const s = new FakeNode("S");
    s.app("viewer", { type: "sub", filter: "t/#" });
    const sToB = new Wire(s, b);
    settle(sToB);
    const pToA = new Wire(p, a);
    for (let seq = 1; seq <= 3; seq++) {
      p.app("app", pub(seq));
      settle(pToA);
    }
    pToA.cut();
    p.app("app", pub(4));
    const pToB = new Wire(p, b);
    expect(p.uplink.queuedFrames).toBe(4);
    expect(p.app("app", pub(5))).toBeNull(); // waits for room
    expect(p.uplink.waitingFrames).toBe(1);
    settle(pToB, sToB);
    expect(s.of("viewer", "msg").map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(p.of("app", "ack").map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  test("a write the app resent while its first copy is kept for a resend goes to the next server once", () => {
    const a = new FakeHubServer({ epoch: 1, writable: true, streamId: "A" });
    const p = new FakeNode("P");
    const wire = new Wire(p, a);
    p.app("app", pub(1));
    settle(wire);
    wire.cut();
    p.app("app", pub(1));
    expect(new Wire(p, a).pendingUp().filter((f) => f.type === "pub")).toEqual([pub(1)]);
  });
});
