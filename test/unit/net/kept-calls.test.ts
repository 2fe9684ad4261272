/**
 * Calls to a server over one kept connection (src/net/kept-calls.ts): one
 * handshake for many questions, and a fresh dial whenever the kept one
 * cannot be trusted to answer (closed, timed out, idle, refused, stopped).
 */
import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { KEPT_CALLS_IDLE_MS, KeptCalls } from "../../../src/net/kept-calls.ts";
import { MemoryNetwork } from "../../../src/net/peer-net-memory.ts";
import { rpcServer } from "../../../src/net/rpc.ts";
import type { SecureConnection } from "../../../src/net/secure-socket.ts";
import nacl from "tweetnacl";
import { AppError } from "../../../src/core/errors.ts";
import { fingerprint } from "../../../src/core/keys.ts";
import { RealPeerNet } from "../../../src/net/peer-net.ts";
import { ManualTimers } from "../../support/clock.ts";

const KEY = new Uint8Array(32).fill(7);
const SERVER = { host: "10.0.0.2", port: 7400 };
const answer = z.object({ n: z.number() });
const ask = (calls: KeptCalls, method = "count", timeoutMs = 1000) => calls.call(SERVER, "/console", { method, params: {}, schema: answer, timeoutMs });

function world(serverKey = KEY) {
  const timers = new ManualTimers();
  const network = new MemoryNetwork({ clock: timers.clock, latencyMs: () => 1, random: () => 0.5, fingerprint: (k) => `fp${k[0]}` });
  const attach = (host: string, networkKey: Uint8Array) =>
    network.attach({ at: { host, port: 7400 }, machineId: `id-${host}`, publicKey: new Uint8Array([host.length]), networkKey, timers });
  const client = attach("10.0.0.1", KEY);
  const server = attach(SERVER.host, serverKey);
  const accepted: SecureConnection[] = [];
  const closing = { left: 0 };
  let n = 0;
  server.serve({
    path: "/console",
    accept: (connection) => {
      accepted.push(connection);
      // "hold" never answers: a frozen server, as far as the caller can tell.
      // "flaky" closes the connection it was asked on, unanswered, while `closing` says so: a server restarting.
      return rpcServer(connection, {
        count: () => ({ n: ++n }),
        hold: () => new Promise(() => {}),
        flaky: () => (closing.left-- > 0 ? (connection.close(1001, "restarting"), new Promise(() => {})) : { n: ++n }),
      });
    },
  });
  return { timers, client, server, accepted, closing, calls: new KeptCalls(client, timers) };
}

/** Runs `work` while moving the manual clock a millisecond at a time, letting promise callbacks run in between. */
async function settle<T>(timers: ManualTimers, work: Promise<T>, maxMs = 5000): Promise<T> {
  let done = false;
  const result = work.finally(() => (done = true));
  result.catch(() => {});
  for (let ms = 0; !done && ms < maxMs; ms++) {
    timers.advance(1);
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
  return result;
}

/** Lets `ms` of manual time pass, with promise callbacks run at every millisecond. */
async function pass(timers: ManualTimers, ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    timers.advance(1);
    for (let j = 0; j < 10; j++) await Promise.resolve();
  }
}

