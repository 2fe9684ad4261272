/**
 * Heartbeats built ahead (src/machine/beats-ahead.ts, docs/design.md §Heartbeats and freshness, "Heartbeats that keep time"),
 * through the production runner with a transport that records what it is handed: what they say,
 * their stamps and tokens, when they are replaced or dropped, and what a peer makes of them.
 */
import { describe, expect, test } from "bun:test";
import type { Verdict } from "../../../src/core/freshness.ts";
import { aheadPeriods } from "../../../src/core/failure-detector.ts";
import type { AliveToken, ClaimSigner } from "../../../src/core/signed-claims.ts";
import { FailoverRunner, type Endpoint } from "../../../src/machine/failover-runner.ts";
import type { AheadBeat } from "../../../src/machine/runner-ports.ts";
import type { Heartbeat } from "../../../src/net/heartbeat.ts";
import { ManualClock } from "../../support/clock.ts";
import { simSigner } from "../../sim/world.ts";

const TIMINGS = { heartbeatMs: 100, failoverTimeoutMs: 1000 };
const at = (host: string): Endpoint => ({ host, port: 7401 });

type Sent = { kind: "send"; hb: Heartbeat; to: string } | { kind: "ahead"; beats: readonly AheadBeat[]; to: string } | { kind: "drop" };

class Machine {
  readonly log: Sent[] = [];
  readonly verdicts: (Verdict | "untrusted")[] = [];
  readonly runner: FailoverRunner;
  constructor(
    readonly clock: ManualClock,
    role: "main" | "client",
    id: string,
    signer?: ClaimSigner,
  ) {
    this.runner = new FailoverRunner({
      role,
      id,
      name: id,
      boot: `${id}-boot-1`,
      transport: {
        send: (hb, to) => void this.log.push({ kind: "send", hb, to: to.host }),
        sendAhead: (beats, to) => void this.log.push({ kind: "ahead", beats, to: to.host }),
        dropAhead: () => void this.log.push({ kind: "drop" }),
      },
      servers: role === "client" ? { main: at("main"), backup: null } : { main: null, backup: null },
      timings: TIMINGS,
      failback: "auto",
      epochStore: role === "client" ? null : { read: () => 0, write: () => {} },
      pairingStore: role === "client" ? null : { read: () => null, write: () => {} },
      clock,
      timers: { every: () => () => {} },
      log: { info: () => {}, warn: () => {} },
      hooks: { startServing: () => {}, stopServing: () => {}, catchUp: (_e, done) => done(true), uplink: () => {} },
      knownServers: () => ({ main: "main", backup: null }),
      observer: { heartbeat: (_hb, v) => void this.verdicts.push(v) },
      signer,
    });
  }
  /** Delivers the regular heartbeats sent so far to `other` (sealed by their sender), and forgets them. */
  deliverTo(other: Machine, from: string): Heartbeat[] {
    const out = this.sends();
    this.log.length = 0;
    for (const hb of out) other.runner.onHeartbeat(hb, at(from), hb.id);
    return out;
  }
  sends(): Heartbeat[] {
    return this.log.flatMap((s) => (s.kind === "send" ? [s.hb] : []));
  }
  handovers(): (readonly AheadBeat[])[] {
    return this.log.flatMap((s) => (s.kind === "ahead" ? [s.beats] : []));
  }
}

/** A client and a main that count each other's heartbeats; `mainSigner` signs the main's claims (none: taken at their word). */
function connected(mainSigner?: ClaimSigner): { clock: ManualClock; main: Machine; client: Machine } {
  const clock = new ManualClock(1000);
  const main = new Machine(clock, "main", "main", mainSigner);
  const client = new Machine(clock, "client", "c1", mainSigner ? simSigner("c1") : undefined);
  for (let i = 0; i < 3; i++) {
    client.runner.tick();
    client.deliverTo(main, "c1");
    main.deliverTo(client, "main");
  }
  expect(client.runner.current.role === "client" && client.runner.current.following).toBe("main");
  return { clock, main, client };
}

