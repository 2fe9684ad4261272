/**
 * The in-memory PeerNet keeps the contract of the real one (peer-net.ts) and
 * its faults do what the simulator counts on.
 */
import { describe, expect, test } from "bun:test";
import type { Timers } from "../../../src/core/clock.ts";
import type { HostPort } from "../../../src/core/config.ts";
import { HandshakeFailed, NetworkKeyMismatch } from "../../../src/net/errors.ts";
import { MemoryNetwork, type MemoryPeerNet } from "../../../src/net/peer-net-memory.ts";
import type { ConnectionEvents, SecureConnection } from "../../../src/net/secure-socket.ts";
import { ManualClock } from "../../support/clock.ts";

const text = new TextEncoder();
const read = new TextDecoder();

/** Every machine's timers on one ManualClock; a held machine's run only once it is let go (a frozen process). */
class Scheduler {
  readonly clock = new ManualClock(0);
  private queue: { at: number; seq: number; machine: string; run: () => void; live: boolean }[] = [];
  private seq = 0;
  readonly held = new Set<string>();

  timers(machine: string): Timers {
    return {
      after: (ms, run) => {
        const entry = { at: this.clock.now() + ms, seq: this.seq++, machine, run, live: true };
        this.queue.push(entry);
        return () => void (entry.live = false);
      },
      every: () => {
        throw new Error("not used");
      },
    };
  }

