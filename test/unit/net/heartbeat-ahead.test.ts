// Network rule: these tests send traffic to loopback only (127.0.0.1, ::1), on ports the kernel picks.
// The heartbeat socket's own thread (src/net/udp-thread.ts): heartbeats handed over ahead go out on time
// while this thread is held, and only the few handed over; a flood cannot grow memory while it is held;
// a thread that fails leaves the socket working on the event loop. Margins are generous: shared machines.
import { afterEach, describe, expect, test } from "bun:test";
import { AppError } from "../../../src/core/errors.ts";
import { seededRandom } from "../../../src/net/crypto.ts";
import { HeartbeatCodec, type Heartbeat } from "../../../src/net/heartbeat.ts";
import { HeartbeatSocket, type HeartbeatSocketOptions } from "../../../src/net/heartbeat-socket.ts";
import { MAX_UNDELIVERED, UDP_THREAD_SOURCE } from "../../../src/net/udp-thread.ts";
import { pretendClientHeartbeat } from "../../support/heartbeat-recorder.ts";
import { flood, startArrivalRecorder, type Arrival } from "../../support/udp-side-threads.ts";
import { waitFor } from "../../support/wait-for.ts";

const random = seededRandom("heartbeat ahead test");
const networkKey = random(32);
const codec = new HeartbeatCodec(networkKey);

const beat = (seq: number): Heartbeat => pretendClientHeartbeat("00000000000000aa", "0011223344556677", seq, 1000, null);
const seqOf = (arrival: Arrival): number => codec.open(arrival.data, "recorder").heartbeat.stamp.seq;
/** Absolute time, as the threads compare it. */
const absolute = (now: number): number => performance.timeOrigin + now;

/** Holds this thread (a busy loop: no timer, no datagram, no message is handled meanwhile), for `ms` or until `done`, at most 10 s. */
function holdThread(ms: number, done: () => boolean = () => true): void {
  const start = performance.now();
  while ((performance.now() - start < ms || !done()) && performance.now() - start < 10_000);
}

const opened: { close(): unknown }[] = [];
afterEach(async () => {
  for (const thing of opened.splice(0)) await thing.close();
});

async function bindSocket(overrides: Partial<HeartbeatSocketOptions> = {}) {
  const heard: Heartbeat[] = [];
  const socket = await HeartbeatSocket.bind({ host: "127.0.0.1", port: 0, networkKey, random, onHeartbeat: (hb) => heard.push(hb), ...overrides });
  opened.push(socket);
  return { socket, heard, endpoint: { host: socket.host, port: socket.port } };
}

async function recorder(host = "127.0.0.1") {
  const r = await startArrivalRecorder(host);
  opened.push(r);
  return r;
}

