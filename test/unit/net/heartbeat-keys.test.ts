/**
 * Machine-sealed heartbeats (net/heartbeat-keys.ts, net/heartbeat.ts): a
 * heartbeat sealed under the pair key of two machines opens only for them and
 * names its sender; another holder of the network key cannot make one that
 * speaks for either.
 */
import { describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fingerprint } from "../../../src/core/keys.ts";
import { seededRandom } from "../../../src/net/crypto.ts";
import { FrameKind } from "../../../src/net/envelope.ts";
import { HeartbeatCodec, MAX_HEARTBEAT_BYTES, type Heartbeat } from "../../../src/net/heartbeat.ts";
import { curvePublicOf, curveSecretOf, HeartbeatKeys, NEW_SENDERS_PER_SECOND } from "../../../src/net/heartbeat-keys.ts";
import { ManualClock } from "../../support/clock.ts";

const random = seededRandom("heartbeat keys test");
const networkKey = random(32);
const clock = new ManualClock(0);

function machine(seed: string) {
  const pair = nacl.sign.keyPair.fromSeed(seededRandom(seed)(32));
  const keys = new HeartbeatKeys(pair, clock);
  return { pair, keys, id: fingerprint(pair.publicKey), codec: new HeartbeatCodec(networkKey, random, keys) };
}

function beat(id: string, overrides: Partial<Heartbeat> = {}): Heartbeat {
  return {
    id, role: "main", state: "active", epoch: 3, activeEpoch: 3, stamp: { boot: "a1b2c3d4e5f60718", seq: 1, sentAt: 1 }, echo: null, echoHeldMs: null,
    challenge: false, showFileRevision: 0, msSinceHeardMain: 0, msSinceHeardBackup: 10, condition: null, syncProgress: null, pairedWith: null,
    lanes: null, hubCopied: null, name: "studio-main", ...overrides,
  };
}