describe("calls on a kept connection", () => {
  test("many questions, one connection and one handshake", async () => {
    const { timers, calls, accepted } = world();
    for (let i = 1; i <= 5; i++) expect(await settle(timers, ask(calls))).toEqual({ n: i });
    expect(accepted.length).toBe(1);
  });

  test("questions asked together wait for one dial", async () => {
    const { timers, calls, accepted } = world();
    const answers = await settle(timers, Promise.all([ask(calls), ask(calls), ask(calls)]));
    expect(answers.map((a) => a.n).sort()).toEqual([1, 2, 3]);
    expect(accepted.length).toBe(1);
  });

  test("a connection the server closed is dialled again at the next question", async () => {
    const { timers, calls, accepted } = world();
    await settle(timers, ask(calls));
    accepted[0]!.close(1000, "restarting");
    await pass(timers, 10);
    expect(await settle(timers, ask(calls))).toEqual({ n: 2 });
    expect(accepted.length).toBe(2);
  });

  test("a question the kept connection closed under is asked once more on a new one; an action is not", async () => {
    const { timers, calls, accepted, closing } = world();
    await settle(timers, ask(calls));
    const flaky = (idempotent: boolean) => settle(timers, calls.call(SERVER, "/console", { method: "flaky", params: {}, schema: answer, timeoutMs: 1000, idempotent }));
    closing.left = 1;
    expect(await flaky(true)).toEqual({ n: 2 });
    expect(accepted.length).toBe(2);
    closing.left = 1;
    expect(await flaky(false).catch((e) => e.code)).toBe("CONNECTION_LOST");
    // Twice in a row is a server that is going away: the second close is the answer.
    closing.left = 2;
    expect(await settle(timers, ask(calls))).toEqual({ n: 3 });
    expect(await flaky(true).catch((e) => e.code)).toBe("CONNECTION_LOST");
  });

  test("a question not answered in time drops the connection: the next one dials anew", async () => {
    const { timers, calls, accepted } = world();
    await settle(timers, ask(calls));
    expect(await settle(timers, ask(calls, "hold", 100)).catch((e) => e.code)).toBe("TIMEOUT");
    expect(await settle(timers, ask(calls))).toEqual({ n: 2 });
    expect(accepted.length).toBe(2);
    expect(accepted[0]!.open).toBe(false);
  });

  test("a connection unused for the idle time is closed", async () => {
    const { timers, calls, accepted } = world();
    await settle(timers, ask(calls));
    timers.advance(KEPT_CALLS_IDLE_MS - 10);
    await settle(timers, ask(calls));
    timers.advance(KEPT_CALLS_IDLE_MS - 10);
    expect(accepted[0]!.open).toBe(true);
    await pass(timers, 30);
    expect(accepted[0]!.open).toBe(false);
    expect(await settle(timers, ask(calls))).toEqual({ n: 3 });
    expect(accepted.length).toBe(2);
  });

  test("a dial the server refuses fails that question only; the next one dials again", async () => {
    const { timers, calls, server } = world(new Uint8Array(32).fill(9));
    expect(await settle(timers, ask(calls)).catch((e) => e.constructor.name)).toBe("NetworkKeyMismatch");
    server.setNetworkKey(KEY);
    expect(await settle(timers, ask(calls))).toEqual({ n: 1 });
  });

  test("a new network key closes the kept connection with every dialled one; the next question dials under it", async () => {
    const { timers, calls, client, accepted } = world();
    await settle(timers, ask(calls));
    client.closeDialled("The network key changed.");
    await pass(timers, 10);
    expect(await settle(timers, ask(calls))).toEqual({ n: 2 });
    expect(accepted.length).toBe(2);
  });

  test("stopped, it closes its connections and refuses questions", async () => {
    const { timers, calls, accepted } = world();
    await settle(timers, ask(calls));
    calls.stop();
    await pass(timers, 10);
    expect(accepted[0]!.open).toBe(false);
    expect(await ask(calls).catch((e) => e.code)).toBe("CONNECTION_LOST");
    expect(timers.count).toBe(0);
  });
});

describe("on real sockets", () => {
  for (const host of ["127.0.0.1", "::1"]) {
    test(`${host}: questions share one connection, a key change dials anew, and a server gone is a clear error`, async () => {
      const networkKey = nacl.randomBytes(32);
      const machine = (name: string) => {
        const keys = nacl.sign.keyPair();
        return RealPeerNet.listen({
          at: { host, port: 0 },
          identity: () => ({ id: fingerprint(keys.publicKey), name, role: "main", version: "test", networkKeyFingerprint: null }),
          secure: { networkKey, machine: keys },
          onRefused: () => {},
        });
      };
      const server = machine("main");
      const client = machine("client");
      let n = 0;
      let handshakes = 0;
      server.serve({ path: "/console", accept: (connection) => (handshakes++, rpcServer(connection, { count: () => ({ n: ++n }) })) });
      const calls = new KeptCalls(client);
      const to = { host, port: server.endpoint.port };
      const count = () => calls.call(to, "/console", { method: "count", params: {}, schema: answer, timeoutMs: 2000 });
      try {
        expect(await Promise.all([count(), count(), count()])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
        expect(await count()).toEqual({ n: 4 });
        expect(handshakes).toBe(1);
        client.closeDialled("a new network key");
        expect(await count()).toEqual({ n: 5 });
        expect(handshakes).toBe(2);
        server.stop();
        const error = await count().then(
          () => null,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(AppError);
      } finally {
        calls.stop();
        client.stop();
        server.stop();
      }
    });
  }
});
