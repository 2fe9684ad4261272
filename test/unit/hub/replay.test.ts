/**
 * The epoch replay buffer: after a switch, nodes reach the new hub at slightly
 * different moments; a subscriber arriving after a publisher resent its queue
 * still gets every message once, in order per publisher.
 */
import { describe, expect, test } from "bun:test";
import type { FromHubFrameOf, ToHubFrame } from "../../../src/hub/frames.ts";
import { DirectConnection, FakeHubServer, FakeNode, Wire, settle } from "./hub-harness.ts";

const pub = (topic: string, data: unknown, origin: string, seq: number) => ({ type: "pub", topic, data, origin, seq }) as const;
const msgsOf = (node: FakeNode, app: string) => node.of(app, "msg").map((m) => `${m.from}:${m.seq}`);
const range = (from: number, to: number, origin = "gfx-1") => Array.from({ length: to - from + 1 }, (_, i) => `${origin}:${from + i}`);

/** Hub A active at epoch 1; hub B its idle backup. */
function pair(replay: ConstructorParameters<typeof FakeHubServer>[0] = {}) {
  return { a: new FakeHubServer({ epoch: 1, writable: true, streamId: "A" }), b: new FakeHubServer({ epoch: 1, writable: false, streamId: "B", ...replay }) };
}

/** `from` dies (its wires break) and `to` takes over at `epoch` after copying its retained state. */
function switchTo(from: FakeHubServer, to: FakeHubServer, epoch: number, wires: Wire[]) {
  to.hub.importState(from.hub.exportStateSince(to.hub.lastVersion));
  for (const wire of wires) wire.cut();
  from.hub.setWritable(false);
  to.hub.setEpoch(epoch);
  to.hub.setWritable(true);
}

/** A publisher node P and a subscriber node S on hub A; S's app "viewer" follows studio/#. */
function twoNodesOn(a: FakeHubServer) {
  const p = new FakeNode("P");
  const s = new FakeNode("S");
  s.app("viewer", { type: "sub", filter: "studio/#" });
  const wires = [new Wire(p, a), new Wire(s, a)] as const;
  settle(...wires);
  return { p, s, wires };
}

/** A direct connection that was on an older epoch: hello with resumeFromEpoch, its subs, then resync. */
function resumingConnection(server: FakeHubServer, id: string, resumeFromEpoch: number | undefined, filters: string[], from?: { stream: string; pos: number }) {
  const c = new DirectConnection(server, id, null);
  const hello: ToHubFrame = { type: "hello", id, name: id, kind: "node" };
  if (resumeFromEpoch !== undefined) hello.resumeFromEpoch = resumeFromEpoch;
  if (from) Object.assign(hello, { resumeStream: from.stream, resumeFromPos: from.pos });
  c.send(hello);
  for (const filter of filters) c.send({ type: "sub", filter });
  c.send({ type: "resync" });
  return c;
}