describe("heartbeats built ahead", () => {
  test("a regular heartbeat hands over the next periods' ones: each later by a period, with a higher sequence, and the next regular one higher still", () => {
    const { clock, client } = connected();
    clock.advance(100);
    client.log.length = 0;
    client.runner.tick();
    const [regular] = client.sends();
    const [beats] = client.handovers();
    expect(beats).toHaveLength(aheadPeriods(TIMINGS));
    beats!.forEach((b, i) => {
      const k = i + 1;
      expect(b.heartbeat.stamp.seq).toBe(regular!.stamp.seq + k);
      // A tick (20 ms) past its period, so that a regular heartbeat on time replaces it first.
      expect(b.at).toBe(clock.now() + k * 100 + 20);
      expect(b.heartbeat.stamp.sentAt).toBe(b.at);
      expect(b.notAfter).toBe(b.at + 50);
      expect(b.heartbeat.echo).toEqual(regular!.echo);
      expect(b.heartbeat.echoHeldMs).toBe(regular!.echoHeldMs! + k * 100 + 20);
      expect({ ...b.heartbeat, stamp: null, echoHeldMs: null, msSinceHeardMain: null }).toEqual({ ...regular!, stamp: null, echoHeldMs: null, msSinceHeardMain: null });
      // What it knows of the main when it goes out: nothing heard since it was built.
      expect(b.heartbeat.msSinceHeardMain).toBe(regular!.msSinceHeardMain! + k * 100 + 20);
    });
    clock.advance(100);
    client.log.length = 0;
    client.runner.tick();
    expect(client.sends()[0]!.stamp.seq).toBeGreaterThan(beats!.at(-1)!.heartbeat.stamp.seq);
  });

  test("the main counts one that arrives while the sender's event loop stands still, and ignores one that arrives after the next regular heartbeat", () => {
    const { clock, main, client } = connected();
    clock.advance(100);
    client.log.length = 0;
    client.runner.tick();
    const beats = client.handovers()[0]!;
    client.deliverTo(main, "c1");
    // The client's loop is held: its thread sends the first at its time.
    clock.advance(120);
    main.verdicts.length = 0;
    main.runner.onHeartbeat(beats[0]!.heartbeat, at("c1"), "c1");
    expect(main.verdicts).toEqual(["fresh"]);
    expect(main.runner.status().peers.find((p) => p.id === "c1")!.lastHeardMsAgo).toBe(0);
    // The loop runs again: its regular heartbeat goes out before the thread sent the second.
    client.runner.tick();
    client.deliverTo(main, "c1");
    main.runner.onHeartbeat(beats[1]!.heartbeat, at("c1"), "c1");
    expect(main.verdicts.at(-1)).toBe("replay");
  });

  test("answers to a challenge hand over nothing", () => {
    const clock = new ManualClock(1000);
    const main = new Machine(clock, "main", "main");
    const client = new Machine(clock, "client", "c1");
    client.runner.tick();
    client.deliverTo(main, "c1");
    // The main answers the unverified heartbeat at once; only its regular heartbeats hand over.
    expect(main.sends()).toHaveLength(1);
    expect(main.handovers()).toEqual([]);
  });

  test("a change of what it says drops them before anything else goes out", () => {
    const { clock, client } = connected();
    clock.advance(100);
    client.runner.tick();
    client.log.length = 0;
    // The main goes silent for a timeout: the client stops following it.
    for (let i = 0; i < 60 && client.runner.current.role === "client" && client.runner.current.following !== null; i++) {
      clock.advance(20);
      client.runner.tick();
    }
    expect(client.runner.current.role === "client" && client.runner.current.following).toBeNull();
    const firstDrop = client.log.findIndex((s) => s.kind === "drop");
    expect(firstDrop).toBeGreaterThanOrEqual(0);
    // Every heartbeat handed over before the drop said "follow-main"; none after it does.
    for (const s of client.log.slice(firstDrop)) if (s.kind !== "drop") expect(s.kind === "send" ? s.hb.state : s.beats[0]?.heartbeat.state).not.toBe("follow-main");
  });

  test("a server hands over only the periods whose alive token is signed already, each sent before its token's period ends", () => {
    const signer = simSigner("main");
    const signedFor = new Set<number>();
    // Only the tokens this test says are ready: nothing is signed on the loop for the others.
    const partly: ClaimSigner = { ...signer, readyAhead: (claim, when): AliveToken | null => {
      const token = signer.readyAhead!(claim, when);
      return token !== null && signedFor.has(token.t) ? token : null;
    } };
    const { clock, main } = connected(partly);
    clock.advance(100);
    main.log.length = 0;
    const next = Math.floor((clock.now() + 120) / 100) * 100;
    signedFor.add(next);
    main.runner.tick();
    const beats = main.handovers()[0]!;
    expect(beats).toHaveLength(1);
    const token = beats[0]!.heartbeat.mainToken!;
    expect(token.t).toBe(next);
    expect(token.t).toBeLessThanOrEqual(beats[0]!.at);
    expect(beats[0]!.notAfter).toBeLessThanOrEqual(token.t + 100);
    expect(beats[0]!.heartbeat.epochCert?.e).toBe(1);
  });

  test("a server whose signer signs nothing ahead hands over none, replacing what it handed over before", () => {
    const { clock, main } = connected({ ...simSigner("main"), readyAhead: undefined });
    clock.advance(100);
    main.log.length = 0;
    main.runner.tick();
    expect(main.sends()).toHaveLength(1);
    expect(main.handovers()).toEqual([[]]);
  });
});
