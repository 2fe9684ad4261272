import { describe, expect, test } from "bun:test";
import { HubCore } from "../../../src/hub/hub-core.ts";
import { DirectConnection, FakeHubServer } from "./hub-harness.ts";

function activeHub(options: ConstructorParameters<typeof FakeHubServer>[0] = {}) {
  return new FakeHubServer({ epoch: 1, writable: true, ...options });
}

let seq = 0;
const pub = (topic: string, data: unknown, origin = "pub-app", s = ++seq) => ({ type: "pub", topic, data, origin, seq: s }) as const;

describe("bad input never throws out of the hub", () => {
  test("a bad frame gets an error frame naming the problem, and changes nothing", () => {
    const server = activeHub();
    const a = new DirectConnection(server, "a");
    a.clear();
    for (const bad of ["not json", 42, null, { type: "nope" }, { type: "sub", filter: "a/#/b" }]) a.send(bad);
    expect(a.frames.map((f) => f.type)).toEqual(["error", "error", "error", "error", "error"]);
    expect(a.of("error").every((e) => e.code === "INVALID_FRAME")).toBe(true);
    expect(a.of("error")[4]!.message).toContain('"#" may only be the last level');
    expect(a.of("error")[4]!.ref).toEqual({ type: "sub", filter: "a/#/b" });
  });

  test("only hello and ping are taken before hello", () => {
    const server = activeHub();
    const a = new DirectConnection(server, "a", null);
    a.send({ type: "sub", filter: "#" });
    a.send({ type: "ping", sentAt: 5 });
    expect(a.frames).toEqual([
      { type: "error", code: "NOT_INTRODUCED", message: expect.stringContaining('Send "hello" first'), ref: { type: "sub", filter: "#" } },
      { type: "pong", sentAt: 5 },
    ]);
  });

  test("a frame from a connection that already closed is ignored", () => {
    const hub = new HubCore({ writable: true });
    expect(hub.receive("gone", { type: "ping", sentAt: 1 })).toEqual([]);
  });

  test("a throwing send callback does not break the hub", () => {
    const hub = new HubCore({ writable: true });
    hub.attach("x", () => {
      throw new Error("socket closed");
    });
    expect(() => hub.receive("x", { type: "hello", id: "x", name: "x", kind: "app" })).not.toThrow();
  });
});

describe("subscriptions and fan-out", () => {
  test("messages reach matching subscriptions only, each connection once", () => {
    const server = activeHub();
    const wide = new DirectConnection(server, "wide");
    const narrow = new DirectConnection(server, "narrow");
    const other = new DirectConnection(server, "other");
    const publisher = new DirectConnection(server, "publisher");
    wide.send({ type: "sub", filter: "studio/#" });
    wide.send({ type: "sub", filter: "studio/+/tally" }); // overlapping: still one copy
    narrow.send({ type: "sub", filter: "studio/cam1/tally" });
    other.send({ type: "sub", filter: "audio/#" });
    for (const c of [wide, narrow, other, publisher]) c.clear();

    publisher.send(pub("studio/cam1/tally", { on: true }, "pub-app", 1));
    expect(wide.of("msg")).toEqual([{ type: "msg", topic: "studio/cam1/tally", data: { on: true }, from: "pub-app", seq: 1, pos: 1 }]);
    expect(narrow.of("msg")).toHaveLength(1);
    expect(other.of("msg")).toHaveLength(0);
    expect(publisher.of("ack")).toEqual([{ type: "ack", origin: "pub-app", seq: 1 }]);
  });

  test("a message to N subscribers is ONE frame object with N connection ids", () => {
    const hub = new HubCore({ epoch: 1, writable: true });
    const sent: unknown[] = [];
    for (const id of ["s1", "s2", "s3", "p"]) {
      hub.attach(id, (frame) => sent.push({ id, frame }));
      hub.receive(id, { type: "hello", id, name: id, kind: "app" });
      if (id !== "p") hub.receive(id, { type: "sub", filter: "a/+" });
    }
    sent.length = 0;
    const fanouts = hub.receive("p", pub("a/b", "x"));
    expect(fanouts).toHaveLength(1);
    expect(fanouts[0]!.frame).toMatchObject({ type: "msg", topic: "a/b", data: "x" });
    expect([...fanouts[0]!.to].sort()).toEqual(["s1", "s2", "s3"]);
    // Encoded once, by the hub (it measured it for its replay ring): the adapter sends this text.
    expect(JSON.parse(fanouts[0]!.text!)).toEqual(fanouts[0]!.frame);
    // Subscribers got nothing through their own send: the adapter writes the one frame to each.
    expect(sent).toEqual([{ id: "p", frame: { type: "ack", origin: "pub-app", seq: expect.any(Number) } }]);
  });

  test("unsub stops delivery; closing a connection drops its subscriptions", () => {
    const server = activeHub();
    const s = new DirectConnection(server, "s");
    const p = new DirectConnection(server, "p");
    s.send({ type: "sub", filter: "x/#" });
    s.send({ type: "unsub", filter: "x/#" });
    expect(server.hub.receive("p", pub("x/y", 1))).toEqual([]);
    const t = new DirectConnection(server, "t");
    t.send({ type: "sub", filter: "x/#" });
    t.close();
    expect(server.hub.receive("p", pub("x/y", 2))).toEqual([]);
    expect(p.of("ack")).toHaveLength(2);
  });

  test("$-topics are not matched by a leading wildcard", () => {
    const server = activeHub();
    const all = new DirectConnection(server, "all");
    const sys = new DirectConnection(server, "sys");
    all.send({ type: "sub", filter: "#" });
    sys.send({ type: "sub", filter: "$hub/#" });
    const p = new DirectConnection(server, "p");
    p.send(pub("$hub/info", 1));
    expect(all.of("msg")).toHaveLength(0);
    expect(sys.of("msg")).toHaveLength(1);
  });

  test("a connection's number of subscriptions is bounded", () => {
    const server = activeHub({ limits: { maxFiltersPerConnection: 2 } });
    const a = new DirectConnection(server, "a");
    for (const f of ["a", "b", "c"]) a.send({ type: "sub", filter: f });
    expect(a.of("error")).toEqual([{ type: "error", code: "LIMIT_REACHED", message: expect.stringContaining("at most 2 subscriptions"), ref: { type: "sub", filter: "c" } }]);
  });
});

