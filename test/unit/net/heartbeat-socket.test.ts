// Network rule: these tests send traffic to 127.0.0.1 only, on ports the kernel picks.
import { afterEach, describe, expect, test } from "bun:test";
import { AppError } from "../../../src/core/errors.ts";
import { deriveHeartbeatKey, seededRandom } from "../../../src/net/crypto.ts";
import { FrameKind, sealEnvelope } from "../../../src/net/envelope.ts";
import { HeartbeatCodec, type Heartbeat } from "../../../src/net/heartbeat.ts";
import { HeartbeatSocket, type HeartbeatDrop, type HeartbeatSocketOptions, type UdpEndpoint } from "../../../src/net/heartbeat-socket.ts";
import { waitFor } from "../../support/wait-for.ts";

const LOOPBACK = "127.0.0.1";
const random = seededRandom("heartbeat socket test");
const networkKey = random(32);

function heartbeat(overrides: Partial<Heartbeat> & { seq?: number; boot?: string } = {}): Heartbeat {
  const { seq = 1, boot = "0011223344556677", ...rest } = overrides;
  return {
    id: "00000000000000aa",
    role: "client",
    state: "follow-main",
    epoch: 1,
    activeEpoch: 1,
    msSinceHeardBackup: 20,
    condition: null,
    syncProgress: null,
    stamp: { boot, seq, sentAt: 1000 },
    echo: null,
    echoHeldMs: null,
    challenge: false,
    showFileRevision: 0,
    msSinceHeardMain: 40,
    pairedWith: null,
    lanes: null,
    hubCopied: null,
    name: "Control 1",
    ...rest,
  };
}

/** Collects callback events; `next()` resolves on the next one (no sleeps: the test timeout is the deadline). */
class Events<T> {
  private readonly queued: T[] = [];
  private waiting: ((value: T) => void) | null = null;
  readonly push = (value: T): void => {
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = null;
      resolve(value);
    } else this.queued.push(value);
  };
  next(): Promise<T> {
    const value = this.queued.shift();
    if (value !== undefined) return Promise.resolve(value);
    return new Promise((resolve) => (this.waiting = resolve));
  }
}

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const socket of opened.splice(0)) socket.close();
});

async function bindSocket(overrides: Partial<HeartbeatSocketOptions> = {}) {
  const heartbeats = new Events<{ heartbeat: Heartbeat; from: UdpEndpoint }>();
  const drops = new Events<HeartbeatDrop>();
  const socket = await HeartbeatSocket.bind({
    host: LOOPBACK,
    port: 0,
    networkKey,
    random,
    onHeartbeat: (hb, from) => heartbeats.push({ heartbeat: hb, from }),
    onDrop: drops.push,
    ...overrides,
  });
  opened.push(socket);
  return { socket, heartbeats, drops, endpoint: { host: LOOPBACK, port: socket.port } };
}

/** A plain UDP socket that sends raw bytes, standing in for a stranger or an attacker on the network. */
async function rawSender() {
  const socket = await Bun.udpSocket({ hostname: LOOPBACK, port: 0 });
  opened.push(socket);
  return (bytes: Uint8Array, to: UdpEndpoint) => socket.send(bytes, to.port, to.host);
}

