import { describe, expect, test } from "bun:test";
import { DirectConnection, FakeHubServer, FakeNode, Wire, settle } from "./hub-harness.ts";

const pub = (topic: string, data: unknown, origin: string, seq: number) => ({ type: "pub", topic, data, origin, seq }) as const;
const msgsOf = (node: FakeNode, app: string) => node.of(app, "msg").map((m) => `${m.from}:${m.seq}`);

/** Main and backup hubs; the main active at epoch 1. */
function pair() {
  const main = new FakeHubServer({ epoch: 1, writable: true });
  const backup = new FakeHubServer({ epoch: 1, writable: false });
  return { main, backup };
}

/** The main dies: every wire to it breaks; the backup takes over at epoch 2 (after copying the main's state). */
function failOver(main: FakeHubServer, backup: FakeHubServer, wires: Wire[]) {
  backup.hub.importState(main.hub.exportStateSince(backup.hub.lastVersion));
  for (const wire of wires) wire.cut();
  main.hub.setWritable(false);
  backup.hub.setEpoch(2);
  backup.hub.setWritable(true);
}

describe("the outbound queue", () => {
  test("a full queue makes writes wait in line (backpressure); room lets them in, in order", () => {
    const { main } = pair();
    const node = new FakeNode("n", { maxQueuedFrames: 3 });
    for (let seq = 1; seq <= 5; seq++) expect(node.app("app", pub("a", seq, "o", seq))).toBeNull();
    expect(node.uplink.queuedFrames).toBe(3);
    expect(node.uplink.waitingFrames).toBe(2);
    expect(node.of("app", "error")).toEqual([]);
    const wire = new Wire(node, main);
    settle(wire);
    expect(node.of("app", "ack").map((a) => a.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(node.uplink.waitingFrames).toBe(0);
  });

  test("a write that waits publishWaitMs for room is refused with PUBLISH_TIMEOUT, saying why", () => {
    const node = new FakeNode("n", { maxQueuedFrames: 1, publishWaitMs: 5_000 });
    node.uplink.fromApp("app", pub("a", 1, "o", 1), 0);
    node.uplink.fromApp("app", pub("a", 2, "o", 2), 1_000);
    node.uplink.fromApp("app", pub("a", 3, "o", 3), 2_000);
    expect(node.uplink.expireWaiting(5_999)).toBe(0);
    expect(node.uplink.expireWaiting(6_000)).toBe(1);
    expect(node.of("app", "error")).toEqual([
      {
        type: "error",
        code: "PUBLISH_TIMEOUT",
        message: "The message waited 5 s for room in the node's queue (1 messages) while no server was active, and was not sent.",
        ref: { type: "pub", origin: "o", seq: 2 },
      },
    ]);
    expect(node.uplink.waitingFrames).toBe(1);
  });

  test("when the waiting line is full too, the next write is refused at once with QUEUE_FULL", () => {
    const node = new FakeNode("n", { maxQueuedFrames: 2, maxWaitingFrames: 1 });
    for (let seq = 1; seq <= 3; seq++) expect(node.app("app", pub("a", seq, "o", seq))).toBeNull();
    const error = node.app("app", pub("a", 4, "o", 4));
    expect(error?.code).toBe("QUEUE_FULL");
    expect(error?.message).toBe("The node is switching servers and its queue is full (2 messages); the message was not sent.");
    expect(node.of("app", "error")).toEqual([{ type: "error", code: "QUEUE_FULL", message: error!.message, ref: { type: "pub", origin: "o", seq: 4 } }]);
  });

  test("the waiting line is bounded in bytes too", () => {
    const node = new FakeNode("n", { maxQueuedFrames: 1, maxWaitingBytes: 1000 });
    expect(node.app("app", pub("a", 1, "o", 1))).toBeNull();
    expect(node.app("app", pub("a", "x".repeat(600), "o", 2))).toBeNull();
    expect(node.app("app", pub("a", "x".repeat(600), "o", 3))?.code).toBe("QUEUE_FULL");
  });

  test("the queue is bounded in bytes too: a write beyond it waits", () => {
    const node = new FakeNode("n", { maxQueuedBytes: 1000 });
    expect(node.app("app", pub("a", "x".repeat(600), "o", 1))).toBeNull();
    expect(node.app("app", pub("a", "x".repeat(600), "o", 2))).toBeNull();
    expect(node.uplink.queuedFrames).toBe(1);
    expect(node.uplink.waitingFrames).toBe(1);
  });

  test("at most a window of writes is on the wire; each ack sends the next", () => {
    const { main } = pair();
    const node = new FakeNode("n", { sendWindow: 2 });
    const wire = new Wire(node, main);
    settle(wire);
    for (let seq = 1; seq <= 5; seq++) node.app("app", pub("a", seq, "o", seq));
    expect(wire.pendingUp().map((f) => (f.type === "pub" ? f.seq : f.type))).toEqual([1, 2]);
    wire.pumpUp();
    wire.pumpDown(1); // the ack of 1
    expect(wire.pendingUp().map((f) => (f.type === "pub" ? f.seq : f.type))).toEqual([3]);
    settle(wire);
    expect(node.of("app", "ack").map((a) => a.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  test("20,000 messages back to back from one app arrive whole, in order, once, and every one is acknowledged", () => {
    const { main } = pair();
    const publisher = new FakeNode("P");
    const subscriber = new FakeNode("S");
    subscriber.app("viewer", { type: "sub", filter: "studio/#" });
    const wires = [new Wire(publisher, main), new Wire(subscriber, main)];
    settle(...wires);
    const count = 20_000;
    const refused = [];
    for (let seq = 1; seq <= count; seq++) {
      const error = publisher.app("gfx", pub("studio/tracking", { x: seq, pad: "p".repeat(120) }, "gfx-1", seq));
      if (error) refused.push(error);
      if (seq % 500 === 0) settle(...wires); // the wire carries what the window let out
    }
    settle(...wires);
    expect(refused).toEqual([]);
    expect(publisher.of("gfx", "ack")).toHaveLength(count);
    const seqs = subscriber.of("viewer", "msg").map((m) => m.seq);
    expect(seqs).toHaveLength(count);
    expect(seqs.every((seq, i) => seq === i + 1)).toBe(true);
  });

  test("an entry leaves the queue only when the hub acks it; the app hears the ack", () => {
    const { main } = pair();
    const node = new FakeNode("n");
    const wire = new Wire(node, main);
    node.app("app", pub("a", 1, "o", 1));
    wire.pumpUp();
    expect(node.uplink.queuedFrames).toBe(1); // accepted by the hub, ack not back yet
    wire.pumpDown();
    expect(node.uplink.queuedFrames).toBe(0);
    expect(node.of("app", "ack")).toEqual([{ type: "ack", origin: "o", seq: 1 }]);
  });

  test("a bad frame from an app is refused by the node, before it is queued", () => {
    const node = new FakeNode("n");
    const error = node.app("app", pub("a/#", 1, "o", 1));
    expect(error?.code).toBe("INVALID_FRAME");
    expect(node.of("app", "error")[0]?.message).toContain('cannot contain "+" or "#"');
    expect(node.uplink.queuedFrames).toBe(0);
  });
});

describe("a server switch, end to end through HubCore", () => {
  test("what was unacknowledged is resent and delivered once, in order; subscriptions follow", () => {
    const { main, backup } = pair();
    const publisher = new FakeNode("publisher");
    const subscriber = new FakeNode("subscriber");
    subscriber.app("viewer", { type: "sub", filter: "studio/#" });
    const toMain = [new Wire(publisher, main), new Wire(subscriber, main)];
    settle(...toMain);

    for (let seq = 1; seq <= 3; seq++) publisher.app("gfx", pub("studio/tally", seq, "gfx-1", seq));
    settle(...toMain);
    // 4 and 5 reach the main, which delivers them to the subscriber, but the main dies before the acks get back.
    publisher.app("gfx", pub("studio/tally", 4, "gfx-1", 4));
    publisher.app("gfx", pub("studio/tally", 5, "gfx-1", 5));
    toMain[0]!.pumpUp();
    toMain[1]!.pumpDown();
    failOver(main, backup, toMain);
    // Published during the switch: queued.
    publisher.app("gfx", pub("studio/tally", 6, "gfx-1", 6));
    expect(publisher.uplink.queuedFrames).toBe(3);

    const toBackup = [new Wire(subscriber, backup), new Wire(publisher, backup)];
    settle(...toBackup);
    expect(msgsOf(subscriber, "viewer")).toEqual(["gfx-1:1", "gfx-1:2", "gfx-1:3", "gfx-1:4", "gfx-1:5", "gfx-1:6"]);
    expect(publisher.uplink.queuedFrames).toBe(0);
    expect(publisher.of("gfx", "ack").map((a) => a.seq)).toEqual([1, 2, 3, 4, 5, 6]);

    // The subscription was re-made on the backup: someone connected there directly reaches the viewer.
    const direct = new DirectConnection(backup, "script");
    direct.send(pub("studio/other", "hi", "script-1", 1));
    settle(...toBackup);
    expect(msgsOf(subscriber, "viewer").at(-1)).toBe("script-1:1");
  });

  test("messages the main accepted but never delivered are delivered by the backup", () => {
    const { main, backup } = pair();
    const publisher = new FakeNode("publisher");
    const subscriber = new FakeNode("subscriber");
    subscriber.app("viewer", { type: "sub", filter: "#" });
    const toMain = [new Wire(publisher, main), new Wire(subscriber, main)];
    settle(...toMain);
    publisher.app("gfx", pub("t", 1, "gfx-1", 1));
    toMain[0]!.pumpUp(); // the main took it; its delivery to the subscriber is lost with the main
    failOver(main, backup, toMain);
    settle(new Wire(subscriber, backup), new Wire(publisher, backup));
    expect(msgsOf(subscriber, "viewer")).toEqual(["gfx-1:1"]);
  });

  test.each(["the subscriber", "the publisher"])("each publisher's messages arrive in its order, across the switch (%s reconnects first)", (first) => {
    const { main, backup } = pair();
    const publisher = new FakeNode("publisher");
    const subscriber = new FakeNode("subscriber");
    subscriber.app("viewer", { type: "sub", filter: "#" });
    const toMain = [new Wire(publisher, main), new Wire(subscriber, main)];
    settle(...toMain);
    for (let seq = 1; seq <= 4; seq++) {
      publisher.app("a", pub("t", seq, "app-a", seq));
      publisher.app("b", pub("t", seq, "app-b", seq));
    }
    toMain[0]!.pumpUp();
    toMain[1]!.pumpDown();
    failOver(main, backup, toMain);
    for (let seq = 5; seq <= 8; seq++) {
      publisher.app("b", pub("t", seq, "app-b", seq));
      publisher.app("a", pub("t", seq, "app-a", seq));
    }
    // Either order works: a subscriber arriving after the publisher flushed gets the backup's replay of this epoch.
    if (first === "the subscriber") settle(new Wire(subscriber, backup), new Wire(publisher, backup));
    else {
      const toBackup = new Wire(publisher, backup);
      settle(toBackup);
      expect(publisher.uplink.queuedFrames).toBe(0); // all resent and acked before the subscriber is back
      settle(toBackup, new Wire(subscriber, backup));
    }
    const seqs = (origin: string) => subscriber.of("viewer", "msg").filter((m) => m.from === origin).map((m) => m.seq);
    expect(seqs("app-a")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(seqs("app-b")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test("a server that is not active keeps the node's writes queued until the active one is attached", () => {
    const { main, backup } = pair();
    const node = new FakeNode("n");
    const toBackup = new Wire(node, backup); // attached to the idle backup by mistake (or too early)
    node.app("app", pub("t", 1, "o", 1));
    node.app("app", pub("t", 2, "o", 2));
    settle(toBackup);
    expect(node.uplink.needsReattach).toBe(true);
    expect(node.uplink.queuedFrames).toBe(2);
    node.app("app", pub("t", 3, "o", 3));
    settle(toBackup);
    expect(node.of("app", "error")).toHaveLength(0); // NOT_ACTIVE is the node's business, not the app's
    toBackup.cut();
    const s = new DirectConnection(main, "s");
    s.send({ type: "sub", filter: "t" });
    settle(new Wire(node, main));
    expect(s.of("msg").map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(node.uplink.needsReattach).toBe(false);
  });
});

describe("retained values on the node", () => {
  test("a second app subscribing gets the values the node already holds; repeats after a switch are filtered out", () => {
    const { main, backup } = pair();
    const writer = new DirectConnection(main, "writer");
    writer.send({ type: "set", key: "tally/cam1", value: "red", origin: "w", seq: 1 });
    const node = new FakeNode("n");
    node.app("first", { type: "sub", filter: "tally/#" });
    const wire = new Wire(node, main);
    settle(wire);
    node.app("second", { type: "sub", filter: "tally/cam1" });
    settle(wire);
    expect(node.of("first", "value").map((v) => v.value)).toEqual(["red"]);
    expect(node.of("second", "value").map((v) => v.value)).toEqual(["red"]);
    failOver(main, backup, [wire]);
    settle(new Wire(node, backup));
    expect(node.of("first", "value")).toHaveLength(1);
    expect(node.of("second", "value")).toHaveLength(1);
  });

  test("a value deleted while the node was switching is reported as deleted", () => {
    const { main, backup } = pair();
    new DirectConnection(main, "writer").send({ type: "set", key: "gfx/lower-third", value: "on", origin: "w", seq: 1 });
    const node = new FakeNode("n");
    node.app("app", { type: "sub", filter: "gfx/#" });
    const wire = new Wire(node, main);
    settle(wire);
    failOver(main, backup, [wire]);
    new DirectConnection(backup, "writer2").send({ type: "set", key: "gfx/lower-third", value: null, origin: "w2", seq: 1 });
    settle(new Wire(node, backup));
    expect(node.of("app", "value").map((v) => v.value)).toEqual(["on", null]);
  });

  test("get answers go to the app that asked, with its own id, also when asked during a switch", () => {
    const { main } = pair();
    new DirectConnection(main, "writer").send({ type: "set", key: "k", value: 7, origin: "w", seq: 1 });
    const node = new FakeNode("n");
    node.app("app", { type: "get", key: "k", id: "mine" });
    settle(new Wire(node, main));
    expect(node.of("app", "value")).toEqual([{ type: "value", key: "k", value: 7, version: { epoch: 1, seq: 1 }, id: "mine" }]);
  });
});

describe("calls through nodes", () => {
  function twoNodes() {
    const { main, backup } = pair();
    const provider = new FakeNode("provider-node");
    const caller = new FakeNode("caller-node");
    provider.app("player", { type: "offer", service: "clip.play" });
    const wires = [new Wire(provider, main), new Wire(caller, main)];
    settle(...wires);
    return { main, backup, provider, caller, wires };
  }

  test("a call reaches the offering app and its reply comes back with the caller's id", () => {
    const { provider, caller, wires } = twoNodes();
    caller.app("ui", { type: "call", service: "clip.play", id: "1", data: { clip: 2 } });
    settle(...wires);
    const incoming = provider.of("player", "call")[0]!;
    expect(incoming).toMatchObject({ service: "clip.play", data: { clip: 2 }, from: "caller-node" });
    provider.app("player", { type: "reply", id: incoming.id, data: "playing" });
    settle(...wires);
    expect(caller.of("ui", "reply")).toEqual([{ type: "reply", id: "1", data: "playing" }]);
  });

  test("a call in flight during a switch fails with CALL_INTERRUPTED; while detached, calls fail at once", () => {
    const { main, backup, provider, caller, wires } = twoNodes();
    caller.app("ui", { type: "call", service: "clip.play", id: "1", data: null });
    failOver(main, backup, wires);
    expect(caller.of("ui", "reply")[0]?.error?.code).toBe("CALL_INTERRUPTED");
    const error = caller.app("ui", { type: "call", service: "clip.play", id: "2", data: null });
    expect(error?.code).toBe("NOT_CONNECTED");
    // After the switch the service is offered again on the backup.
    const again = [new Wire(provider, backup), new Wire(caller, backup)];
    settle(...again);
    caller.app("ui", { type: "call", service: "clip.play", id: "3", data: null });
    settle(...again);
    expect(provider.of("player", "call")).toHaveLength(1);
  });

  test("a reply for the previous server's call is not sent to the next one", () => {
    const { main, backup, provider, caller, wires } = twoNodes();
    caller.app("ui", { type: "call", service: "clip.play", id: "1", data: null });
    settle(...wires);
    const stale = provider.of("player", "call")[0]!;
    failOver(main, backup, wires);
    const toBackup = new Wire(provider, backup);
    settle(toBackup);
    provider.app("player", { type: "reply", id: stale.id, data: "late" });
    expect(toBackup.idle).toBe(true);
  });

  test("the offering app leaving mid-call answers the caller with PROVIDER_GONE", () => {
    const { provider, caller, wires } = twoNodes();
    caller.app("ui", { type: "call", service: "clip.play", id: "1", data: null });
    settle(...wires);
    provider.uplink.appGone("player");
    settle(...wires);
    expect(caller.of("ui", "reply")).toEqual([{ type: "reply", id: "1", error: { code: "PROVIDER_GONE", message: expect.stringContaining('"clip.play"') } }]);
  });

  test("only one app per node offers a service; when it leaves, the service is withdrawn", () => {
    const { provider, caller, wires } = twoNodes();
    expect(provider.app("other", { type: "offer", service: "clip.play" })?.code).toBe("SERVICE_TAKEN");
    provider.uplink.appGone("player");
    settle(...wires);
    caller.app("ui", { type: "call", service: "clip.play", id: "1", data: null });
    settle(...wires);
    expect(caller.of("ui", "reply")[0]?.error?.code).toBe("NO_SERVICE");
  });
});

describe("local apps", () => {
  test("the node subscribes to the union of its apps' filters and unsubscribes when the last one goes", () => {
    const node = new FakeNode("n");
    node.app("a", { type: "sub", filter: "x/#" });
    node.app("b", { type: "sub", filter: "x/#" });
    node.app("b", { type: "sub", filter: "y" });
    expect(node.uplink.subscriptions()).toEqual(["x/#", "y"]);
    node.uplink.appGone("b");
    expect(node.uplink.subscriptions()).toEqual(["x/#"]);
    node.app("a", { type: "unsub", filter: "x/#" });
    expect(node.uplink.subscriptions()).toEqual([]);
  });

  test("an incoming message goes to the matching apps once, even if the server sends it twice", () => {
    const node = new FakeNode("n");
    node.app("a", { type: "sub", filter: "x/#" });
    node.app("b", { type: "sub", filter: "x/y" });
    node.app("c", { type: "sub", filter: "z" });
    const msg = { type: "msg", topic: "x/y", data: 1, from: "o", seq: 1 };
    node.uplink.onFrameFromServer(msg);
    node.uplink.onFrameFromServer(JSON.stringify(msg));
    expect(node.deliveries.filter((d) => d.frame.type === "msg")).toEqual([{ frame: msg as never, apps: ["a", "b"] }]);
  });

  test("presence from the server reaches every app; an app saying hello gets the latest", () => {
    const { main } = pair();
    const node = new FakeNode("n");
    node.app("a", { type: "ping", sentAt: 1 });
    settle(new Wire(node, main));
    expect(node.of("a", "presence").at(-1)?.members.map((m) => m.id)).toEqual(["n"]);
    node.app("b", { type: "hello", id: "b", name: "b", kind: "app" });
    expect(node.of("b", "presence")).toHaveLength(1);
  });
});