function caught(run: () => unknown): { code?: string; message: string } {
  try {
    run();
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error("expected a throw");
}

describe("heartbeat pair keys", () => {
  test("a machine key proven in a handshake opens its heartbeats though made-up keys used up this second's budget for new senders", () => {
    const main = machine("main");
    const client = machine("client");
    client.keys.pin(main.pair.publicKey);
    // A stranger without the network key sends datagrams naming made-up sender keys: each costs a derivation, within the budget.
    for (let i = 0; i < NEW_SENDERS_PER_SECOND; i++) main.keys.forSender(nacl.sign.keyPair().publicKey);
    const datagram = client.codec.encode(beat(client.id, { role: "client", state: "follow-main" }), main.id);
    expect(caught(() => main.codec.open(datagram, "client")).code).toBe("HEARTBEAT_BUSY");
    main.keys.learn(client.pair.publicKey); // the client dialled the main's peer port: its key is proven
    expect(main.codec.open(datagram, "client").sealedBy).toBe(client.id);
  });

  test("a pair-sealed client heartbeat with both certificates, both tokens, a 63-character name and raw durations fits: durations to a tenth of a millisecond, the name shortened", () => {
    const sig = "A".repeat(86) + "==";
    const token = { b: "a1b2c3d4e5f60718", t: 12345678.123456789, s: sig };
    const signed = { epochCert: { e: 123457, s: sig }, activeCert: { e: 123456, s: sig }, mainToken: token, backupToken: token };
    const client = machine("client");
    const main = machine("main");
    client.keys.pin(main.pair.publicKey);
    const name = "studio-control-room-b-render-engine-number-twelve-left-rack-001";
    const durations = { echoHeldMs: 98.76543200016022, msSinceHeardMain: 12345.765432000123, msSinceHeardBackup: 23.45678900001 };
    const full = beat(client.id, { role: "client", state: "follow-backup", epoch: 123457, activeEpoch: 123456, localApps: 1_000_000, keyFp: "0123456789abcdef", echo: { boot: "b1b2c3d4e5f60718", seq: 123456, sentAt: 1234567.891234567 }, ...durations, ...signed });
    // Rounding alone makes room (1,211 bytes before, 1,171 after); numbers near their bounds need the name shortened too.
    const extreme = { epoch: 2 ** 50, activeEpoch: 2 ** 50 - 1, showFileRevision: 2 ** 40, epochCert: { e: 2 ** 50, s: sig }, activeCert: { e: 2 ** 50 - 1, s: sig } };
    for (const [beatOf, shortened] of [[{ ...full, name: "render-1" }, false], [{ ...full, name }, false], [{ ...full, ...extreme, name }, true]] as const) {
      const datagram = client.codec.encode(beatOf, main.id);
      expect(datagram.length).toBeLessThanOrEqual(MAX_HEARTBEAT_BYTES);
      const { heartbeat } = main.codec.open(datagram, "client");
      expect([heartbeat.echoHeldMs, heartbeat.msSinceHeardMain, heartbeat.msSinceHeardBackup]).toEqual([98.8, 12345.8, 23.5]);
      expect(heartbeat.activeCert).toEqual(beatOf.activeCert);
      if (!shortened) expect(heartbeat.name).toBe(beatOf.name);
      else expect(name.startsWith(heartbeat.name.slice(0, -1)) && heartbeat.name.endsWith("…") && heartbeat.name.length < name.length).toBe(true);
    }
  });

  test("an Ed25519 machine key maps to the X25519 key its secret gives", () => {
    for (let i = 0; i < 8; i++) {
      const pair = nacl.sign.keyPair();
      expect(curvePublicOf(pair.publicKey)).toEqual(nacl.scalarMult.base(curveSecretOf(pair.secretKey)));
    }
  });

  test("a heartbeat sealed for a machine opens there and names its sender; nobody else can open or make one", () => {
    const main = machine("main");
    const client = machine("client");
    const rogue = machine("rogue");
    main.keys.pin(client.pair.publicKey);
    const datagram = main.codec.encode(beat(main.id), client.id);
    expect(datagram[1]).toBe(FrameKind.peerHeartbeat);
    expect(client.codec.open(datagram, "main")).toEqual({ heartbeat: beat(main.id), sealedBy: main.id });
    // A third holder of the network key cannot open it...
    expect(caught(() => rogue.codec.open(datagram, "main")).code).toBe("WIRE_UNSEALED");
    // ...nor make one in the main's name: under its own key it is sealed by the rogue, under the main's header it does not open.
    rogue.keys.pin(client.pair.publicKey);
    const asMain = rogue.codec.encode(beat(main.id), client.id);
    expect(caught(() => client.codec.open(asMain, "rogue")).message).toContain(`says it comes from machine ${main.id} but is sealed by machine ${rogue.id}`);
    const stolenHeader = new Uint8Array(asMain);
    stolenHeader.set(main.pair.publicKey, 2);
    expect(caught(() => client.codec.open(stolenHeader, "rogue")).code).toBe("WIRE_UNSEALED");
    // Under the network key it opens, but says only that some key holder sent it.
    expect(client.codec.open(rogue.codec.encode(beat(main.id)), "rogue").sealedBy).toBeNull();
  });

  test("without the receiver's key a heartbeat goes under the network key", () => {
    const main = machine("main");
    const datagram = main.codec.encode(beat(main.id), "0123456789abcdef");
    expect(datagram[1]).toBe(FrameKind.heartbeat);
  });

  test("new senders' keys are derived within a budget per second; known ones always open; degenerate keys never", () => {
    const server = machine("server");
    const known = machine("known");
    expect(server.keys.forSender(known.pair.publicKey)).not.toBeNull();
    let derived = 0;
    for (let i = 0; i < NEW_SENDERS_PER_SECOND + 10; i++) if (server.keys.forSender(nacl.sign.keyPair().publicKey) !== null) derived++;
    expect(derived).toBe(NEW_SENDERS_PER_SECOND - 1);
    expect(server.keys.forSender(known.pair.publicKey)).not.toBeNull();
    clock.advance(1000);
    expect(server.keys.forSender(nacl.sign.keyPair().publicKey)).not.toBeNull();
    // y = 0 maps to u = 1, a point of low order: its shared secret would be zero, known to everyone.
    expect(server.keys.forSender(new Uint8Array(32))).toBeNull();
  });
});