describe("a subscriber reconnecting after the publisher resent its queue", () => {
  test("gets every message exactly once, in order (the failing scenario)", () => {
    const { a, b } = pair();
    const { p, s, wires } = twoNodesOn(a);
    for (let seq = 1; seq <= 3; seq++) p.app("gfx", pub("studio/tally", seq, "gfx-1", seq));
    settle(...wires);
    // Mid-stream: A takes 4 and 5 and fans them out, S receives only 4, and no ack gets back to P.
    p.app("gfx", pub("studio/tally", 4, "gfx-1", 4));
    p.app("gfx", pub("studio/tally", 5, "gfx-1", 5));
    wires[0].pumpUp();
    wires[1].pumpDown(1);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 4));
    switchTo(a, b, 2, [...wires]);
    p.app("gfx", pub("studio/tally", 6, "gfx-1", 6)); // published during the switch: queued
    expect(p.uplink.queuedFrames).toBe(3);

    // P reaches B first and resends 4, 5, 6; nobody on B follows studio/# yet.
    const pToB = new Wire(p, b);
    settle(pToB);
    expect(p.uplink.queuedFrames).toBe(0);
    p.app("gfx", pub("studio/tally", 7, "gfx-1", 7));
    settle(pToB);

    // S reaches B a few ms later: B replays 4 to 7 (4 is dropped by S as a repeat), then live traffic follows.
    const sToB = new Wire(s, b);
    expect(sToB.pendingUp().slice(0, 3)).toEqual([
      { type: "hello", id: "S", name: "S", kind: "node", resumeFromEpoch: 1, resumeStream: "A", resumeFromPos: 4 },
      { type: "sub", filter: "studio/#" },
      { type: "resync" },
    ]);
    settle(pToB, sToB);
    p.app("gfx", pub("studio/tally", 8, "gfx-1", 8));
    settle(pToB, sToB);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 8));
    expect(s.uplink.serverEpoch).toBe(2);
    // P resent 1 to 3 too (acknowledged by A, kept for a resend): B holds 1 to 8 and S drops 1 to 4 as repeats.
    expect(b.hub.replayStats).toMatchObject({ buffered: 8, dropped: 0, replays: 1, replayedMessages: 7, incomplete: 0 });
  });

  test("the subscriber reconnecting first needs no replay and gets no duplicates", () => {
    const { a, b } = pair();
    const { p, s, wires } = twoNodesOn(a);
    for (let seq = 1; seq <= 3; seq++) p.app("gfx", pub("studio/tally", seq, "gfx-1", seq));
    wires[0].pumpUp();
    wires[1].pumpDown();
    switchTo(a, b, 2, [...wires]);
    const sToB = new Wire(s, b);
    settle(sToB);
    const pToB = new Wire(p, b);
    settle(sToB, pToB);
    p.app("gfx", pub("studio/tally", 4, "gfx-1", 4));
    settle(sToB, pToB);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 4));
    expect(s.deliveries.filter((d) => d.frame.type === "msg")).toHaveLength(4);
    expect(b.hub.replayStats).toMatchObject({ replays: 1, replayedMessages: 0 });
  });

  test("a message accepted between the subscriber's sub and its resync neither overtakes the replay nor is lost", () => {
    const { a, b } = pair();
    const { p, s, wires } = twoNodesOn(a);
    p.app("gfx", pub("studio/tally", 1, "gfx-1", 1));
    p.app("gfx", pub("studio/tally", 2, "gfx-1", 2));
    switchTo(a, b, 2, [...wires]);
    const pToB = new Wire(p, b);
    settle(pToB);
    const sToB = new Wire(s, b);
    sToB.pumpUp(2); // hello and sub reach B; resync is still on the way
    p.app("gfx", pub("studio/tally", 3, "gfx-1", 3));
    settle(pToB);
    sToB.pumpDown();
    expect(s.of("viewer", "msg")).toHaveLength(0); // held back: it would overtake 1 and 2, and they would then look like repeats
    settle(pToB, sToB);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 3));
  });

  test("two publishers on one node and overlapping filters: each publisher's order holds", () => {
    const { a, b } = pair();
    const p = new FakeNode("P");
    const s = new FakeNode("S");
    s.app("wide", { type: "sub", filter: "studio/#" });
    s.app("narrow", { type: "sub", filter: "studio/cam1/+" });
    const wires = [new Wire(p, a), new Wire(s, a)];
    settle(...wires);
    switchTo(a, b, 2, wires);
    for (let seq = 1; seq <= 3; seq++) {
      p.app("x", pub(seq === 2 ? "studio/cam2/tally" : "studio/cam1/tally", seq, "x", seq));
      p.app("y", pub("studio/cam1/tally", seq, "y", seq));
    }
    const pToB = new Wire(p, b);
    settle(pToB);
    settle(pToB, new Wire(s, b));
    expect(msgsOf(s, "wide")).toEqual(["x:1", "y:1", "x:2", "y:2", "x:3", "y:3"]);
    expect(msgsOf(s, "narrow")).toEqual(["x:1", "y:1", "y:2", "x:3", "y:3"]);
  });

  test("failback too: the main, back at epoch 3, replays to nodes coming from the backup", () => {
    const { a, b } = pair();
    const { p, s, wires } = twoNodesOn(a);
    switchTo(a, b, 2, [...wires]);
    const onB = [new Wire(p, b), new Wire(s, b)];
    settle(...onB);
    p.app("gfx", pub("studio/tally", 1, "gfx-1", 1));
    onB[0]!.pumpUp(); // B took 1, the ack and S's copy are lost with the switch back
    switchTo(b, a, 3, onB);
    p.app("gfx", pub("studio/tally", 2, "gfx-1", 2));
    const pToA = new Wire(p, a);
    settle(pToA);
    const sToA = new Wire(s, a);
    expect(sToA.pendingUp()[0]).toMatchObject({ type: "hello", resumeFromEpoch: 2 });
    settle(pToA, sToA);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 2));
  });
});