  /** Runs everything due within `ms`, letting promise callbacks run after each step. */
  async advance(ms: number): Promise<void> {
    const end = this.clock.now() + ms;
    for (;;) {
      const due = this.queue
        .filter((e) => e.live && e.at <= end && !this.held.has(e.machine))
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.clock.advanceTo(Math.max(this.clock.now(), due.at));
      due.live = false;
      due.run();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
    this.clock.advanceTo(end);
    this.queue = this.queue.filter((e) => e.live);
  }
}

const KEY = new Uint8Array(32).fill(7);
const OTHER_KEY = new Uint8Array(32).fill(9);

function world(latency = 1) {
  const s = new Scheduler();
  let r = 0.5;
  const network = new MemoryNetwork({
    clock: s.clock,
    latencyMs: () => latency,
    random: () => (r = (r * 9301 + 49297) % 233280 / 233280),
    fingerprint: (key) => `fp${key[0]}`,
    breakAfterMs: 500,
  });
  const machine = (host: string, port = 7400, networkKey = KEY): MemoryPeerNet =>
    network.attach({ at: { host, port }, machineId: `id-${host}`, publicKey: new Uint8Array([host.length]), networkKey, timers: s.timers(host) });
  return { s, network, machine };
}

/** A service that records what it gets and echoes each frame back with "echo:". */
function echo(net: MemoryPeerNet, path: "/hub" | "/replicate" = "/hub") {
  const got: string[] = [];
  const closes: string[] = [];
  const conns: SecureConnection[] = [];
  net.serve({
    path,
    accept: (c) => {
      conns.push(c);
      return {
        message: (p) => {
          got.push(read.decode(p));
          c.send(text.encode(`echo:${read.decode(p)}`));
        },
        close: (reason) => closes.push(reason),
      };
    },
  });
  return { got, closes, conns };
}

function client() {
  const got: string[] = [];
  const closes: string[] = [];
  const events = (): ConnectionEvents => ({ message: (p) => got.push(read.decode(p)), close: (reason) => closes.push(reason) });
  return { got, closes, events };
}

async function dialed(s: Scheduler, from: MemoryPeerNet, to: HostPort, events: () => ConnectionEvents): Promise<SecureConnection> {
  const box: { result: SecureConnection | Error | null } = { result: null };
  from.dial(to, "/hub", events).then(
    (c) => (box.result = c),
    (e) => (box.result = e as Error),
  );
  await s.advance(20);
  const result = box.result;
  if (result === null) throw new Error("the dial did not settle");
  if (result instanceof Error) throw result;
  return result;
}

async function dialError(s: Scheduler, from: MemoryPeerNet, to: HostPort, waitMs = 20): Promise<Error | null> {
  const box: { error: Error | null } = { error: null };
  from.dial(to, "/hub", () => ({ message() {}, close() {} })).catch((e) => (box.error = e as Error));
  await s.advance(waitMs);
  return box.error;
}

describe("the in-memory peer port", () => {
  test("frames arrive in order both ways, the peer is named, and a close comes after what was sent before it", async () => {
    const { s, machine } = world();
    const a = machine("10.0.0.1");
    const b = machine("10.0.0.2");
    const server = echo(b);
    const c = client();
    const conn = await dialed(s, a, { host: "10.0.0.2", port: 7400 }, c.events);
    expect(conn.peer).toMatchObject({ machineId: "id-10.0.0.2", address: "10.0.0.2:7400" });
    expect(server.conns[0]!.peer).toMatchObject({ machineId: "id-10.0.0.1", address: "10.0.0.1:7400" });
    for (let i = 1; i <= 5; i++) conn.send(text.encode(`f${i}`));
    conn.close(1000, "done");
    expect(conn.open).toBe(false);
    expect(conn.send(text.encode("late"))).toBe(false);
    await s.advance(20);
    expect(server.got).toEqual(["f1", "f2", "f3", "f4", "f5"]);
    expect(server.closes).toEqual(["done"]);
    // The echoes were sent to an end that had closed: it reads nothing more.
    expect(c.got).toEqual([]);
  });

  test("a dial to another network key is refused naming both fingerprints; a key set on a running machine applies at once", async () => {
    const { s, machine } = world();
    const a = machine("10.0.0.1", 7400, OTHER_KEY);
    const b = machine("10.0.0.2");
    echo(b);
    const error = await dialError(s, a, { host: "10.0.0.2", port: 7400 });
    expect(error).toBeInstanceOf(NetworkKeyMismatch);
    expect(error!.message).toContain("fp7");
    expect(error!.message).toContain("fp9");
    a.setNetworkKey(KEY);
    const c = client();
    const conn = await dialed(s, a, { host: "10.0.0.2", port: 7400 }, c.events);
    conn.send(text.encode("hello"));
    await s.advance(10);
    expect(c.got).toEqual(["echo:hello"]);
  });

  test("nothing listening, or no service on the path: the dial fails with HandshakeFailed", async () => {
    const { s, machine } = world();
    const a = machine("10.0.0.1");
    machine("10.0.0.2");
    expect(await dialError(s, a, { host: "10.0.0.3", port: 7400 })).toBeInstanceOf(HandshakeFailed);
    expect(await dialError(s, a, { host: "10.0.0.2", port: 7400 })).toBeInstanceOf(HandshakeFailed);
  });

  test("a cut holds frames until it heals, then they arrive in order; a cut that outlasts the give-up breaks the connection", async () => {
    const { s, network, machine } = world();
    const a = machine("10.0.0.1");
    const b = machine("10.0.0.2");
    const server = echo(b);
    const c = client();
    const conn = await dialed(s, a, { host: "10.0.0.2", port: 7400 }, c.events);
    network.link("10.0.0.1", "10.0.0.2").cut = true;
    conn.send(text.encode("1"));
    conn.send(text.encode("2"));
    await s.advance(200);
    expect(server.got).toEqual([]);
    network.link("10.0.0.1", "10.0.0.2").cut = false;
    await s.advance(50);
    expect(server.got).toEqual(["1", "2"]);
    expect(c.got).toEqual(["echo:1", "echo:2"]);

    network.link("10.0.0.2", "10.0.0.1").cut = true;
    conn.send(text.encode("3"));
    await s.advance(600);
    expect(server.got).toEqual(["1", "2", "3"]);
    expect(c.closes).toEqual(["The connection was lost."]);
    expect(server.closes).toEqual(["The connection was lost."]);
    expect(conn.open).toBe(false);
    // A dial across the cut fails (after the give-up).
    expect(await dialError(s, a, { host: "10.0.0.2", port: 7400 }, 600)).toBeInstanceOf(HandshakeFailed);
  });

  test("delay makes frames late, never out of order", async () => {
    const { s, network, machine } = world();
    const a = machine("10.0.0.1");
    const b = machine("10.0.0.2");
    const server = echo(b);
    const conn = await dialed(s, a, { host: "10.0.0.2", port: 7400 }, client().events);
    network.link("10.0.0.1", "10.0.0.2").delayMs = 300;
    for (let i = 0; i < 50; i++) conn.send(text.encode(String(i)));
    await s.advance(400);
    expect(server.got).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });

  test("a dropped frame breaks the connection (a stream cannot skip it); a duplicated one arrives twice", async () => {
    const { s, network, machine } = world();
    const a = machine("10.0.0.1");
    const b = machine("10.0.0.2");
    const server = echo(b);
    const c = client();
    const conn = await dialed(s, a, { host: "10.0.0.2", port: 7400 }, c.events);
    network.link("10.0.0.1", "10.0.0.2").duplicate = 1;
    conn.send(text.encode("twice"));
    await s.advance(10);
    expect(server.got).toEqual(["twice", "twice"]);
    network.link("10.0.0.1", "10.0.0.2").duplicate = 0;
    network.link("10.0.0.1", "10.0.0.2").drop = 1;
    conn.send(text.encode("lost"));
    await s.advance(10);
    expect(server.got).toEqual(["twice", "twice"]);
    expect(c.closes).toEqual(["The connection was lost."]);
    expect(server.closes).toEqual(["The connection was lost."]);
  });

  test("a crashed machine's peers hear their connections break, and dials to it fail; a machine held (frozen) reads its frames on release", async () => {
    const { s, machine } = world();
    const a = machine("10.0.0.1");
    const b = machine("10.0.0.2");
    const server = echo(b);
    const c = client();
    const conn = await dialed(s, a, { host: "10.0.0.2", port: 7400 }, c.events);
    s.held.add("10.0.0.2");
    conn.send(text.encode("while frozen"));
    await s.advance(100);
    expect(server.got).toEqual([]);
    s.held.delete("10.0.0.2");
    await s.advance(10);
    expect(server.got).toEqual(["while frozen"]);
    b.crash();
    await s.advance(10);
    expect(c.closes).toEqual(["The connection was lost."]);
    expect(server.closes).toEqual([]);
    expect(await dialError(s, a, { host: "10.0.0.2", port: 7400 })).toBeInstanceOf(HandshakeFailed);
  });

  test("a dial on its way when the machine it calls dies fails (the simulator found it waiting for good)", async () => {
    const { s, machine } = world();
    const a = machine("10.0.0.1");
    const b = machine("10.0.0.2");
    echo(b);
    const box: { error: Error | null } = { error: null };
    a.dial({ host: "10.0.0.2", port: 7400 }, "/hub", () => ({ message() {}, close() {} })).catch((e) => (box.error = e as Error));
    b.crash();
    s.held.add("10.0.0.2"); // a dead process's timers never run
    await s.advance(20);
    expect(box.error).toBeInstanceOf(HandshakeFailed);
  });

  test("IPv6 addresses work as any other, written in brackets", async () => {
    const { s, machine } = world();
    const a = machine("fd00::1");
    const b = machine("fd00::2");
    const server = echo(b);
    const c = client();
    const conn = await dialed(s, a, { host: "fd00::2", port: 7400 }, c.events);
    expect(conn.peer.address).toBe("[fd00::2]:7400");
    expect(server.conns[0]!.peer.address).toBe("[fd00::1]:7400");
    conn.send(text.encode("v6"));
    await s.advance(10);
    expect(c.got).toEqual(["echo:v6"]);
  });

  test("a machine restarted at its address replaces the old one, whose connections break", async () => {
    const { s, machine } = world();
    const a = machine("10.0.0.1");
    const b = machine("10.0.0.2");
    echo(b);
    const c = client();
    await dialed(s, a, { host: "10.0.0.2", port: 7400 }, c.events);
    const b2 = machine("10.0.0.2");
    const again = echo(b2);
    await s.advance(10);
    expect(c.closes).toEqual(["The connection was lost."]);
    const c2 = client();
    const conn = await dialed(s, a, { host: "10.0.0.2", port: 7400 }, c2.events);
    conn.send(text.encode("new"));
    await s.advance(10);
    expect(again.got).toEqual(["new"]);
  });
  test("closeDialled closes what this machine dialled (both ends hear it), not what others dialled to it", async () => {
    const { s, machine } = world();
    const a = machine("10.0.0.1");
    const b = machine("10.0.0.2");
    const atA = echo(a);
    const atB = echo(b);
    const out = client();
    const into = client();
    const mine = await dialed(s, a, { host: "10.0.0.2", port: 7400 }, out.events);
    const theirs = await dialed(s, b, { host: "10.0.0.1", port: 7400 }, into.events);
    a.closeDialled("The network key changed; reconnecting with the new one.");
    await s.advance(20);
    expect(mine.open).toBe(false);
    expect(out.closes).toEqual(["The network key changed; reconnecting with the new one."]);
    expect(atB.closes).toEqual(["The network key changed; reconnecting with the new one."]);
    expect(theirs.open).toBe(true);
    expect(into.closes).toEqual([]);
    expect(atA.closes).toEqual([]);
  });
});