describe("heartbeats handed over ahead", () => {
  test("each goes out at or after its time, from the socket's port", async () => {
    const { socket } = await bindSocket();
    const peer = await bindSocket();
    const now = performance.now();
    const times = [now + 40, now + 80, now + 120];
    socket.sendAhead(times.map((at, i) => ({ heartbeat: beat(i + 1), at, notAfter: at + 1_000 })), peer.endpoint, null);
    await waitFor("three heartbeats", () => peer.heard.length === 3);
    expect(peer.heard.map((hb) => hb.stamp.seq)).toEqual([1, 2, 3]);
    await waitFor("the thread's count", () => socket.stats.aheadSent === 3);

    const r = await recorder();
    const start = performance.now();
    const at = [start + 30, start + 60];
    socket.sendAhead(at.map((t, i) => ({ heartbeat: beat(10 + i), at: t, notAfter: t + 1_000 })), r.endpoint, null);
    const arrivals = await waitFor("two arrivals", async () => ((await r.arrivals()).length === 2 ? r.arrivals() : null));
    // At or after its time (2 ms for the threads' clocks), never before.
    arrivals.forEach((arrival, i) => expect(arrival.at).toBeGreaterThanOrEqual(absolute(at[i]!) - 2));
  });

  test("the next sendAhead for a target replaces what was pending; another target's stays", async () => {
    const { socket } = await bindSocket();
    const a = await bindSocket();
    const b = await bindSocket();
    const now = performance.now();
    socket.sendAhead([{ heartbeat: beat(1), at: now + 150, notAfter: now + 5_000 }], a.endpoint, null);
    socket.sendAhead([{ heartbeat: beat(2), at: now + 150, notAfter: now + 5_000 }], b.endpoint, null);
    socket.sendAhead([{ heartbeat: beat(3), at: now + 150, notAfter: now + 5_000 }], a.endpoint, null);
    await waitFor("both targets", () => a.heard.length + b.heard.length === 2);
    // What would have come after (had the first been kept) has had its time, and more.
    await Bun.sleep(200);
    expect(a.heard.map((hb) => hb.stamp.seq)).toEqual([3]);
    expect(b.heard.map((hb) => hb.stamp.seq)).toEqual([2]);
  });

  test("dropAhead drops everything pending; a regular send is not touched", async () => {
    const { socket } = await bindSocket();
    const peer = await bindSocket();
    const now = performance.now();
    socket.sendAhead([{ heartbeat: beat(1), at: now + 100, notAfter: now + 5_000 }], peer.endpoint, null);
    socket.dropAhead();
    socket.send(beat(2), [peer.endpoint]);
    await waitFor("the regular heartbeat", () => peer.heard.length === 1);
    await Bun.sleep(300);
    expect(peer.heard.map((hb) => hb.stamp.seq)).toEqual([2]);
    expect(socket.stats.aheadSent).toBe(0);
  });

  test("one that comes due at or after its notAfter is never sent, and is counted", async () => {
    const { socket } = await bindSocket();
    const peer = await bindSocket();
    const now = performance.now();
    socket.sendAhead(
      [
        { heartbeat: beat(1), at: now - 50, notAfter: now - 1 },
        { heartbeat: beat(2), at: now + 20, notAfter: now + 5_000 },
      ],
      peer.endpoint,
      null,
    );
    await waitFor("the one still due", () => peer.heard.length === 1);
    expect(peer.heard[0]!.stamp.seq).toBe(2);
    // The thread's counts come on their own message.
    await waitFor("the thread's counts", () => socket.stats.aheadSent + socket.stats.aheadLate === 2);
    expect(socket.stats).toMatchObject({ aheadSent: 1, aheadLate: 1 });
  });

  test("while this thread is held, they go out on time and spaced; then it goes silent", async () => {
    const { socket } = await bindSocket();
    const r = await recorder();
    const now = performance.now();
    const times = [now + 50, now + 100, now + 150];
    // notAfter well on (the runner's is a period): room for a loaded machine's late timer, and all within the hold.
    socket.sendAhead(times.map((at, i) => ({ heartbeat: beat(i + 1), at, notAfter: at + 200 })), r.endpoint, null);
    holdThread(800);
    const heldUntil = absolute(performance.now());
    await Bun.sleep(200);
    const arrivals = await r.arrivals();
    expect(arrivals.map(seqOf)).toEqual([1, 2, 3]);
    for (const [i, arrival] of arrivals.entries()) {
      expect(arrival.at).toBeGreaterThanOrEqual(absolute(times[i]!) - 2);
      // Sent by the socket's thread while this one was held, not all at once after.
      expect(arrival.at).toBeLessThan(heldUntil);
    }
    expect(arrivals[2]!.at - arrivals[0]!.at).toBeGreaterThan(50);
    // Nothing more while still held: silent past the fast preset's failover timeout (250 ms), as a stalled machine must be.
    expect(heldUntil - arrivals[2]!.at).toBeGreaterThan(250);
  });
});