describe("a node's own hub in process (attached without a socket)", () => {
  test("writes queued while it did not serve reach the hub in order, so a node resuming from another epoch gets them all", () => {
    const a = new FakeHubServer({ epoch: 1, writable: false, streamId: "A" });
    const m = new FakeNode("M");
    for (let seq = 1; seq <= 100; seq++) m.app("app", pub("t/stream", seq, "app-1", seq));
    a.hub.setEpoch(3);
    a.hub.setWritable(true);
    // In process: every frame is handed over at once, and the hub's ack comes back inside the send.
    a.attach("local", (frame) => m.uplink.onFrameFromServer(frame));
    m.uplink.attachServer((frame) => a.receive("local", frame));
    expect(m.of("app", "ack")).toHaveLength(100);
    const s = new FakeNode("S");
    s.app("viewer", { type: "sub", filter: "t/#" });
    // S comes from the backup's epoch 2: it asks for everything A kept.
    (s.uplink as unknown as { resume: { epoch: number } }).resume.epoch = 2;
    settle(new Wire(s, a));
    expect(msgsOf(s, "viewer")).toEqual(range(1, 100, "app-1"));
  });
});

describe("what the hub replays", () => {
  function hubAtEpoch2(options: ConstructorParameters<typeof FakeHubServer>[0] = {}) {
    const server = new FakeHubServer({ epoch: 2, writable: true, streamId: "H", ...options });
    const publisher = new DirectConnection(server, "publisher");
    return { server, publisher };
  }

  test("hello is answered with welcome {epoch, stream, pos}, before presence; messages carry their position", () => {
    const { server, publisher } = hubAtEpoch2();
    publisher.send(pub("t", 1, "o", 1));
    const c = new DirectConnection(server, "c");
    expect(c.frames.map((f) => f.type)).toEqual(["welcome", "presence"]);
    expect(c.frames[0]).toEqual({ type: "welcome", epoch: 2, stream: "H", pos: 1 });
    c.send({ type: "sub", filter: "t" });
    publisher.send(pub("t", 2, "o", 2));
    expect(c.of("msg")).toEqual([{ type: "msg", topic: "t", data: 2, from: "o", seq: 2, pos: 2 }]);
  });

  test("only messages matching the resuming connection's filters, in the order accepted; later subs get none", () => {
    const { server, publisher } = hubAtEpoch2();
    publisher.send(pub("a/1", 1, "o", 1));
    publisher.send(pub("b/1", 2, "o", 2));
    publisher.send(pub("a/2", 3, "o", 3));
    publisher.send(pub("c", 4, "o", 4));
    const c = resumingConnection(server, "c", 1, ["a/#", "a/+", "c"]);
    expect(c.of("msg").map((m) => m.seq)).toEqual([1, 3, 4]);
    c.send({ type: "sub", filter: "b/#" }); // a new subscription after the replay starts from now, as always
    c.send({ type: "resync" }); // and a second resync does nothing
    expect(c.of("msg").map((m) => m.seq)).toEqual([1, 3, 4]);
    expect(c.of("error")).toEqual([]);
  });

  test("a first attach gets no replay; a cut from this hub gets what came after its position; a switch (either way) gets everything", () => {
    const { server, publisher } = hubAtEpoch2();
    for (let seq = 1; seq <= 3; seq++) publisher.send(pub("a", seq, "o", seq));
    expect(resumingConnection(server, "fresh", undefined, ["#"]).of("msg")).toEqual([]);
    // From a higher epoch: this hub took writes while the node was on the other server (hub-core.ts resumeAfter).
    expect(resumingConnection(server, "newer", 3, ["#"]).of("msg").map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(resumingConnection(server, "cut", 2, ["#"], { stream: "H", pos: 1 }).of("msg").map((m) => m.seq)).toEqual([2, 3]);
    expect(resumingConnection(server, "caught-up", 2, ["#"], { stream: "H", pos: 3 }).of("msg")).toEqual([]);
    // Same epoch, another stream: this hub restarted; the node de-duplicates what it had.
    expect(resumingConnection(server, "restarted", 2, ["#"], { stream: "old", pos: 9 }).of("msg").map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(resumingConnection(server, "older", 1, ["#"]).of("msg").map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  test("a fresh node sends no resumeFromEpoch and no resync; one attached before but never welcomed resumes from 0", () => {
    const { server } = hubAtEpoch2();
    const node = new FakeNode("n");
    node.app("app", { type: "sub", filter: "#" });
    const first = new Wire(node, server);
    expect(first.pendingUp()).toEqual([{ type: "hello", id: "n", name: "n", kind: "node" }, { type: "sub", filter: "#" }]);
    first.cut(); // before the welcome came back
    const second = new Wire(node, server);
    expect(second.pendingUp().slice(0, 3)).toEqual([
      { type: "hello", id: "n", name: "n", kind: "node", resumeFromEpoch: 0 },
      { type: "sub", filter: "#" },
      { type: "resync" },
    ]);
  });

  test("a full ring tells the resuming node how many messages it no longer holds (gap), replays what it kept, and counts it", () => {
    const { server, publisher } = hubAtEpoch2({ replay: { maxMessages: 3 } });
    for (let seq = 1; seq <= 5; seq++) publisher.send(pub("t", seq, "o", seq));
    const c = resumingConnection(server, "c", 1, ["t"]);
    expect(c.of("gap")).toEqual([
      {
        type: "gap",
        missed: 2,
        message:
          "2 messages published while this node was away are no longer held by the hub (it keeps at most 3 messages, 16 MiB, 60 s, " +
          "for nodes that reconnect); some may not have matched this node's subscriptions.",
      },
    ]);
    expect(c.of("msg").map((m) => m.seq)).toEqual([3, 4, 5]);
    expect(server.hub.replayStats).toEqual({ buffered: 3, bufferedBytes: expect.any(Number), dropped: 2, replays: 1, replayedMessages: 3, incomplete: 1 });
    // Cut from this hub after position 1: 2 is gone, 3 to 5 are replayed.
    const cut = resumingConnection(server, "cut", 2, ["t"], { stream: "H", pos: 1 });
    expect(cut.of("gap").map((g) => g.missed)).toEqual([1]);
    expect(cut.of("msg").map((m) => m.seq)).toEqual([3, 4, 5]);
    expect(resumingConnection(server, "recent", 2, ["t"], { stream: "H", pos: 2 }).of("gap")).toEqual([]);
  });

  test("messages trimmed by age make the replay incomplete too", () => {
    const { server, publisher } = hubAtEpoch2({ replay: { maxAgeMs: 10_000 } });
    publisher.send(pub("t", 1, "o", 1));
    expect(server.hub.trimReplay(1_000)).toBe(0);
    publisher.send(pub("t", 2, "o", 2));
    expect(server.hub.trimReplay(11_000)).toBe(1);
    const c = resumingConnection(server, "c", 1, ["t"]);
    expect(c.of("gap").map((g) => g.missed)).toEqual([1]);
    expect(c.of("msg").map((m) => m.seq)).toEqual([2]);
  });

  test("the node passes a gap on to its subscribing apps and counts it", () => {
    const { a, b } = pair({ replay: { maxMessages: 1 } });
    const p = new FakeNode("P");
    const s = new FakeNode("S");
    s.app("viewer", { type: "sub", filter: "t" });
    const wires = [new Wire(p, a), new Wire(s, a)];
    settle(...wires);
    switchTo(a, b, 2, wires);
    p.app("gfx", pub("t", 1, "g", 1));
    p.app("gfx", pub("t", 2, "g", 2));
    const pToB = new Wire(p, b);
    settle(pToB);
    settle(pToB, new Wire(s, b));
    expect(s.of("viewer", "gap").map((g: FromHubFrameOf<"gap">) => g.missed)).toEqual([1]);
    expect(s.uplink.replaysIncomplete).toBe(1);
    expect(s.uplink.messagesMissed).toBe(1);
    expect(msgsOf(s, "viewer")).toEqual(["g:2"]);
  });

  test("a resuming connection with no subscriptions is not told anything", () => {
    const { server, publisher } = hubAtEpoch2({ replay: { maxMessages: 1 } });
    for (let seq = 1; seq <= 3; seq++) publisher.send(pub("t", seq, "o", seq));
    const c = resumingConnection(server, "c", 1, []);
    expect(c.frames.filter((f) => f.type === "gap" || f.type === "error")).toEqual([]);
    expect(server.hub.replayStats.replays).toBe(0);
  });

  test("a rising epoch empties the ring; setting the same epoch again does not", () => {
    const { server, publisher } = hubAtEpoch2({ replay: { maxMessages: 2 } });
    for (let seq = 1; seq <= 3; seq++) publisher.send(pub("t", seq, "o", seq));
    server.hub.setEpoch(2);
    expect(server.hub.replayStats).toMatchObject({ buffered: 2, dropped: 1 });
    server.hub.setEpoch(3);
    expect(server.hub.replayStats).toMatchObject({ buffered: 0, bufferedBytes: 0, dropped: 0 });
    const c = resumingConnection(server, "c", 2, ["t"]);
    expect(c.frames.filter((f) => f.type === "msg" || f.type === "error")).toEqual([]);
  });

  test("a standby keeps nothing to replay (it takes no writes)", () => {
    const server = new FakeHubServer({ epoch: 2, writable: false });
    new DirectConnection(server, "p").send(pub("t", 1, "o", 1));
    expect(server.hub.replayStats.buffered).toBe(0);
  });

  test("live messages wait for resync; a resuming connection that closes is forgotten", () => {
    const { server, publisher } = hubAtEpoch2();
    const c = new DirectConnection(server, "c", { kind: "app" });
    const waiting = new DirectConnection(server, "w", null);
    waiting.send({ type: "hello", id: "w", name: "w", kind: "app", resumeFromEpoch: 1 });
    for (const conn of [c, waiting]) conn.send({ type: "sub", filter: "t" });
    publisher.send(pub("t", 1, "o", 1));
    expect(c.of("msg")).toHaveLength(1);
    expect(waiting.of("msg")).toHaveLength(0);
    waiting.close();
    publisher.send(pub("t", 2, "o", 2));
    expect(server.fanouts.at(-1)?.to).toEqual(["c"]);
  });
});

describe("a node cut from the hub it follows, at the same epoch (no switch)", () => {
  test("gets what was published meanwhile from the ring, once and in order", () => {
    const { a } = pair();
    const { p, s, wires } = twoNodesOn(a);
    p.app("gfx", pub("studio/tally", 1, "gfx-1", 1));
    settle(...wires);
    wires[1].cut();
    for (let seq = 2; seq <= 6; seq++) p.app("gfx", pub("studio/tally", seq, "gfx-1", seq));
    settle(wires[0]);
    const again = new Wire(s, a);
    settle(wires[0], again);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 6));
    p.app("gfx", pub("studio/tally", 7, "gfx-1", 7));
    settle(wires[0], again);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 7));
    expect(s.of("viewer", "gap")).toEqual([]);
  });

  test("a node cut twice resumes from where it got to the second time, not from the first", () => {
    const { a } = pair();
    const { p, s, wires } = twoNodesOn(a);
    wires[1].cut();
    p.app("gfx", pub("studio/tally", 1, "gfx-1", 1));
    settle(wires[0]);
    const second = new Wire(s, a);
    settle(wires[0], second);
    second.cut();
    p.app("gfx", pub("studio/tally", 2, "gfx-1", 2));
    settle(wires[0]);
    const third = new Wire(s, a);
    expect(third.pendingUp()[0]).toMatchObject({ type: "hello", resumeFromEpoch: 1, resumeStream: "A", resumeFromPos: 1 });
    settle(wires[0], third);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 2));
  });

  test("what the ring no longer holds reaches the apps as a gap with its count, then the rest in order", () => {
    const a = new FakeHubServer({ epoch: 1, writable: true, streamId: "A", replay: { maxMessages: 3 } });
    const { p, s, wires } = twoNodesOn(a);
    wires[1].cut();
    for (let seq = 1; seq <= 5; seq++) p.app("gfx", pub("studio/tally", seq, "gfx-1", seq));
    settle(wires[0]);
    settle(wires[0], new Wire(s, a));
    expect(s.of("viewer", "gap").map((g) => g.missed)).toEqual([2]);
    expect(msgsOf(s, "viewer")).toEqual(range(3, 5));
    expect(s.uplink.messagesMissed).toBe(2);
  });
});
