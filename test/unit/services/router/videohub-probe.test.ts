/**
 * "Test connection": one read of the router's state dump with the production
 * driver; what it found, or why not in words (refused, timeout, not a
 * Videohub, a half dump, a huge dump); it routes and locks nothing and leaves
 * no connection or timer behind.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { RouterErrorCode } from "../../../../src/core/router.ts";
import { MAX_BLOCK_LINES } from "../../../../src/services/router/videohub-protocol.ts";
import { probeVideohub } from "../../../../src/services/router/videohub-probe.ts";
import { ManualTimers } from "../../../support/clock.ts";
import { routerRefusal, VideohubSim } from "../../../support/videohub-sim.ts";
import { waitFor } from "../../../support/wait-for.ts";

const sims: VideohubSim[] = [];
afterEach(() => {
  for (const sim of sims.splice(0)) sim.stop();
});

function sim(options: ConstructorParameters<typeof VideohubSim>[0] = {}): VideohubSim {
  const s = new VideohubSim(options).start();
  sims.push(s);
  return s;
}

const DEVICE = "PROTOCOL PREAMBLE:\nVersion: 2.8\n\nVIDEOHUB DEVICE:\nDevice present: true\nModel name: Sim\nVideo inputs: 12\nVideo outputs: 12\n\n";

describe("Test connection", () => {
  test("says the model, the port counts and the destinations another client locked; changes nothing on the router", async () => {
    const router = sim({ inputs: 40, outputs: 20 });
    router.lockByOther(4);
    const timers = new ManualTimers();
    const before = [...router.routes];
    const found = await probeVideohub({ host: "127.0.0.1", port: router.port, clock: timers.clock, timers });
    expect(found).toEqual({ model: "Understudy Sim Videohub", inputs: 40, outputs: 20, lockedByOthers: [4] });
    expect(router.routes).toEqual(before);
    expect(router.requests).toEqual([]);
    expect(router.lockOwners[4]).toBe("other");
    await waitFor("the test's connection closed", () => router.clientCount === 0);
    expect(timers.count).toBe(0);
  });

  test("twice, and on IPv6", async () => {
    const router = sim({ hostname: "::1" });
    const timers = new ManualTimers();
    for (let i = 0; i < 2; i++) expect((await probeVideohub({ host: "[::1]", port: router.port, clock: timers.clock, timers })).outputs).toBe(12);
    expect(router.connections).toBe(2);
  });

  test("older firmware without END PRELUDE is read to the ping's ACK", async () => {
    const router = sim({ endPrelude: false });
    const timers = new ManualTimers();
    expect((await probeVideohub({ host: "127.0.0.1", port: router.port, clock: timers.clock, timers })).inputs).toBe(12);
  });

  test("refused: nothing listens there", async () => {
    const router = sim();
    const port = router.port;
    router.stop();
    const timers = new ManualTimers();
    const error = await routerRefusal(probeVideohub({ host: "127.0.0.1", port, clock: timers.clock, timers }));
    expect(error.code).toBe("ROUTER_UNREACHABLE");
    expect(error.message).toContain(`127.0.0.1:${port} refused the connection`);
    expect(timers.count).toBe(0);
  });

  test("a router that never answers: a timeout, then nothing left open", async () => {
    const router = sim();
    router.silent = true;
    const timers = new ManualTimers();
    const probe = routerRefusal(probeVideohub({ host: "127.0.0.1", port: router.port, clock: timers.clock, timers, timeoutMs: 3_000 }));
    await waitFor("the test connected", () => router.clientCount === 1);
    await Bun.sleep(0);
    timers.advance(3_000);
    const error = await probe;
    expect(error.code).toBe("ROUTER_TIMEOUT");
    expect(error.message).toContain("sent nothing within 3 s");
    await waitFor("the test's connection closed", () => router.clientCount === 0);
    expect(timers.count).toBe(0);
  });

  test("a dial that never completes ends at the deadline", async () => {
    const timers = new ManualTimers();
    const probe = routerRefusal(probeVideohub({ host: "10.255.255.1", port: 9990, clock: timers.clock, timers, dialer: () => new Promise(() => {}) }));
    timers.advance(4_000);
    expect((await probe).message).toContain("no answer from 10.255.255.1:9990 within 4 s");
  });

  const misbehaving: [string, string, boolean, RouterErrorCode, string][] = [
    ["garbage", "SSH-2.0-OpenSSH_9.2\r\n", false, "ROUTER_PROTOCOL", 'not as a Videohub does (it began with "SSH-2.0-OpenSSH_9.2")'],
    ["an HTTP server", "HTTP/1.1 400 Bad Request\r\n\r\n", true, "ROUTER_PROTOCOL", "not as a Videohub does"],
    ["a half block, then closed", `${DEVICE}VIDEO OUTPUT ROUTING:\n0 1\n1`, true, "ROUTER_PROTOCOL", "closed the connection in the middle of its state dump"],
    ["a huge dump", `${DEVICE}INPUT LABELS:\n${Array.from({ length: MAX_BLOCK_LINES + 1 }, (_, i) => `${i % 12} x`).join("\n")}\n\n`, false, "ROUTER_TOO_LARGE", "more than a Videohub's state dump can hold"],
    ["a line without end", "x".repeat(5_000), false, "ROUTER_TOO_LARGE", "more than a Videohub's state dump can hold"],
  ];
  for (const [name, greeting, close, code, words] of misbehaving) {
    test(`not a Videohub: ${name}`, async () => {
      const router = sim();
      router.greeting = greeting;
      router.closeAfterGreeting = close;
      const timers = new ManualTimers();
      const error = await routerRefusal(probeVideohub({ host: "127.0.0.1", port: router.port, clock: timers.clock, timers }));
      expect(error.code).toBe(code);
      expect(error.message).toContain(words);
      expect(timers.count).toBe(0);
    });
  }

  test("a dump begun and never finished: a timeout that says so", async () => {
    const router = sim();
    router.greeting = DEVICE;
    router.silent = true;
    const timers = new ManualTimers();
    const probe = routerRefusal(probeVideohub({ host: "127.0.0.1", port: router.port, clock: timers.clock, timers }));
    await waitFor("the test connected", () => router.clientCount === 1);
    await Bun.sleep(10);
    timers.advance(4_000);
    const error = await probe;
    expect(error.code).toBe("ROUTER_TIMEOUT");
    expect(error.message).toContain("began its state dump but did not finish it");
  });
});
