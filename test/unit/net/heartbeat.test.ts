import { describe, expect, test } from "bun:test";
import { deriveHeartbeatKey, seededRandom } from "../../../src/net/crypto.ts";
import { FrameKind, sealEnvelope } from "../../../src/net/envelope.ts";
import { InvalidHeartbeat, MalformedFrame, UnsealFailed, UnsupportedWireVersion } from "../../../src/net/errors.ts";
import { HeartbeatCodec, MAX_HEARTBEAT_BYTES, newBootId, type Heartbeat } from "../../../src/net/heartbeat.ts";
import { caught } from "../../support/caught.ts";

const random = seededRandom("heartbeat test");
const networkKey = random(32);
const from = "10.0.0.3:7401";

function sampleHeartbeat(overrides: Partial<Heartbeat> & { seq?: number; boot?: string } = {}): Heartbeat {
  const { seq = 41, boot = "a1b2c3d4e5f60718", ...rest } = overrides;
  return {
    id: "0123456789abcdef",
    role: "backup",
    state: "idle",
    epoch: 3,
    activeEpoch: null,
    msSinceHeardBackup: 20,
    condition: null,
    syncProgress: null,
    stamp: { boot, seq, sentAt: 123456.5 },
    echo: { boot: "0f0e0d0c0b0a0908", seq: 17, sentAt: 99000 },
    echoHeldMs: null,
    challenge: false,
    showFileRevision: 12,
    msSinceHeardMain: 80,
    pairedWith: "00112233445566ff",
    lanes: { hubEpoch: 3, hubSeq: 9, logId: "log-a", logSeq: 12 },
    hubCopied: true,
    name: "Render 2",
    ...rest,
  };
}

describe("HeartbeatCodec", () => {
  const codec = new HeartbeatCodec(networkKey, random);

  test("round trip, including nulls", () => {
    for (const heartbeat of [sampleHeartbeat(), sampleHeartbeat({ echo: null, msSinceHeardMain: null, role: "main", state: "active" })]) {
      expect(codec.decode(codec.encode(heartbeat), from)).toEqual(heartbeat);
    }
  });

  test("a datagram stays well under the MTU, with both certificates and both tokens", () => {
    const sig = "A".repeat(86) + "==";
    const token = { b: "a1b2c3d4e5f60718", t: 12345678.123456789, s: sig };
    const signed = { epochCert: { e: 2 ** 50, s: sig }, activeCert: { e: 2 ** 50 - 1, s: sig }, mainToken: token, backupToken: token };
    const full = sampleHeartbeat({ name: "x".repeat(64), localApps: 1_000_000, epoch: 2 ** 50, activeEpoch: 2 ** 50 - 1, ...signed });
    expect(codec.encode(full).length).toBeLessThan(MAX_HEARTBEAT_BYTES);
    expect(codec.decode(codec.encode(full), from)).toEqual(full);
  });

  test("a certificate or token that is not a signature is refused as invalid", () => {
    for (const bad of [{ epochCert: { e: 3, s: "short" } }, { mainToken: { b: "a1b2c3d4e5f60718", t: 1, s: "x".repeat(88) } }, { epochCert: { e: 0, s: "A".repeat(86) + "==" } }]) {
      const body = new TextEncoder().encode(JSON.stringify({ ...sampleHeartbeat(), ...bad }));
      const datagram = sealEnvelope(deriveHeartbeatKey(networkKey), FrameKind.heartbeat, random(24), body);
      expect(caught(() => codec.decode(datagram, from))).toBeInstanceOf(InvalidHeartbeat);
    }
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
    expect(badSeq.message).toContain("stamp.seq");
    expect((badSeq as InvalidHeartbeat).code).toBe("HEARTBEAT_INVALID");
  });

  test("newBootId is 16 hex digits and passes the schema", () => {
    const boot = newBootId(random);
    expect(boot).toMatch(/^[0-9a-f]{16}$/);
    expect(codec.decode(codec.encode(sampleHeartbeat({ boot })), from).stamp.boot).toBe(boot);
  });
});
