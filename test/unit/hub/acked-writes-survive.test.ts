/**
 * Nothing a hub acknowledged is lost when that hub dies or the network moves
 * back: the publisher's node keeps what was acknowledged for a while and resends
 * it, first and in order, to the next server it reaches; subscribers drop what
 * they already delivered. In-process hubs and uplinks on buffered wires.
 */
import { describe, expect, test } from "bun:test";
import { FakeHubServer, FakeNode, Wire, settle } from "./hub-harness.ts";

const pub = (topic: string, data: unknown, origin: string, seq: number) => ({ type: "pub", topic, data, origin, seq }) as const;
const set = (key: string, value: unknown, origin: string, seq: number) => ({ type: "set", key, value, origin, seq }) as const;
const msgsOf = (node: FakeNode, app: string) => node.of(app, "msg").map((m) => `${m.from}:${m.seq}`);
const range = (from: number, to: number, origin = "gfx-1") => Array.from({ length: to - from + 1 }, (_, i) => `${origin}:${from + i}`);

/** Main A active at epoch 1, backup B idle. */
function servers() {
  return { a: new FakeHubServer({ epoch: 1, writable: true, streamId: "A" }), b: new FakeHubServer({ epoch: 1, writable: false, streamId: "B" }) };
}

function subscriber(id = "S", filter = "studio/#") {
  const s = new FakeNode(id);
  s.app("viewer", { type: "sub", filter });
  return s;
}

describe("(a) the main acknowledged a message and died before fanning it out", () => {
  test("the publisher's node resends it to the backup, and the subscriber gets every message once, in order", () => {
    const { a, b } = servers();
    const p = new FakeNode("P");
    const s = subscriber();
    const pToA = new Wire(p, a);
    const sToA = new Wire(s, a);
    settle(pToA, sToA);
    p.app("gfx", pub("studio/tally", 1, "gfx-1", 1));
    settle(pToA, sToA);
    for (let seq = 2; seq <= 4; seq++) p.app("gfx", pub("studio/tally", seq, "gfx-1", seq));
    pToA.pumpUp();
    pToA.pumpDown();
    sToA.pumpDown(1); // S's copy of 2 arrives; 3 and 4 die with A (kill -9)
    expect(p.of("gfx", "ack")).toHaveLength(4);
    expect(p.uplink.queuedFrames).toBe(0);
    pToA.cut();
    sToA.cut();
    b.hub.importState(a.hub.exportStateSince(b.hub.lastVersion));
    b.hub.setEpoch(2);
    b.hub.setWritable(true);

    const pToB = new Wire(p, b);
    settle(pToB);
    p.app("gfx", pub("studio/tally", 5, "gfx-1", 5));
    settle(pToB, new Wire(s, b));
    expect(msgsOf(s, "viewer")).toEqual(range(1, 5));
    expect(p.of("gfx", "ack")).toHaveLength(5); // each write acknowledged to its app once
  });

  test("a retained value the backup had not copied yet reaches it and the subscribers", () => {
    const { a, b } = servers();
    const p = new FakeNode("P");
    const s = subscriber("S", "show/#");
    const pToA = new Wire(p, a);
    const sToA = new Wire(s, a);
    settle(pToA, sToA);
    p.app("ctl", set("show/clock", "12:00", "ctl-1", 1));
    pToA.pumpUp();
    pToA.pumpDown();
    expect(p.of("ctl", "ack")).toHaveLength(1);
    pToA.cut();
    sToA.cut();
    b.hub.setEpoch(2); // nothing copied: A died within its replication interval
    b.hub.setWritable(true);
    settle(new Wire(p, b), new Wire(s, b));
    expect(b.hub.retainedEntry("show/clock")?.value).toBe("12:00");
    expect(s.of("viewer", "value").map((v) => v.value)).toEqual(["12:00"]);
  });
});