describe("the socket's thread", () => {
  test("IPv6: binds ::1, exchanges heartbeats and sends ahead", async () => {
    const a = await bindSocket({ host: "::1" });
    const b = await bindSocket({ host: "::1" });
    expect(a.socket.host).toBe("::1");
    a.socket.send(beat(1), [b.endpoint]);
    a.socket.sendAhead([{ heartbeat: beat(2), at: performance.now() + 20, notAfter: performance.now() + 5_000 }], b.endpoint, null);
    await waitFor("both heartbeats", () => b.heard.length === 2);
    expect(b.heard.map((hb) => hb.stamp.seq)).toEqual([1, 2]);
    expect(a.socket.stats.threadFailure).toBeNull();
  });

  test("a burst arrives whole and in order (datagrams are handed up in batches)", async () => {
    const { heard, endpoint } = await bindSocket();
    const peer = await bindSocket();
    for (let seq = 1; seq <= 100; seq++) peer.socket.send(beat(seq), [endpoint]);
    await waitFor("the burst", () => heard.length === 100);
    expect(heard.map((hb) => hb.stamp.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  test(`a flood while this thread is held: at most ${MAX_UNDELIVERED} wait, the rest are dropped and counted; then it works`, async () => {
    const { socket, heard, endpoint } = await bindSocket();
    const flooder = flood(endpoint, 8 * MAX_UNDELIVERED);
    opened.push(flooder);
    // Until every datagram is sent, and a while longer for the socket's thread to read them.
    holdThread(0, flooder.sent);
    holdThread(200);
    const peer = await bindSocket();
    peer.socket.send(beat(7), [endpoint]);
    await waitFor("a heartbeat after the flood", () => heard.length === 1);
    expect(socket.stats.received).toBeLessThanOrEqual(MAX_UNDELIVERED + 1);
    expect(socket.stats.overflowed).toBeGreaterThan(0);
    expect(socket.stats.received + socket.stats.overflowed).toBeLessThanOrEqual(8 * MAX_UNDELIVERED + 1);
  });

  test("close ends the thread and frees the port; a process whose socket is closed exits", async () => {
    const { socket, endpoint } = await bindSocket();
    await socket.close();
    const again = await bindSocket({ port: endpoint.port });
    expect(again.socket.port).toBe(endpoint.port);
    const script = `
      import { HeartbeatSocket } from ${JSON.stringify(`${import.meta.dir}/../../../src/net/heartbeat-socket.ts`)};
      const s = await HeartbeatSocket.bind({ host: "127.0.0.1", port: 0, networkKey: new Uint8Array(32), onHeartbeat: () => {} });
      await s.close();
      console.log(s.stats.threadFailure ?? "closed");
    `;
    const child = Bun.spawn(["bun", "-e", script], { stdout: "pipe", stderr: "pipe" });
    const exited = await Promise.race([child.exited, Bun.sleep(15_000).then(() => "still running")]);
    if (exited === "still running") child.kill();
    expect(exited).toBe(0);
    expect((await new Response(child.stdout).text()).trim()).toBe("closed");
  });
});

describe("when the socket's thread fails, the socket is bound on the event loop", () => {
  test("a thread that cannot start: bound here, said once, works; nothing is sent ahead", async () => {
    const failures: AppError[] = [];
    const { socket, endpoint } = await bindSocket({ threadSource: `throw new Error("no thread here");`, onThreadFailure: (e) => failures.push(e) });
    expect(failures.map((e) => e.code)).toEqual(["UDP_THREAD_FAILED"]);
    expect(socket.stats.threadFailure).toContain("no thread here");
    const peer = await bindSocket();
    peer.socket.send(beat(1), [endpoint]);
    socket.send(beat(2), [peer.endpoint]);
    socket.sendAhead([{ heartbeat: beat(3), at: performance.now(), notAfter: performance.now() + 5_000 }], peer.endpoint, null);
    await waitFor("the regular heartbeat", () => peer.heard.length === 1);
    await Bun.sleep(100);
    expect(peer.heard.map((hb) => hb.stamp.seq)).toEqual([2]);
  });

  test("a bind refused on the thread is refused as before (PORT_IN_USE), not bound elsewhere", async () => {
    const { socket } = await bindSocket();
    const error = await bindSocket({ port: socket.port }).catch((e: unknown) => e);
    expect((error as AppError).code).toBe("PORT_IN_USE");
  });

  test("a thread that dies after binding: the same port is bound here, said once, and heartbeats flow", async () => {
    const failures: AppError[] = [];
    // Throws on the socket's thread just after it has bound.
    const dies = `
      const post = postMessage;
      globalThis.postMessage = (m) => { post(m); if (m.t === "bound") setTimeout(() => { throw new Error("thread crashed"); }, 50); };
      ${UDP_THREAD_SOURCE}`;
    const { socket, heard, endpoint } = await bindSocket({ threadSource: dies, onThreadFailure: (e) => failures.push(e) });
    expect(socket.stats.threadFailure).toBeNull();
    await waitFor("the thread's failure", () => socket.stats.threadFailure);
    const peer = await bindSocket();
    // Peers know it by its address: still the same.
    await waitFor("a heartbeat after the thread died", () => {
      peer.socket.send(beat(1), [endpoint]);
      return heard.length > 0;
    });
    socket.send(beat(2), [peer.endpoint]);
    await waitFor("its heartbeat, from the same port", () => peer.heard.length === 1);
    expect(socket.port).toBe(endpoint.port);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.message).toContain("the socket thread failed: thread crashed");
  });
});
