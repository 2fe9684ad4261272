/**
 * Every decoder of outside input, fed seeded random and mutated input
 * (FUZZ_SEED=x replays): none may throw anything but a coded AppError where it
 * throws at all, none may hang, and what it accepts fits its schema.
 */
import { secureDialer } from "../../../src/net/peer-net.ts";
import { afterAll, describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { AppError } from "../../../src/core/errors.ts";
import { readWireJson } from "../../../src/core/wire-json.ts";
import { parseFromHubFrame, parseToHubFrame } from "../../../src/hub/frames.ts";
import { broadcastEpoch, openBroadcast, sealBroadcast } from "../../../src/net/broadcast.ts";
import { deriveBroadcastKey, deriveHeartbeatKey } from "../../../src/net/crypto.ts";
import { FrameKind, frameKind, openEnvelope, sealEnvelope } from "../../../src/net/envelope.ts";
import { FINGERPRINT_HEADER, HandshakeInitiator, LISTENER_PROOF_BYTES, PROOF_HEADER, answerUpgrade, type HandshakeStep } from "../../../src/net/handshake.ts";
import { HeartbeatCodec, heartbeatSchema, newBootId } from "../../../src/net/heartbeat.ts";
import { HeartbeatKeys } from "../../../src/net/heartbeat-keys.ts";
import { fingerprint } from "../../../src/core/keys.ts";
import { replicateRequestSchema, safeJson } from "../../../src/services/hub-service.ts";
import { MAX_PAIRING_FRAME_BYTES, PairingService, pairingFrameSchema, parsePairingFrame, type PairingSide } from "../../../src/services/pairing-service.ts";
import { createLogger } from "../../../src/log.ts";
import { rpcServer } from "../../../src/net/rpc.ts";
import type { SecureConnection } from "../../../src/net/secure-socket.ts";
import { parseTxt } from "../../../src/net/discovery/txt.ts";
import { UpgradeChallenges } from "../../../src/net/upgrade-challenge.ts";
import type { MachineNode } from "../../../src/machine/machine-node.ts";
import { Fuzz, FUZZ_SEED } from "../../support/fuzz.ts";
import { startNode } from "../../support/machine-node.ts";

/** Inputs per decoder: enough to reach every refusal path, few enough to stay well under a second each. */
const RUNS = 400;
const networkKey = nacl.randomBytes(32);
const text = new TextEncoder();

/** Runs `decode`; a throw must be a coded AppError (a TypeError or RangeError is a bug the input found). */
function survives(name: string, input: unknown, decode: () => unknown): unknown {
  try {
    return decode();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw new Error(`${name} threw ${(error as Error).name} on input ${JSON.stringify(String(input)).slice(0, 200)} (FUZZ_SEED=${JSON.stringify(FUZZ_SEED)}): ${(error as Error).message}`);
  }
}

function channelPair() {
  const machine = nacl.sign.keyPair();
  const challenges = new UpgradeChallenges(fingerprint(machine.publicKey), { now: () => 0 });
  const initiator = new HandshakeInitiator({ networkKey, machine: nacl.sign.keyPair(), peerAddress: "r", path: "/hub", challenge: challenges.challenge() });
  const answer = answerUpgrade({ networkKey, machine, peerAddress: "i", challenges, headers: new Headers(initiator.headers), path: "/hub" });
  if (!answer.ok) throw answer.error;
  const atInitiator = initiator.receive(answer.reply) as Extract<HandshakeStep, { status: "established" }>;
  return { a: atInitiator.channel, b: answer.channel };
}

describe(`decoders under fuzz (FUZZ_SEED=${JSON.stringify(FUZZ_SEED)})`, () => {
  test("envelope: random and mutated frames are refused with a code before or at crypto", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} envelope`);
    const key = nacl.randomBytes(32);
    const valid = sealEnvelope(key, FrameKind.heartbeat, nacl.randomBytes(24), text.encode("payload"));
    for (let i = 0; i < RUNS; i++) {
      const input = i % 2 === 0 ? fuzz.randomBytes(80) : fuzz.mutate(valid);
      survives("frameKind", input, () => frameKind(input, "fuzz"));
      const opened = survives("openEnvelope", input, () => openEnvelope(key, FrameKind.heartbeat, input, "fuzz"));
      if (opened instanceof Uint8Array) expect(new TextDecoder().decode(opened)).toBe("payload");
    }
  });

  test("channel frames: anything but the next sealed frame is refused", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} channel`);
    const { a, b } = channelPair();
    for (let i = 0; i < RUNS; i++) {
      const sealed = a.seal(text.encode(`frame ${i}`));
      const input = fuzz.mutate(sealed);
      const opened = survives("SecureChannel.open", input, () => b.open(input));
      if (opened instanceof Uint8Array) expect(new TextDecoder().decode(opened)).toBe(`frame ${i}`);
      else b.open(sealed); // keep the counters in step for the next round
    }
  });

  test("hub broadcasts: random and mutated frames are refused with a code; only the sealed one opens", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} broadcast`);
    const key = deriveBroadcastKey(networkKey, 3);
    for (let i = 0; i < RUNS; i++) {
      const sealed = sealBroadcast(key, text.encode(`fan ${i}`));
      const input = i % 4 === 0 ? fuzz.randomBytes(90) : fuzz.mutate(sealed);
      survives("broadcastEpoch", input, () => broadcastEpoch(input, "fuzz"));
      const opened = survives("openBroadcast", input, () => openBroadcast(key, input, "fuzz"));
      if (opened instanceof Uint8Array) expect(new TextDecoder().decode(opened)).toBe(`fan ${i}`);
    }
  });

  test("heartbeats: raw datagrams, and sealed bodies of random JSON, are refused with a code or fit the schema", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} heartbeat`);
    const codec = new HeartbeatCodec(networkKey);
    const key = deriveHeartbeatKey(networkKey);
    const valid = codec.encode({
      id: "0123456789abcdef", role: "client", state: "follow-main", epoch: 1, activeEpoch: 1, stamp: { boot: newBootId(), seq: 1, sentAt: 1 },
      echo: null, echoHeldMs: null, challenge: false, showFileRevision: 0, msSinceHeardMain: null, msSinceHeardBackup: null, condition: null,
      syncProgress: null, pairedWith: null, lanes: null, hubCopied: null, name: "c",
    });
    for (let i = 0; i < RUNS; i++) {
      const roll = i % 3;
      const input =
        roll === 0 ? fuzz.randomBytes(1300) : roll === 1 ? fuzz.mutate(valid) : sealEnvelope(key, FrameKind.heartbeat, nacl.randomBytes(24), text.encode(fuzz.jsonText().slice(0, 1100)));
      const decoded = survives("HeartbeatCodec.decode", input, () => codec.decode(input, "fuzz"));
      if (!(decoded instanceof AppError)) expect(heartbeatSchema.safeParse(decoded).success).toBe(true);
    }
  });

  test("machine-sealed heartbeats: mutated ones are refused with a code, and none opens as sealed by anyone but its sender", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} machine-sealed heartbeat`);
    const clock = { now: () => 0 };
    const sender = nacl.sign.keyPair();
    const receiver = nacl.sign.keyPair();
    const senderKeys = new HeartbeatKeys(sender, clock);
    senderKeys.pin(receiver.publicKey);
    const receiverCodec = new HeartbeatCodec(networkKey, undefined, new HeartbeatKeys(receiver, clock));
    const beat = {
      id: fingerprint(sender.publicKey), role: "main" as const, state: "active" as const, epoch: 1, activeEpoch: 1, stamp: { boot: newBootId(), seq: 1, sentAt: 1 },
      echo: null, echoHeldMs: null, challenge: false, showFileRevision: 0, msSinceHeardMain: 0, msSinceHeardBackup: null, condition: null,
      syncProgress: null, pairedWith: null, lanes: null, hubCopied: null, name: "m",
    };
    const valid = new HeartbeatCodec(networkKey, undefined, senderKeys).encode(beat, fingerprint(receiver.publicKey));
    for (let i = 0; i < RUNS; i++) {
      const input = i % 5 === 0 ? fuzz.randomBytes(1300) : fuzz.mutate(valid);
      const opened = survives("HeartbeatCodec.open", input, () => receiverCodec.open(input, "fuzz"));
      if (!(opened instanceof AppError)) expect((opened as { sealedBy: string | null }).sealedBy).toBe(beat.id);
    }
  });

  test("the listener's proof: the dialer never throws, and nothing but the listener's own proof establishes", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} listener proof`);
    const machine = nacl.sign.keyPair();
    const challenges = new UpgradeChallenges(fingerprint(machine.publicKey), { now: () => 0 });
    for (let i = 0; i < RUNS / 4; i++) {
      const initiator = new HandshakeInitiator({ networkKey, machine: nacl.sign.keyPair(), peerAddress: "fuzz", path: "/hub", challenge: challenges.challenge() });
      const answer = answerUpgrade({ networkKey, machine, peerAddress: "i", challenges, headers: new Headers(initiator.headers), path: "/hub" });
      if (!answer.ok) throw answer.error;
      const input = i % 2 === 0 ? fuzz.mutate(answer.reply) : fuzz.randomBytes(LISTENER_PROOF_BYTES);
      const step = initiator.receive(input);
      if (step.status === "established") expect(Buffer.from(input).equals(Buffer.from(answer.reply))).toBe(true);
    }
  });

  test("hub frames, both directions: never throw; accepted frames are JSON objects with a known type", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} hub`);
    const valid = text.encode(JSON.stringify({ type: "pub", topic: "studio/cam1", data: { zoom: 2 }, origin: "app-1", seq: 3 }));
    for (let i = 0; i < RUNS; i++) {
      const input = i % 3 === 0 ? new TextDecoder().decode(fuzz.mutate(valid)) : i % 3 === 1 ? fuzz.jsonText() : fuzz.json();
      for (const parse of [parseToHubFrame, parseFromHubFrame]) {
        const result = parse(input);
        if (result.ok) expect(typeof result.frame.type).toBe("string");
        else expect(result.error.code).toBe("INVALID_FRAME");
      }
    }
  });

  test("JSON bodies (rpc, replication, wire JSON): refused with WIRE_JSON or parsed; the rpc server answers or closes, never throws", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} json`);
    const closed: string[] = [];
    const answered: Uint8Array[] = [];
    const connection = {
      peer: { machineId: "0123456789abcdef", publicKey: new Uint8Array(32), address: "fuzz" },
      open: true,
      send: (payload: Uint8Array) => (answered.push(payload), true),
      sendSealed: () => true,
      sendBulk: () => true,
      close: (_code?: number, reason?: string) => void closed.push(reason ?? ""),
    } satisfies SecureConnection;
    const server = rpcServer(connection, { echo: (params) => params });
    for (let i = 0; i < RUNS; i++) {
      const body = i % 2 === 0 ? text.encode(fuzz.jsonText()) : fuzz.mutate(text.encode(JSON.stringify({ id: 1, method: "echo", params: fuzz.json() })));
      const value = survives("readWireJson", body, () => readWireJson(body, { maxBytes: 70_000 }));
      if (value instanceof AppError) expect(value.code).toBe("WIRE_JSON");
      survives("rpc message", body, () => server.message(body));
      survives("replication request", body, () => replicateRequestSchema.safeParse(safeJson(new TextDecoder().decode(body))));
    }
    expect(closed.length + answered.length).toBeGreaterThan(0);
  });

  test("pairing frames, every shape: garbage, truncated, oversize, deep and wrong-typed ones are refused with PAIRING_FRAME and change nothing", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} pairing`);
    const mainId = "0123456789abcdef";
    const license = "server-with-failover";
    const shapes = [
      { type: "pair", name: "studio-main", license },
      { type: "accepted", name: "studio-backup", license },
      { type: "refused", code: "OTHER_MAIN", message: "studio-backup is set up as the backup of the main at 10.0.0.1, not of 10.0.0.9." },
      { type: "unpair" },
      { type: "unpaired" },
    ];
    // Each shape with a field of the wrong type, a value out of range, or no type at all.
    const wrong: unknown[] = [
      { type: "pair", name: 5, license }, { type: "pair", name: "m", license: "gold" }, { type: "pair", name: "x".repeat(65), license }, { type: "pair" },
      { type: "accepted", name: null, license }, { type: "refused", code: 1, message: "m" }, { type: "refused", code: "C", message: "m".repeat(401) },
      { type: "unpair!" }, { type: ["unpair"] }, { name: "studio-main", license }, [], null, "unpair", 1e308,
      { type: "pair", name: "m", license, padding: "x".repeat(MAX_PAIRING_FRAME_BYTES) },
      JSON.parse(`${"[".repeat(70)}${"]".repeat(70)}`),
    ];
    // The paired main itself sends them: even from the right machine, a bad frame may change nothing.
    const changes: string[] = [];
    const side: PairingSide = {
      name: () => "studio-backup", role: () => "backup", licenseDocument: () => null, vendorPublicKey: () => new Uint8Array(32), now: () => 0,
      peerPort: () => 7401, expectedMain: () => ({ host: "10.0.0.1", port: 7401 }), pairedWith: () => mainId, pairedKey: () => null,
      acceptMain: (peer) => void changes.push(`accept ${peer.peerId}`), dropMain: (id) => void changes.push(`drop ${id}`),
    };
    const service = new PairingService(side, secureDialer({ networkKey, machine: nacl.sign.keyPair() }), createLogger(() => "json", () => {}));
    const deliver = (input: Uint8Array): { closed: string | null; sent: number } => {
      const seen = { closed: null as string | null, sent: 0 };
      const connection = {
        peer: { machineId: mainId, publicKey: new Uint8Array(32), address: "10.0.0.1:7401" }, open: true,
        send: () => (seen.sent++, true), sendSealed: () => true, sendBulk: () => true,
        close: (code?: number) => void (seen.closed = String(code)),
      } satisfies SecureConnection;
      service.accept(connection).message(input);
      return seen;
    };
    const valid = shapes.map((shape) => text.encode(JSON.stringify(shape)));
    const inputs = [
      ...wrong.map((w) => text.encode(JSON.stringify(w))),
      ...valid.flatMap((v) => [v.subarray(0, v.length - 1), v.subarray(0, 1), new Uint8Array(0)]),
      new Uint8Array(MAX_PAIRING_FRAME_BYTES + 1).fill(0x20),
      ...Array.from({ length: RUNS }, (_, i) => {
        const roll = i % 4;
        if (roll === 0) return fuzz.mutate(fuzz.pick(valid));
        if (roll === 1) return text.encode(fuzz.jsonText());
        if (roll === 2) return fuzz.randomBytes(200);
        return text.encode(JSON.stringify({ ...fuzz.pick(shapes), [fuzz.pick(["type", "name", "license", "code", "message"])]: fuzz.json() }));
      }),
    ];
    let refused = 0;
    for (const input of inputs) {
      const parsed = survives("parsePairingFrame", input, () => parsePairingFrame(input, "fuzz"));
      if (!(parsed instanceof AppError)) {
        expect(pairingFrameSchema.safeParse(parsed).success).toBe(true);
        continue;
      }
      refused++;
      expect(parsed.code).toBe("PAIRING_FRAME");
      expect(parsed.message).toContain("not a pairing frame");
      const before = changes.length;
      const seen = deliver(input);
      expect(seen).toEqual({ closed: "4002", sent: 0 });
      expect(changes.length).toBe(before);
    }
    expect(refused).toBeGreaterThan(inputs.length / 2);
    // Every shape, intact, still parses: the fuzz refused what was broken, not everything.
    for (const v of valid) expect(pairingFrameSchema.safeParse(parsePairingFrame(v, "fuzz")).success).toBe(true);
  });

  test("the dialer's proof in the upgrade: random and mutated headers never pass and never throw", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} proof`);
    const machine = nacl.sign.keyPair();
    const challenges = new UpgradeChallenges(fingerprint(machine.publicKey), { now: () => 0 });
    const valid = new HandshakeInitiator({ networkKey, machine: nacl.sign.keyPair(), peerAddress: "l", path: "/hub", challenge: challenges.challenge() }).headers[PROOF_HEADER]!;
    for (let i = 0; i < RUNS; i++) {
      const value = i % 2 === 0 ? new TextDecoder().decode(fuzz.mutate(text.encode(valid))) : fuzz.string(240);
      const headers = new Headers();
      try {
        headers.set(PROOF_HEADER, value);
        if (i % 5 === 0) headers.set(FINGERPRINT_HEADER, fuzz.string(16));
      } catch {
        continue; // not a legal header value: it never reaches the check
      }
      const verdict = answerUpgrade({ networkKey, machine, peerAddress: "fuzz", challenges, headers, path: "/hub" });
      if (verdict.ok) expect(value).toBe(valid);
    }
  });

  test("DNS-SD TXT records: never throw", () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} txt`);
    for (let i = 0; i < RUNS; i++) {
      const raw = fuzz.json();
      const result = survives("parseTxt", raw, () => parseTxt(raw));
      expect(result).toBeDefined();
    }
  });
});

describe("setup forms under fuzz", () => {
  let node: MachineNode | null = null;
  afterAll(async () => {
    await node?.stop();
  });

  test("random form posts are answered 200 or 400, never 500, and never change the role", async () => {
    const fuzz = new Fuzz(`${FUZZ_SEED} forms`);
    node = (await startNode()).node;
    for (let i = 0; i < 60; i++) {
      const body = new FormData();
      for (let f = fuzz.int(4); f > 0; f--) {
        const name = fuzz.pick(["role", "main", "backup", "action", "key", "license", "licenseFile", fuzz.string(8)]);
        if (name === "licenseFile" && fuzz.next() < 0.5) body.append(name, new File([new Uint8Array(fuzz.randomBytes(300))], fuzz.string(10) || "f"));
        else body.append(name, fuzz.next() < 0.2 ? fuzz.pick(["client", "backup", "paste", "generate", "10.0.0.1:7401"]) : fuzz.string(60));
      }
      const path = fuzz.pick(["/setup/role", "/setup/key", "/setup/license", "/failover/switch-back"]);
      const response = await node.app.request(`http://localhost${path}`, { method: "POST", body, headers: { origin: "http://localhost" } });
      expect([200, 400, 409]).toContain(response.status);
    }
    expect(node.status().role).toBe("standalone");
  });
});
