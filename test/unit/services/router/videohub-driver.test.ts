import { afterEach, describe, expect, test } from "bun:test";
import { RouterError, type RouterEvent } from "../../../../src/core/router.ts";
import { BlockParser, MAX_BLOCK_LINES } from "../../../../src/services/router/videohub-protocol.ts";
import { VideohubDriver } from "../../../../src/services/router/videohub-driver.ts";
import { ManualTimers } from "../../../support/clock.ts";
import { routerRefusal, VideohubSim } from "../../../support/videohub-sim.ts";
import { waitFor } from "../../../support/wait-for.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup(options: ConstructorParameters<typeof VideohubSim>[0] = {}, host = "127.0.0.1") {
  const sim = new VideohubSim(options).start();
  const timers = new ManualTimers();
  const driver = new VideohubDriver({ host, port: sim.port, clock: timers.clock, timers });
  const events: RouterEvent[] = [];
  driver.onEvent((e) => events.push(e));
  cleanups.push(() => driver.close(), () => sim.stop());
  return { sim, timers, driver, events };
}

describe("Videohub driver against the simulated router", () => {
  test("reads the whole state on connect, zero-based", async () => {
    const { driver } = setup();
    const snapshot = await driver.connect();
    expect(snapshot.outputCount).toBe(12);
    expect(snapshot.routes[0]).toBe(0);
    expect(snapshot.routes[11]).toBe(11);
    expect(snapshot.outputLabels[0]).toBe("Output 1");
    expect(snapshot.locks.every((l) => l === "U")).toBe(true);
  });

  test("a dump without END PRELUDE (older firmware) ends at the first ping's ACK", async () => {
    const { driver } = setup({ endPrelude: false });
    expect((await driver.connect()).inputCount).toBe(12);
  });

  test("a route counts once the router's status confirms it; twice is harmless", async () => {
    const { driver, sim } = setup();
    await driver.connect();
    await driver.route(3, 7);
    expect(sim.routes[3]).toBe(7);
    expect(driver.state()!.routes[3]).toBe(7);
    await driver.route(3, 7);
    expect(sim.requests).toEqual(["3 7"]);
  });

  test("IPv6: a router on [::1] is read and routed", async () => {
    const { driver, sim } = setup({ hostname: "::1" }, "[::1]");
    await driver.connect();
    await driver.route(1, 2);
    expect(sim.routes[1]).toBe(2);
  });

  test("NAK is a ROUTER_NAK and changes nothing", async () => {
    const { driver, sim } = setup();
    await driver.connect();
    sim.nak = true;
    expect((await routerRefusal(driver.route(2, 5))).code).toBe("ROUTER_NAK");
    expect(sim.routes[2]).toBe(2);
    expect(driver.state()!.routes[2]).toBe(2);
  });

  test("a slow ACK still ends in a confirmed route", async () => {
    const { driver, sim } = setup();
    await driver.connect();
    sim.holdAcks = true;
    const routed = driver.route(4, 9);
    await waitFor("the request to reach the router", () => sim.requests.length === 1);
    sim.releaseAcks();
    await routed;
    expect(driver.state()!.routes[4]).toBe(9);
  });

  test("ACK without the confirming status is ROUTER_NOT_CONFIRMED; the route in force stays what the router says", async () => {
    const { driver, sim, timers } = setup();
    await driver.connect();
    sim.confirm = false;
    const routed = routerRefusal(driver.route(4, 9));
    await waitFor("the request to reach the router", () => sim.requests.length === 1);
    await Bun.sleep(5);
    timers.advance(2_000);
    expect((await routed).code).toBe("ROUTER_NOT_CONFIRMED");
    expect(driver.state()!.routes[4]).toBe(4);
  });

  test("another client's lock is shown and never forced by route()", async () => {
    const { driver, sim, events } = setup();
    await driver.connect();
    sim.lockByOther(6);
    await waitFor("the lock to be seen", () => driver.state()!.locks[6] === "L");
    expect(events.some((e) => e.kind === "locks")).toBe(true);
    expect((await routerRefusal(driver.route(6, 1))).code).toBe("ROUTER_LOCKED");
    expect(sim.requests).toEqual([]);
    await driver.setLock(6, "F");
    expect(driver.state()!.locks[6]).toBe("U");
    await driver.setLock(6, "O");
    expect(driver.state()!.locks[6]).toBe("O");
  });

  test("a port the router does not have is ROUTER_BAD_PORT", async () => {
    const { driver } = setup();
    await driver.connect();
    expect((await routerRefusal(driver.route(12, 0))).code).toBe("ROUTER_BAD_PORT");
    expect((await routerRefusal(driver.route(0, -1))).code).toBe("ROUTER_BAD_PORT");
  });

  test("garbage and bad lines are typed errors and change nothing; the connection stays", async () => {
    const { driver, sim, events } = setup();
    await driver.connect();
    sim.sendRaw("VIDEO OUTPUT ROUTING:\n1 2\nfoo bar\n\n");
    sim.sendRaw("VIDEO OUTPUT ROUTING:\n99 1\n\n");
    sim.sendRaw("SOMETHING NEW:\nwhatever\n\n\x00\x01 noise\n\n");
    await waitFor("two errors", () => events.filter((e) => e.kind === "error").length === 2);
    expect(events.filter((e) => e.kind === "error").map((e) => (e as { error: RouterError }).error.code)).toEqual(["ROUTER_PROTOCOL", "ROUTER_PROTOCOL"]);
    expect(driver.state()!.routes[1]).toBe(1);
    await driver.route(1, 3);
  });

  test("a huge dump drops the connection with ROUTER_TOO_LARGE and reconnects after the back-off", async () => {
    const { driver, sim, events, timers } = setup();
    await driver.connect();
    sim.sendRaw(`INPUT LABELS:\n${Array.from({ length: MAX_BLOCK_LINES + 1 }, (_, i) => `0 label ${i}`).join("\n")}\n\n`);
    await waitFor("the drop", () => events.some((e) => e.kind === "disconnected"));
    const dropped = events.find((e) => e.kind === "disconnected") as { error: RouterError };
    expect(dropped.error.code).toBe("ROUTER_TOO_LARGE");
    expect(driver.state()).toBeNull();
    expect((await routerRefusal(driver.route(1, 1))).code).toBe("ROUTER_NOT_CONNECTED");
    timers.advance(500);
    await waitFor("the reconnect", () => driver.state() !== null);
    expect(sim.connections).toBe(2);
  });

  test("a dropped connection in the middle of a block: state re-read on reconnect", async () => {
    const { driver, sim, events, timers } = setup();
    await driver.connect();
    await driver.route(2, 3); // a round trip: the first ping's ACK is in before the half block
    sim.sendRaw("VIDEO OUTPUT ROUTING:\n5 ");
    await Bun.sleep(5);
    sim.routes[5] = 8;
    sim.dropAll();
    await waitFor("the drop", () => events.some((e) => e.kind === "disconnected"));
    expect((events.find((e) => e.kind === "disconnected") as { error: RouterError }).error.message).toContain("middle of a block");
    timers.advance(500);
    await waitFor("the reconnect", () => driver.state() !== null);
    expect(driver.state()!.routes[5]).toBe(8);
  });

  test("a router that never answers: connect and ping time out, nothing hangs", async () => {
    const { driver, sim, timers } = setup();
    sim.silent = true;
    const first = routerRefusal(driver.connect());
    await waitFor("the connection", () => sim.clientCount === 1);
    await Bun.sleep(0);
    timers.advance(2_000);
    expect((await first).code).toBe("ROUTER_TIMEOUT");
    sim.silent = false;
    timers.advance(500);
    await waitFor("the reconnect", () => driver.state() !== null);
    sim.silent = true;
    timers.advance(2_000);
    timers.advance(2_000);
    await waitFor("the ping to time out", () => driver.state() === null);
  });

  test("a dial that never completes (nothing answers SYN) times out and is retried, not waited on for minutes", async () => {
    const timers = new ManualTimers();
    let dials = 0;
    const driver = new VideohubDriver({ host: "10.255.255.1", port: 9990, clock: timers.clock, timers, dialer: () => (dials++, new Promise(() => {})) });
    const first = routerRefusal(driver.connect());
    timers.advance(5_000);
    expect((await first).code).toBe("ROUTER_TIMEOUT");
    timers.advance(500);
    expect(dials).toBe(2);
    driver.close();
    expect(timers.count).toBe(0);
  });

  test("an unreachable router is ROUTER_UNREACHABLE; close() ends the retries", async () => {
    const sim = new VideohubSim().start();
    const port = sim.port;
    sim.stop();
    const timers = new ManualTimers();
    const driver = new VideohubDriver({ host: "127.0.0.1", port, clock: timers.clock, timers });
    expect((await routerRefusal(driver.connect())).code).toBe("ROUTER_UNREACHABLE");
    driver.close();
    expect(timers.count).toBe(0);
    expect((await routerRefusal(driver.connect())).code).toBe("ROUTER_CLOSED");
  });
});

describe("Videohub block parser bounds", () => {
  test("a line longer than the bound is ROUTER_TOO_LARGE, even without a newline", () => {
    const parser = new BlockParser();
    expect(() => parser.feed("x".repeat(5_000))).toThrow(RouterError);
  });
  test("blocks split across chunks and CRLF line ends", () => {
    const parser = new BlockParser();
    expect(parser.feed("VIDEO OUTPUT ROUTING:\r\n1 ")).toEqual([]);
    expect(parser.midBlock).toBe(true);
    expect(parser.feed("2\r\n\r\nACK\n\n")).toEqual([{ header: "VIDEO OUTPUT ROUTING:", lines: ["1 2"] }, { header: "ACK", lines: [] }]);
  });
});
