import { describe, expect, test } from "bun:test";
import { deriveHeartbeatKey, seededRandom } from "../../../src/net/crypto.ts";
import { FrameKind, sealEnvelope } from "../../../src/net/envelope.ts";
import { InvalidHeartbeat, MalformedFrame, UnsealFailed, UnsupportedWireVersion } from "../../../src/net/errors.ts";
import { HeartbeatCodec, MAX_HEARTBEAT_BYTES, ReplayFilter, newBootId, type Heartbeat, type ReplayVerdict } from "../../../src/net/heartbeat.ts";

const random = seededRandom("heartbeat test");
const networkKey = random(32);
const from = "10.0.0.3:7401";

function sampleHeartbeat(overrides: Partial<Heartbeat> = {}): Heartbeat {
  return {
    id: "0123456789abcdef",
    role: "backup",
    state: "idle",
    epoch: 3,
    activeEpoch: null,
    msSinceHeardBackup: 20,
    condition: null,
    syncProgress: null,
    seq: 41,
    sentAt: 123456.5,
    echo: { seq: 17, sentAt: 99000 },
    showFileRevision: 12,
    msSinceHeardMain: 80,
    bootId: "a1b2c3d4e5f60718",
    name: "Render 2",
    ...overrides,
  };
}

function caught(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

describe("HeartbeatCodec", () => {
  const codec = new HeartbeatCodec(networkKey, random);

  test("round trip, including nulls", () => {
    for (const heartbeat of [sampleHeartbeat(), sampleHeartbeat({ echo: null, msSinceHeardMain: null, role: "main", state: "active" })]) {
      expect(codec.decode(codec.encode(heartbeat), from)).toEqual(heartbeat);
    }
  });

  test("a datagram stays well under the MTU", () => {
    expect(codec.encode(sampleHeartbeat({ name: "x".repeat(64) })).length).toBeLessThan(MAX_HEARTBEAT_BYTES);
  });

  test("another network key is refused as foreign", () => {
    const foreign = new HeartbeatCodec(random(32), random).encode(sampleHeartbeat());
    const error = caught(() => codec.decode(foreign, from));
    expect(error).toBeInstanceOf(UnsealFailed);
    expect(error.message).toStartWith("A heartbeat from 10.0.0.3:7401 could not be opened");
  });

  test("a tampered byte is refused", () => {
    const datagram = codec.encode(sampleHeartbeat());
    datagram[40]! ^= 0x20;
    expect(caught(() => codec.decode(datagram, from))).toBeInstanceOf(UnsealFailed);
  });

  test.each([
    ["short", new Uint8Array(10), MalformedFrame],
    ["too big", new Uint8Array(MAX_HEARTBEAT_BYTES + 1).fill(1), MalformedFrame],
    ["unknown version", new Uint8Array(60).fill(9), UnsupportedWireVersion],
  ])("%s datagrams are refused before crypto", (_name, datagram, expected) => {
    expect(caught(() => codec.decode(datagram, from))).toBeInstanceOf(expected);
  });

  test("a sealed body that is not a heartbeat is refused with the field at fault", () => {
    const key = deriveHeartbeatKey(networkKey);
    const seal = (body: string) => sealEnvelope(key, FrameKind.heartbeat, random(24), new TextEncoder().encode(body));
    expect(caught(() => codec.decode(seal("{not json"), from))).toBeInstanceOf(InvalidHeartbeat);
    const badSeq = caught(() => codec.decode(seal(JSON.stringify(sampleHeartbeat({ seq: -1 }))), from));
    expect(badSeq).toBeInstanceOf(InvalidHeartbeat);
    expect(badSeq.message).toContain("(seq:");
    expect((badSeq as InvalidHeartbeat).code).toBe("HEARTBEAT_INVALID");
  });

  test("newBootId is 16 hex digits and passes the schema", () => {
    const bootId = newBootId(random);
    expect(bootId).toMatch(/^[0-9a-f]{16}$/);
    expect(codec.decode(codec.encode(sampleHeartbeat({ bootId })), from).bootId).toBe(bootId);
  });
});

describe("ReplayFilter", () => {
  // Each case: the heartbeats (id, bootId, seq) one filter sees in order, and the verdicts.
  const cases: [string, [string, string, number][], ReplayVerdict["reason"][]][] = [
    ["first, then increasing", [["m1", "boot-aaaa", 5], ["m1", "boot-aaaa", 6], ["m1", "boot-aaaa", 9]], ["first", "next", "next"]],
    ["exact replay dropped", [["m1", "boot-aaaa", 5], ["m1", "boot-aaaa", 5]], ["first", "replay"]],
    ["older sequence dropped", [["m1", "boot-aaaa", 5], ["m1", "boot-aaaa", 4]], ["first", "stale"]],
    ["restart with a new boot id accepted, seq starts over", [["m1", "boot-aaaa", 500], ["m1", "boot-bbbb", 0], ["m1", "boot-bbbb", 1]], ["first", "restart", "next"]],
    ["replay from before the restart dropped", [["m1", "boot-aaaa", 500], ["m1", "boot-bbbb", 0], ["m1", "boot-aaaa", 501], ["m1", "boot-bbbb", 1]], ["first", "restart", "old-boot", "next"]],
    ["senders are independent", [["m1", "boot-aaaa", 5], ["m2", "boot-aaaa", 1], ["m1", "boot-aaaa", 6], ["m2", "boot-aaaa", 1]], ["first", "first", "next", "replay"]],
  ];
  test.each(cases)("%s", (_name, heartbeats, verdicts) => {
    const filter = new ReplayFilter();
    expect(heartbeats.map(([id, bootId, seq]) => filter.check({ id, bootId, seq }).reason)).toEqual(verdicts);
  });

  test("accept is true exactly for first/next/restart", () => {
    const filter = new ReplayFilter();
    expect(filter.check({ id: "m", bootId: "b1", seq: 1 }).accept).toBe(true);
    expect(filter.check({ id: "m", bootId: "b1", seq: 1 }).accept).toBe(false);
  });

  test("remembers a bounded number of senders, forgetting the oldest", () => {
    const filter = new ReplayFilter(2);
    filter.check({ id: "a", bootId: "b", seq: 1 });
    filter.check({ id: "b", bootId: "b", seq: 1 });
    filter.check({ id: "c", bootId: "b", seq: 1 });
    expect(filter.size).toBe(2);
    expect(filter.check({ id: "c", bootId: "b", seq: 1 }).reason).toBe("replay");
    filter.forget("c");
    expect(filter.check({ id: "c", bootId: "b", seq: 1 }).reason).toBe("first");
  });
});
