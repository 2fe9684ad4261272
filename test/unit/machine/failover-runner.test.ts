/**
 * The production failover runner with an in-memory transport and a manual
 * clock: freshness gating, challenges, round-trip delay, routing hook, and
 * settings saved again. (test/sim runs the same class through thousands of
 * seeded fault schedules; these are its single steps.)
 */
import { describe, expect, test } from "bun:test";
import type { Effect } from "../../../src/core/failover/index.ts";
import type { Verdict } from "../../../src/core/freshness.ts";
import type { UplinkTarget } from "../../../src/core/routing.ts";
import { FailoverRunner, IMPOSTOR_WARN_AFTER, type Endpoint } from "../../../src/machine/failover-runner.ts";
import type { Heartbeat } from "../../../src/net/heartbeat.ts";
import { ManualClock } from "../../support/clock.ts";
import type { ClaimSigner } from "../../../src/core/signed-claims.ts";
import { simSigner } from "../../sim/world.ts";
import { pretendClientHeartbeat } from "../../support/heartbeat-recorder.ts";

const TIMINGS = { heartbeatMs: 100, failoverTimeoutMs: 1000 };
const at = (host: string): Endpoint => ({ host, port: 7401 });

class Machine {
  readonly sent: { hb: Heartbeat; to: Endpoint }[] = [];
  readonly effects: Effect[] = [];
  readonly verdicts: (Verdict | "untrusted")[] = [];
  readonly uplinks: UplinkTarget[] = [];
  readonly warnings: string[] = [];
  readonly runner: FailoverRunner;
  constructor(
    readonly clock: ManualClock,
    role: "main" | "client",
    id: string,
    boot = `${id}-boot-1`,
    localApps?: () => number,
    signer?: ClaimSigner,
  ) {
    this.runner = new FailoverRunner({
      role,
      id,
      name: id,
      boot,
      transport: { send: (hb, to) => void this.sent.push({ hb, to }) },
      servers: role === "client" ? { main: at("main"), backup: null } : { main: null, backup: null },
      timings: TIMINGS,
      failback: "auto",
      epochStore: role === "client" ? null : { read: () => 0, write: () => {} },
      pairingStore: role === "client" ? null : { read: () => null, write: () => {} },
      clock,
      timers: { every: () => () => {} },
      log: { info: () => {}, warn: (m) => void this.warnings.push(m) },
      hooks: { startServing: () => {}, stopServing: () => {}, catchUp: (_e, done) => done(true), uplink: (t) => void this.uplinks.push(t) },
      knownServers: () => ({ main: "main", backup: null }),
      observer: { effect: (fx) => void this.effects.push(fx), heartbeat: (_hb, v) => void this.verdicts.push(v) },
      localApps,
      signer,
    });
  }
  /** Delivers everything this machine sent to `to`'s host, to `other`. */
  deliverTo(other: Machine, host: string): Heartbeat[] {
    const out = this.sent.filter((s) => s.to.host === host);
    this.sent.length = 0;
    // Sealed under the pair key of the two machines, as the heartbeat socket does once it knows the receiver's key.
    for (const { hb } of out) other.runner.onHeartbeat(hb, at(this.runner.current.role === "client" ? "c1" : "main"), hb.id);
    return out.map((s) => s.hb);
  }
}

function pair(): { clock: ManualClock; main: Machine; client: Machine } {
  const clock = new ManualClock(1000);
  return { clock, main: new Machine(clock, "main", "main"), client: new Machine(clock, "client", "c1") };
}