describe("HeartbeatSocket on 127.0.0.1", () => {
  test("binds port 0 and exposes the real port", async () => {
    const { socket } = await bindSocket();
    expect(socket.port).toBeGreaterThan(0);
  });

  test("a port in use is refused with a message naming the setting", async () => {
    const { socket } = await bindSocket();
    const error = await bindSocket({ port: socket.port }).catch((e: unknown) => e as AppError);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("PORT_IN_USE");
    expect((error as AppError).message).toStartWith(`127.0.0.1:${socket.port} (--peer-listen) is already in use`);
  });

  test("two sockets exchange heartbeats, with echo and the sender's address", async () => {
    const a = await bindSocket();
    const b = await bindSocket();
    expect(a.socket.send(heartbeat({ id: "000000000000000a", seq: 1 }), [b.endpoint])).toBe(1);
    const atB = await b.heartbeats.next();
    expect(atB.heartbeat.id).toBe("000000000000000a");
    expect(atB.from).toEqual(a.endpoint);

    const echo = atB.heartbeat.stamp;
    b.socket.send(heartbeat({ id: "000000000000000b", seq: 7, echo }), [atB.from]);
    const atA = await a.heartbeats.next();
    expect(atA.heartbeat.echo).toEqual(echo);
    expect(a.socket.stats.accepted).toBe(1);
    expect(b.socket.stats.accepted).toBe(1);
  });

  test("garbage, other versions, foreign keys and bad bodies are counted and dropped; the socket keeps working", async () => {
    const receiver = await bindSocket();
    const send = await rawSender();
    const foreign = new HeartbeatCodec(random(32), random).encode(heartbeat());
    const otherVersion = new HeartbeatCodec(networkKey, random).encode(heartbeat());
    otherVersion[0] = 2;
    const datagrams: [Uint8Array, HeartbeatDrop["reason"]][] = [
      [new TextEncoder().encode("hello?"), "malformed"],
      [new Uint8Array([1, 3, 0]), "malformed"],
      [new Uint8Array(1500).fill(1), "malformed"],
      [otherVersion, "version"],
      [foreign, "foreign"],
      [sealEnvelope(deriveHeartbeatKey(networkKey), FrameKind.heartbeat, random(24), new TextEncoder().encode('{"id":"x"}')), "invalid"],
    ];
    for (const [bytes, reason] of datagrams) {
      send(bytes, receiver.endpoint);
      expect((await receiver.drops.next()).reason).toBe(reason);
    }
    send(new HeartbeatCodec(networkKey, random).encode(heartbeat({ seq: 2 })), receiver.endpoint);
    expect((await receiver.heartbeats.next()).heartbeat.stamp.seq).toBe(2);
    expect(receiver.socket.stats).toMatchObject({
      received: 7,
      accepted: 1,
      dropped: { malformed: 3, version: 1, foreign: 1, invalid: 1 },
    });
  });

  test("a captured datagram replayed later is handed on as it is: freshness is the runner's judgement", async () => {
    const receiver = await bindSocket();
    const send = await rawSender();
    const codec = new HeartbeatCodec(networkKey, random);
    const captured = codec.encode(heartbeat({ seq: 10 }));
    send(captured, receiver.endpoint);
    await receiver.heartbeats.next();
    send(captured, receiver.endpoint);
    // The socket cannot know what is fresh; the failover runner refuses it (test/unit/core/freshness.test.ts).
    expect((await receiver.heartbeats.next()).heartbeat.stamp.seq).toBe(10);
  });

  test("sending to a closed port (a dead peer) is counted, never thrown, and does not end the process", async () => {
    const errors = new Events<{ error: unknown; target: UdpEndpoint | null }>();
    const sender = await bindSocket({ onSendError: (error, target) => errors.push({ error, target }) });
    const gone = await bindSocket();
    // Closing ends the socket's thread: awaited, so the port is surely closed when the heartbeat reaches it.
    await gone.socket.close();
    // The kernel's refusal comes back later, through the socket's error callback (target unknown then).
    expect(sender.socket.send(heartbeat({ seq: 1 }), [gone.endpoint])).toBe(1);
    const later = await errors.next();
    expect([(later.error as { code?: string }).code, later.target]).toEqual(["ECONNREFUSED", null]);
    expect(sender.socket.stats.socketErrors).toBe(1);
    // A host name is refused at once by Bun's UDP send: counted, reported, not thrown.
    expect(sender.socket.send(heartbeat({ seq: 2 }), [{ host: "localhost", port: gone.endpoint.port }])).toBe(0);
    expect((await errors.next()).target).toEqual({ host: "localhost", port: gone.endpoint.port });
    expect(sender.socket.stats.sendFailures).toBe(1);
  });

  test("a throwing onHeartbeat is reported, not thrown into the socket", async () => {
    const receiver = await bindSocket({
      onHeartbeat: () => {
        throw new Error("bug in the runner");
      },
    });
    const sender = await bindSocket();
    sender.socket.send(heartbeat(), [receiver.endpoint]);
    const drop = await receiver.drops.next();
    expect(drop.reason).toBe("handler-error");
    expect((drop.error as Error).message).toBe("bug in the runner");
    expect(receiver.socket.stats.handlerErrors).toBe(1);
  });
});

test("a dead peer's ICMP refusal does not swallow the next heartbeat to a live peer", async () => {
  const key = new Uint8Array(32).fill(9);
  const received: number[] = [];
  const live = await HeartbeatSocket.bind({ host: "127.0.0.1", port: 0, networkKey: key, onHeartbeat: (hb) => received.push(hb.stamp.seq) });
  const sender = await HeartbeatSocket.bind({ host: "127.0.0.1", port: 0, networkKey: key, onHeartbeat: () => {} });
  try {
    for (let seq = 1; seq <= 10; seq++) {
      // Back to back, as a runner sends to the (dead) main and then the backup in one tick.
      sender.send(heartbeat({ seq }), [{ host: "127.0.0.1", port: 9 }]);
      expect(sender.send(heartbeat({ seq }), [{ host: "127.0.0.1", port: live.port }])).toBe(1);
      await Bun.sleep(2);
    }
    await waitFor("all ten heartbeats", () => received.length === 10);
  } finally {
    live.close();
    sender.close();
  }
});