describe("de-duplication by (origin, seq)", () => {
  test("a pub resent after a switch is acked again but delivered once", () => {
    const server = activeHub();
    const s = new DirectConnection(server, "s");
    s.send({ type: "sub", filter: "#" });
    const p = new DirectConnection(server, "p");
    p.send(pub("a", 1, "o", 1));
    p.send(pub("a", 2, "o", 2));
    p.close();
    const again = new DirectConnection(server, "p2", { id: "p" });
    again.send(pub("a", 1, "o", 1)); // resent
    again.send(pub("a", 2, "o", 2)); // resent
    again.send(pub("a", 3, "o", 3)); // new
    expect(s.of("msg").map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(again.of("ack").map((a) => a.seq)).toEqual([1, 2, 3]);
  });

  test("origins are independent; the mark is per origin", () => {
    const server = activeHub();
    const s = new DirectConnection(server, "s");
    s.send({ type: "sub", filter: "#" });
    const p = new DirectConnection(server, "p");
    p.send(pub("a", "x", "o1", 5));
    p.send(pub("a", "y", "o2", 1));
    p.send(pub("a", "z", "o1", 5));
    expect(s.of("msg").map((m) => `${m.from}:${m.seq}`)).toEqual(["o1:5", "o2:1"]);
  });

  test("the marks are bounded: the least recently heard origin is forgotten", () => {
    const server = activeHub({ limits: { maxTrackedOrigins: 2 } });
    const s = new DirectConnection(server, "s");
    s.send({ type: "sub", filter: "#" });
    const p = new DirectConnection(server, "p");
    p.send(pub("a", 1, "o1", 1));
    p.send(pub("a", 1, "o2", 1));
    p.send(pub("a", 1, "o3", 1)); // o1 forgotten
    p.send(pub("a", 1, "o1", 1)); // delivered again: at worst a duplicate, never a loss
    expect(s.of("msg")).toHaveLength(4);
  });
});

describe("writes only on the active server", () => {
  test("a standby refuses pub and set with NOT_ACTIVE and delivers nothing", () => {
    const server = new FakeHubServer({ epoch: 1, writable: false });
    const s = new DirectConnection(server, "s");
    s.send({ type: "sub", filter: "#" });
    const p = new DirectConnection(server, "p");
    p.send(pub("a", 1, "o", 1));
    p.send({ type: "set", key: "k", value: 1, origin: "o", seq: 2 });
    const errors = p.of("error");
    expect(errors.map((e) => [e.code, e.ref])).toEqual([
      ["NOT_ACTIVE", { type: "pub", origin: "o", seq: 1 }],
      ["NOT_ACTIVE", { type: "set", origin: "o", seq: 2, key: "k" }],
    ]);
    expect(errors[0]!.message).toBe("This server is not active; the node will resend to the active one.");
    expect(p.of("ack")).toHaveLength(0);
    expect(s.of("msg")).toHaveLength(0);
    expect(server.hub.retainedEntry("k")).toBeUndefined();
  });

  test("after a refusal a connection stays refused, so seqs are never taken out of order", () => {
    const server = new FakeHubServer({ epoch: 1, writable: false });
    const p = new DirectConnection(server, "p");
    p.send(pub("a", 1, "o", 6));
    server.hub.setWritable(true);
    p.send(pub("a", 1, "o", 7)); // would make a later resend of 6 look like a duplicate
    expect(p.of("error").map((e) => e.ref?.seq)).toEqual([6, 7]);
    const fresh = new DirectConnection(server, "p2");
    fresh.send(pub("a", 1, "o", 6));
    fresh.send(pub("a", 1, "o", 7));
    expect(fresh.of("ack").map((a) => a.seq)).toEqual([6, 7]);
  });

  test("fenced: a hub holding a write from a higher epoch refuses writes until its epoch catches up", () => {
    const newer = new HubCore({ epoch: 5, writable: true });
    newer.attach("x", () => {});
    newer.receive("x", { type: "hello", id: "x", name: "x", kind: "app" });
    newer.receive("x", { type: "set", key: "k", value: 1, origin: "o", seq: 1 });
    const stale = new FakeHubServer({ epoch: 4, writable: true });
    stale.hub.importState(newer.exportStateSince({ epoch: 0, seq: 0 }));
    const p = new DirectConnection(stale, "p");
    p.send({ type: "set", key: "k", value: 2, origin: "o2", seq: 1 });
    expect(p.of("error")[0]?.code).toBe("NOT_ACTIVE");
    stale.hub.setEpoch(6);
    const q = new DirectConnection(stale, "q");
    q.send({ type: "set", key: "k", value: 2, origin: "o2", seq: 1 });
    expect(stale.hub.retainedEntry("k")).toMatchObject({ key: "k", value: 2, version: { epoch: 6, seq: 1 } });
  });

  test("the epoch only rises", () => {
    const hub = new HubCore({ epoch: 3 });
    expect(() => hub.setEpoch(2)).toThrow("may only rise");
    hub.setEpoch(4);
    expect(hub.epoch).toBe(4);
  });
});

describe("calls are routed to the connection offering the service", () => {
  function setup() {
    const server = activeHub();
    const provider = new DirectConnection(server, "provider", { id: "m-provider", name: "Render 1" });
    const caller = new DirectConnection(server, "caller", { id: "m-caller" });
    provider.send({ type: "offer", service: "clip.play" });
    provider.clear();
    caller.clear();
    return { server, provider, caller };
  }

  test("call and reply, with the caller's own id restored", () => {
    const { provider, caller } = setup();
    caller.send({ type: "call", service: "clip.play", id: "42", data: { clip: 3 } });
    const forwarded = provider.of("call")[0]!;
    expect(forwarded).toEqual({ type: "call", service: "clip.play", id: expect.any(String), data: { clip: 3 }, from: "m-caller" });
    provider.send({ type: "reply", id: forwarded.id, data: "playing" });
    expect(caller.of("reply")).toEqual([{ type: "reply", id: "42", data: "playing" }]);
  });

  test("two callers may use the same id", () => {
    const { server, provider, caller } = setup();
    const second = new DirectConnection(server, "second");
    caller.send({ type: "call", service: "clip.play", id: "1", data: "a" });
    second.send({ type: "call", service: "clip.play", id: "1", data: "b" });
    const [first, other] = provider.of("call");
    expect(first!.id).not.toBe(other!.id);
    provider.send({ type: "reply", id: other!.id, data: "for b" });
    provider.send({ type: "reply", id: first!.id, error: { code: "BUSY", message: "busy" } });
    expect(second.of("reply")).toEqual([{ type: "reply", id: "1", data: "for b" }]);
    expect(caller.of("reply")).toEqual([{ type: "reply", id: "1", error: { code: "BUSY", message: "busy" } }]);
  });

  test("no provider: the caller gets NO_SERVICE at once", () => {
    const { caller } = setup();
    caller.send({ type: "call", service: "nothing", id: "7", data: null });
    expect(caller.of("reply")).toEqual([{ type: "reply", id: "7", error: { code: "NO_SERVICE", message: expect.stringContaining('"nothing"') } }]);
  });

  test("the provider drops: waiting callers get PROVIDER_GONE and the service is gone", () => {
    const { provider, caller } = setup();
    caller.send({ type: "call", service: "clip.play", id: "9", data: null });
    provider.close();
    expect(caller.of("reply")).toEqual([{ type: "reply", id: "9", error: { code: "PROVIDER_GONE", message: expect.stringContaining("may or may not have run") } }]);
    caller.send({ type: "call", service: "clip.play", id: "10", data: null });
    expect(caller.of("reply")[1]?.error?.code).toBe("NO_SERVICE");
  });

  test("replies from another connection, or to a caller that left, go nowhere", () => {
    const { server, provider, caller } = setup();
    const intruder = new DirectConnection(server, "intruder");
    caller.send({ type: "call", service: "clip.play", id: "1", data: null });
    const callId = provider.of("call")[0]!.id;
    intruder.send({ type: "reply", id: callId, data: "forged" });
    expect(caller.of("reply")).toHaveLength(0);
    caller.close();
    provider.send({ type: "reply", id: callId, data: "late" });
    expect(provider.of("error")).toHaveLength(0);
  });

  test("a service has one provider; the same member reconnecting takes it over", () => {
    const { server, provider } = setup();
    const rival = new DirectConnection(server, "rival", { id: "m-rival", name: "Render 2" });
    rival.send({ type: "offer", service: "clip.play" });
    expect(rival.of("error")[0]).toMatchObject({ code: "SERVICE_TAKEN", message: expect.stringContaining("Render 1 (m-provider)") });
    const reconnected = new DirectConnection(server, "provider-2", { id: "m-provider", name: "Render 1" });
    reconnected.send({ type: "offer", service: "clip.play" });
    expect(reconnected.of("error")).toHaveLength(0);
    provider.close(); // the old socket closing does not take the service away from the new one
    const caller = new DirectConnection(server, "c2");
    caller.send({ type: "call", service: "clip.play", id: "1", data: null });
    expect(reconnected.of("call")).toHaveLength(1);
  });

  test("unoffer withdraws the service", () => {
    const { provider, caller } = setup();
    provider.send({ type: "unoffer", service: "clip.play" });
    caller.send({ type: "call", service: "clip.play", id: "1", data: null });
    expect(caller.of("reply")[0]?.error?.code).toBe("NO_SERVICE");
  });
});

describe("presence", () => {
  test("members join and leave; everyone introduced hears it", () => {
    const server = activeHub();
    const a = new DirectConnection(server, "a", { id: "m-a", name: "Control", kind: "node" });
    const b = new DirectConnection(server, "b", { id: "app-b", name: "Script" });
    expect(a.of("presence").at(-1)!.members).toEqual([
      { id: "m-a", name: "Control", kind: "node", delayMs: null },
      { id: "app-b", name: "Script", kind: "app", delayMs: null },
    ]);
    b.close();
    expect(a.of("presence").at(-1)!.members.map((m) => m.id)).toEqual(["m-a"]);
  });

  test("delays come from ping (the client's own measure) or from the runner", () => {
    const server = activeHub();
    const a = new DirectConnection(server, "a");
    const b = new DirectConnection(server, "b");
    a.send({ type: "ping", sentAt: 100, delayMs: 4.5 });
    expect(a.last()).toEqual({ type: "pong", sentAt: 100 });
    server.hub.setDelay("b", 12);
    const [update] = server.hub.presence();
    expect(update!.frame).toEqual({
      type: "presence",
      members: [
        { id: "a", name: "a", kind: "app", delayMs: 4.5 },
        { id: "b", name: "b", kind: "app", delayMs: 12 },
      ],
    });
    expect(update!.to).toEqual(["a", "b"]);
  });

  test("a second hello is refused", () => {
    const server = activeHub();
    const a = new DirectConnection(server, "a");
    a.send({ type: "hello", id: "z", name: "z", kind: "app" });
    expect(a.last()).toMatchObject({ type: "error", code: "ALREADY_INTRODUCED" });
  });
});