describe("failover runner", () => {
  test("first contact: an unverified heartbeat is answered with a challenge, and the answer to it counts", () => {
    const { main, client } = pair();
    client.runner.tick();
    const first = client.deliverTo(main, "main");
    expect(first[0]!.echo).toBeNull();
    expect(main.verdicts).toEqual(["unverified"]);
    const challenge = main.sent.at(-1)!.hb;
    expect(challenge.challenge).toBe(true);
    main.deliverTo(client, "c1");
    expect(client.verdicts).toEqual(["fresh"]);
    // The client answers a challenge at once; its answer echoes the main's stamp, so it counts.
    client.deliverTo(main, "main");
    expect(main.verdicts.at(-1)).toBe("fresh");
    expect(client.runner.current.role === "client" && client.runner.current.following).toBe("main");
  });

  test("a challenge lost in a cut is sent again for the sender's next heartbeat, though it comes a little under a period later (sim seed 101156)", () => {
    const { clock, main, client } = pair();
    client.runner.tick();
    clock.advance(3); // this one took 3 ms to arrive
    client.deliverTo(main, "main");
    expect(main.sent.at(-1)!.hb.challenge).toBe(true);
    main.sent.length = 0; // lost: the link back to the client is still cut
    // The client's next heartbeat arrives at once, a little under a period after the challenge, still echoing nothing the main can count.
    clock.advance(TIMINGS.heartbeatMs - 3);
    client.runner.tick();
    client.deliverTo(main, "main");
    expect(main.verdicts).toEqual(["unverified", "unverified"]);
    expect(main.sent.at(-1)?.hb.challenge).toBe(true);
    main.deliverTo(client, "c1");
    client.deliverTo(main, "main");
    expect(main.verdicts.at(-1)).toBe("fresh");
  });

  test("a recorded heartbeat replayed later, or after a restart, never counts and changes nothing", () => {
    const { clock, main, client } = pair();
    client.runner.tick();
    client.deliverTo(main, "main");
    const recorded = main.sent.map((s) => s.hb);
    main.deliverTo(client, "c1");
    const following = () => (client.runner.current.role === "client" ? client.runner.current.following : "?");
    expect(following()).toBe("main");
    clock.advance(5000);
    client.verdicts.length = 0;
    // Replayed as it was, and with the client restarted (a new boot it never echoed).
    for (const hb of recorded) client.runner.onHeartbeat(hb, at("main"), hb.id);
    const restarted = new Machine(clock, "client", "c1", "c1-boot-2");
    for (const hb of recorded) restarted.runner.onHeartbeat(hb, at("main"), hb.id);
    expect([...client.verdicts, ...restarted.verdicts].every((v) => v !== "fresh")).toBe(true);
    expect(restarted.runner.current.role === "client" && restarted.runner.current.following).toBeNull();
  });

  test("a heartbeat that speaks for the main without the main's machine key is refused unanswered and changes nothing", () => {
    const { main, client } = pair();
    client.runner.tick();
    client.deliverTo(main, "main");
    const answer = main.sent.at(-1)!.hb;
    main.sent.length = 0;
    // Another key holder re-seals the main's own words, even with a fresh echo, under the network key,
    // or under its own key while naming the main, or as itself claiming to be the main.
    const forged: [Heartbeat, string | null][] = [
      [{ ...answer, state: "active", activeEpoch: 99, epoch: 99 }, null],
      [{ ...answer, state: "active", activeEpoch: 99, epoch: 99 }, "rogue"],
      [{ ...answer, id: "rogue", state: "active", activeEpoch: 99, epoch: 99 }, "rogue"],
    ];
    for (const [hb, sealedBy] of forged) client.runner.onHeartbeat(hb, at("rogue"), sealedBy);
    expect(client.verdicts).toEqual(["untrusted", "untrusted", "untrusted"]);
    expect(client.runner.untrustedHeartbeats).toBe(3);
    expect(client.sent).toEqual([]);
    expect(client.runner.current.role === "client" && client.runner.current.following).toBeNull();
    // A few are normal while keys are learned; a stream of them is said once, in words.
    expect(client.warnings).toEqual([]);
    for (let i = 0; i < 2 * IMPOSTOR_WARN_AFTER; i++) client.runner.onHeartbeat(forged[0]![0], at("rogue"), null);
    expect(client.warnings).toHaveLength(1);
    expect(client.warnings[0]).toContain("speak for the main server (main) without its machine key");
    // The same words sealed by the main itself count.
    client.runner.onHeartbeat(answer, at("main"), "main");
    expect(client.verdicts.at(-1)).toBe("fresh");
  });

  test("the round-trip delay leaves out the time the peer held our stamp", () => {
    const { clock, main, client } = pair();
    client.runner.tick();
    client.deliverTo(main, "main");
    main.deliverTo(client, "c1");
    client.deliverTo(main, "main");
    clock.advance(100);
    client.runner.tick();
    client.deliverTo(main, "main"); // the main's own heartbeat falls due as this arrives
    main.deliverTo(client, "c1");
    // The client's next heartbeat leaves 100 ms after the main's stamp arrived; 2 ms on the wire back.
    clock.advance(100);
    client.runner.tick();
    expect(client.sent.at(-1)!.hb.echoHeldMs).toBe(100);
    clock.advance(2);
    client.deliverTo(main, "main");
    expect(main.runner.status().peers.find((p) => p.id === "c1")!.delayMs).toBe(2);
  });

  test("each machine tells its peers how many local apps its node has, for their Routing panel", () => {
    const clock = new ManualClock(1000);
    let apps = 3;
    const main = new Machine(clock, "main", "main");
    const client = new Machine(clock, "client", "c1", "c1-boot-1", () => apps);
    client.runner.tick();
    expect(client.deliverTo(main, "main")[0]!.localApps).toBe(3);
    main.deliverTo(client, "c1"); // the challenge: the first heartbeat does not count yet
    client.deliverTo(main, "main");
    expect(main.runner.status().peers.find((p) => p.id === "c1")!.localApps).toBe(3);
    apps = 0;
    clock.advance(100);
    client.runner.tick();
    client.deliverTo(main, "main");
    expect(main.runner.status().peers.find((p) => p.id === "c1")!.localApps).toBe(0);
    main.runner.tick();
    expect(main.deliverTo(client, "c1")[0]!.localApps).toBeNull();
  });

  test("saving the same server addresses again does nothing at all", () => {
    const { client } = pair();
    client.effects.length = 0;
    client.runner.setServers({ main: at("main"), backup: null });
    expect(client.effects).toEqual([]);
    client.runner.setServers({ main: at("main"), backup: at("backup") });
    expect(client.runner.current.role === "client" && client.runner.current.knows.backup).toBe(true);
  });

  test("the uplink hook fires only when the target changes", () => {
    const { main } = pair();
    // A main with no backup serves at once: its local apps use its own hub.
    expect(main.uplinks).toEqual([{ server: "self", epoch: 1 }]);
    main.runner.tick();
    main.runner.tick();
    expect(main.uplinks).toHaveLength(1);
  });
});