describe("(b) at a failback both servers are briefly active", () => {
  test("what the backup acknowledged after the subscriber moved to the main reaches it through the main", () => {
    const { a, b } = servers();
    const p = new FakeNode("P");
    const s = subscriber();
    // The main died; the backup serves at epoch 2 and both nodes follow it.
    a.hub.setWritable(false);
    b.hub.setEpoch(2);
    b.hub.setWritable(true);
    const pToB = new Wire(p, b);
    const sToB = new Wire(s, b);
    settle(pToB, sToB);
    p.app("gfx", pub("studio/tally", 1, "gfx-1", 1));
    settle(pToB, sToB);
    // The main is back at epoch 3 and copies the state; the backup has not stepped down yet.
    a.hub.importState(b.hub.exportStateSince(a.hub.lastVersion));
    a.hub.setEpoch(3);
    a.hub.setWritable(true);
    sToB.cut();
    const sToA = new Wire(s, a);
    settle(sToA);
    // Still on the backup, P publishes; the backup acknowledges 2 and 3 (and has no one to give them to).
    p.app("gfx", pub("studio/tally", 2, "gfx-1", 2));
    p.app("gfx", pub("studio/tally", 3, "gfx-1", 3));
    settle(pToB);
    expect(p.of("gfx", "ack")).toHaveLength(3);
    b.hub.setWritable(false);
    pToB.cut();

    const pToA = new Wire(p, a);
    p.app("gfx", pub("studio/tally", 4, "gfx-1", 4));
    settle(pToA, sToA);
    expect(msgsOf(s, "viewer")).toEqual(range(1, 4));
  });

  test("a value the backup acknowledged after the main copied its state ends up on the main", () => {
    const { a, b } = servers();
    const p = new FakeNode("P");
    const s = subscriber("S", "show/#");
    a.hub.setWritable(false);
    b.hub.setEpoch(2);
    b.hub.setWritable(true);
    const pToB = new Wire(p, b);
    settle(pToB);
    a.hub.importState(b.hub.exportStateSince(a.hub.lastVersion));
    a.hub.setEpoch(3);
    a.hub.setWritable(true);
    const sToA = new Wire(s, a);
    settle(sToA);
    p.app("ctl", set("show/clock", "12:01", "ctl-1", 1));
    settle(pToB);
    expect(p.of("ctl", "ack")).toHaveLength(1);
    b.hub.setWritable(false);
    pToB.cut();
    settle(new Wire(p, a), sToA);
    expect(a.hub.retainedEntry("show/clock")?.value).toBe("12:01");
    expect(s.of("viewer", "value").map((v) => v.value)).toEqual(["12:01"]);
  });
});

describe("resent values keep the order the hub that acknowledged them gave", () => {
  test("two nodes' writes to one key, resent to the backup in the opposite order: the later write still wins", () => {
    const { a, b } = servers();
    const p = new FakeNode("P");
    const q = new FakeNode("Q");
    const pToA = new Wire(p, a);
    const qToA = new Wire(q, a);
    settle(pToA, qToA);
    p.app("ctl", set("show/scene", "intro", "p-1", 1));
    settle(pToA);
    q.app("ctl", set("show/scene", "live", "q-1", 1));
    settle(qToA);
    expect(a.hub.retainedEntry("show/scene")?.value).toBe("live");
    pToA.cut();
    qToA.cut();
    b.hub.setEpoch(2);
    b.hub.setWritable(true);
    settle(new Wire(q, b));
    settle(new Wire(p, b));
    expect(b.hub.retainedEntry("show/scene")?.value).toBe("live");
  });

  test("a value written on the new server after the takeover is not undone by an older resend", () => {
    const { a, b } = servers();
    const p = new FakeNode("P");
    const pToA = new Wire(p, a);
    p.app("ctl", set("show/scene", "intro", "p-1", 1));
    settle(pToA);
    pToA.cut();
    b.hub.setEpoch(2);
    b.hub.setWritable(true);
    const r = new FakeNode("R");
    const rToB = new Wire(r, b);
    r.app("ctl", set("show/scene", "break", "r-1", 1));
    settle(rToB);
    settle(new Wire(p, b));
    expect(b.hub.retainedEntry("show/scene")?.value).toBe("break");
  });
});

describe("(c) an isolated main hands on what it acknowledged before it fenced", () => {
  test("its own app's messages, acknowledged by its own hub in the moment before it fenced, reach a client's subscriber once it serves again", () => {
    const { a, b } = servers();
    const m = new FakeNode("M"); // the main's own node: its apps publish through its own hub
    const s = subscriber();
    const mToA = new Wire(m, a);
    const sToA = new Wire(s, a);
    settle(mToA, sToA);
    p(m, 1);
    settle(mToA, sToA);
    // The cut: the main still acknowledges its own app for a moment; the client hears none of it.
    sToA.cut();
    for (let seq = 2; seq <= 4; seq++) p(m, seq);
    settle(mToA);
    expect(m.of("gfx", "ack")).toHaveLength(4);
    // The main fences ("Main isolated"), its apps wait; the backup serves the client meanwhile.
    a.hub.setWritable(false);
    mToA.cut();
    b.hub.setEpoch(2);
    b.hub.setWritable(true);
    settle(new Wire(s, b));
    // The network heals: the main copies the backup's state and takes over again (failback), at a higher epoch.
    a.hub.importState(b.hub.exportStateSince(a.hub.lastVersion));
    a.hub.setEpoch(3);
    a.hub.setWritable(true);
    settle(new Wire(m, a), new Wire(s, a));
    expect(msgsOf(s, "viewer")).toEqual(range(1, 4));
    expect(m.of("gfx", "ack")).toHaveLength(4);
  });
});

function p(node: FakeNode, seq: number): void {
  node.app("gfx", pub("studio/tally", seq, "gfx-1", seq));
}
