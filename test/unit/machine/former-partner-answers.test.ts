/**
 * The runner's side of a removed backup letting go (core/failover/former-partners.ts):
 * a main answers the heartbeats of a backup it removed, which missed the unpair
 * message, until that backup lets go; nobody else gains anything from it.
 */
import { describe, expect, test } from "bun:test";
import type { Effect, PairingRecord } from "../../../src/core/failover/index.ts";
import { FailoverRunner, type Endpoint } from "../../../src/machine/failover-runner.ts";
import type { Heartbeat } from "../../../src/net/heartbeat.ts";
import { ManualClock } from "../../support/clock.ts";

const TIMINGS = { heartbeatMs: 100, failoverTimeoutMs: 1000 };
const MAIN_AT: Endpoint = { host: "::1", port: 7401 };
const BACKUP_AT: Endpoint = { host: "::1", port: 7402 };

class Server {
  readonly outbox: { hb: Heartbeat; to: Endpoint }[] = [];
  readonly effects: Effect[] = [];
  readonly runner: FailoverRunner;
  constructor(
    clock: ManualClock,
    role: "main" | "backup",
    pairing: PairingRecord | null,
    former: { ids: readonly string[] } = { ids: [] },
  ) {
    let record = pairing;
    this.runner = new FailoverRunner({
      role,
      id: role === "main" ? "m" : "b",
      name: role,
      boot: `${role}-boot`,
      transport: { send: (hb, to) => void this.outbox.push({ hb, to }) },
      servers: role === "backup" ? { main: MAIN_AT, backup: null } : { main: null, backup: null },
      timings: TIMINGS,
      failback: "auto",
      epochStore: { read: () => 1, write: () => {} },
      pairingStore: { read: () => record, write: (p) => void (record = p) },
      formerPartnerStore: { read: () => former.ids, write: (ids) => void (former.ids = ids) },
      clock,
      timers: { every: () => () => {} },
      log: { info: () => {}, warn: () => {} },
      hooks: { startServing: () => {}, stopServing: () => {}, catchUp: (_e, done) => done(true), uplink: () => {} },
      observer: { effect: (fx) => void this.effects.push(fx) },
    });
  }
  /** Hands what it sent to `at` to `other`, as from `from`, sealed by `sealedBy` (the sender itself unless told). */
  deliver(at: Endpoint, other: Server, from: Endpoint, sealedBy?: string | null): number {
    const out = this.outbox.filter((s) => s.to.host === at.host && s.to.port === at.port);
    this.outbox.length = 0;
    for (const { hb } of out) other.runner.onHeartbeat(hb, from, sealedBy === undefined ? hb.id : sealedBy);
    return out.length;
  }
  get phase(): string {
    const s = this.runner.current;
    return s.role === "client" ? s.role : s.phase.kind;
  }
  served(): boolean {
    return this.effects.some((e) => e.type === "startServing");
  }
}

/** A main that removed backup b while b was down (the message never reached it), and b powered on again. */
function removedWhileDown(former = { ids: [] as readonly string[] }, mainRemoves = true) {
  const clock = new ManualClock(10_000);
  const main = new Server(clock, "main", mainRemoves ? { peerId: "b", confirmed: true, hubCopied: false } : null, former);
  if (mainRemoves) main.runner.feed({ type: "unpaired" });
  main.outbox.length = 0;
  const backup = new Server(clock, "backup", { peerId: "m", confirmed: true, hubCopied: true });
  return { clock, main, backup };
}

/** Runs both for `ms`, delivering each way every tick (20 ms). */
function run(clock: ManualClock, main: Server, backup: Server, ms: number, sealedBy?: string | null): void {
  for (let t = 0; t < ms; t += 20) {
    clock.advance(20);
    main.runner.tick();
    backup.runner.tick();
    backup.deliver(MAIN_AT, main, BACKUP_AT, sealedBy);
    main.deliver(BACKUP_AT, backup, MAIN_AT);
  }
}

describe("a main and the backup it removed", () => {
  test("the backup that missed the message lets go within a failover timeout and never serves; the main then forgets it", () => {
    const former = { ids: [] as readonly string[] };
    const { clock, main, backup } = removedWhileDown(former);
    expect(former.ids).toEqual(["b"]);
    run(clock, main, backup, TIMINGS.failoverTimeoutMs - 100);
    expect(backup.phase).toBe("unpaired");
    expect(backup.served()).toBe(false);
    expect(main.runner.current.role === "main" && main.runner.current.formerPartners).toEqual([]);
    expect(former.ids).toEqual([]);
    run(clock, main, backup, 3 * TIMINGS.failoverTimeoutMs);
    expect(backup.phase).toBe("unpaired");
    expect(backup.served()).toBe(false);
    expect(main.phase).toBe("active");
    // Once it let go, the two say nothing more to each other: no stream of refused heartbeats on either side.
    expect(backup.runner.untrustedHeartbeats).toBeLessThan(3);
    expect(main.runner.untrustedHeartbeats).toBe(0);
  });

  test("with another backup paired since, the main's answer names that one, and the removed one lets go", () => {
    const { clock, main, backup } = removedWhileDown();
    main.runner.feed({ type: "paired", peerId: "c" });
    main.outbox.length = 0;
    run(clock, main, backup, TIMINGS.failoverTimeoutMs - 100);
    expect(backup.phase).toBe("unpaired");
    expect(backup.served()).toBe(false);
    expect(main.runner.current.role === "main" && main.runner.current.peerId).toBe("c");
  });

  test("a main restarted after the removal still tells it (the list is persisted)", () => {
    const { clock, main, backup } = removedWhileDown({ ids: ["b"] }, false);
    run(clock, main, backup, TIMINGS.failoverTimeoutMs - 100);
    expect(backup.phase).toBe("unpaired");
    expect(backup.served()).toBe(false);
  });

  test("a key holder speaking in the removed backup's name is neither answered nor believed", () => {
    const { clock, main, backup } = removedWhileDown();
    for (const sealedBy of [null, "rogue"]) {
      backup.runner.tick();
      expect(backup.deliver(MAIN_AT, main, BACKUP_AT, sealedBy)).toBeGreaterThan(0);
      expect(main.outbox.length).toBe(0);
      clock.advance(100);
    }
    expect(main.runner.current.role === "main" && main.runner.current.formerPartners).toEqual(["b"]);
  });

  test("a backup this main never removed is not answered: with its main silent to it, it takes over as before", () => {
    const { clock, main, backup } = removedWhileDown({ ids: [] }, false);
    run(clock, main, backup, TIMINGS.failoverTimeoutMs + 200);
    // Nobody tells it: a paired backup whose main is silent to it takes over as before.
    expect(backup.served()).toBe(true);
  });
});