describe("failover runner: signed claims (core/signed-claims.ts)", () => {
  function signedPair(): { clock: ManualClock; main: Machine; client: Machine } {
    const clock = new ManualClock(1000);
    return { clock, main: new Machine(clock, "main", "main", "main-boot-1", undefined, simSigner("main")), client: new Machine(clock, "client", "c1", "c1-boot-1", undefined, simSigner("c1")) };
  }
  function handshake(main: Machine, client: Machine): void {
    for (let i = 0; i < 3; i++) {
      client.runner.tick();
      client.deliverTo(main, "main");
      main.deliverTo(client, "c1");
    }
  }

  test("the main certifies its epoch and signs a token; the client relays both, and follows it", () => {
    const { clock, main, client } = signedPair();
    handshake(main, client);
    expect(client.runner.current.epoch).toBe(1);
    clock.advance(100);
    client.runner.tick();
    const relayed = client.sent.at(-1)!.hb;
    expect(relayed.epochCert?.e).toBe(1);
    expect(relayed.mainToken?.b).toBe("main-boot-1");
  });

  test("a key holder in its own name claiming a higher epoch and to follow the backup moves nothing, and is named once", () => {
    const { clock, main, client } = signedPair();
    handshake(main, client);
    const echo = () => main.sent.findLast((s) => s.to.host === "rogue")?.hb.stamp ?? null;
    for (let seq = 1; seq <= 20; seq++) {
      clock.advance(50);
      const hb: Heartbeat = {
        ...pretendClientHeartbeat("0123456789abcdef", "rogue-boot-1", seq, clock.now(), echo()),
        name: "rogue", state: "follow-backup", epoch: seq + 1, activeEpoch: seq + 1, msSinceHeardMain: 0, msSinceHeardBackup: 0,
        epochCert: { e: seq + 1, s: "made-up" },
      };
      main.runner.onHeartbeat(hb, at("rogue"), null);
      main.runner.tick();
    }
    expect(main.runner.current.epoch).toBe(1);
    expect(main.effects.filter((e) => e.type === "stopServing")).toEqual([]);
    expect(main.warnings.filter((w) => w.includes("Machine 0123456789abcdef sent"))).toHaveLength(1);
    expect(main.runner.status().peers.find((p) => p.name === "rogue")?.unbackedClaims).toBeGreaterThan(10);
  });
});
