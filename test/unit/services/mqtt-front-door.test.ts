/**
 * The MQTT front door against a real MQTT client (mqtt.js) and a real HubCore
 * behind a wire the test pumps by hand, so "QoS 1 is acknowledged only once
 * the hub has it" is checked step by step.
 */
import { afterEach, describe, expect, test } from "bun:test";
import mqtt, { type MqttClient } from "mqtt";
import { MAX_DATA_BYTES, SMALL_TEXT_BYTES, jsonByteLength, type FromHubFrame } from "../../../src/hub/frames.ts";
import { createLogger } from "../../../src/log.ts";
import { MqttFrontDoor } from "../../../src/services/mqtt-front-door.ts";
import { dataFromPayload, dataMeasured, payloadFromData } from "../../../src/services/mqtt-payload.ts";
import { DEFAULT_MQTT_DOOR_LIMITS, MQTT_MAX_PACKET_BYTES, type MqttDoorLimits } from "../../../src/services/mqtt-door-limits.ts";
import mqttPacket from "mqtt-packet";
import { connect as tcpConnect, type Socket } from "node:net";
import { FakeHubServer, FakeNode, Wire, settle } from "../hub/hub-harness.ts";
import { waitFor } from "../../support/wait-for.ts";

const doors: MqttFrontDoor[] = [];
const clients: MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  for (const d of doors.splice(0)) await d.stop();
});

/** A node with the front door as its app "mqtt1", wired to an active hub; `pump()` lets frames cross. */
async function nodeWithDoor(options: { password?: string; limits?: Partial<MqttDoorLimits>; maxFilters?: number; lines?: string[] } = {}) {
  const hub = new FakeHubServer({ epoch: 1, writable: true });
  let door: MqttFrontDoor | null = null;
  let deliverToDoor: (frame: FromHubFrame) => void = () => {};
  const node = new FakeNode("n", {
    deliver: (frame, apps) => {
      if (apps.includes("mqtt1")) deliverToDoor(frame);
    },
  });
  const wire = new Wire(node, hub);
  door = await MqttFrontDoor.start({
    listen: { host: "127.0.0.1", port: 0 },
    password: options.password ?? null,
    attach: (deliver) => {
      deliverToDoor = deliver;
      return { id: "mqtt1", send: (frame, measured) => node.uplink.fromApp("mqtt1", frame, 0, measured), close: () => node.uplink.appGone("mqtt1") };
    },
    backpressure: () => node.uplink.waitingFrames > 0,
    log: createLogger(() => "json", (line) => options.lines?.push(line)),
    limits: { ...DEFAULT_MQTT_DOOR_LIMITS, ...options.limits },
    ...(options.maxFilters !== undefined ? { maxFilters: options.maxFilters } : {}),
  });
  doors.push(door);
  const port = Number(door.address.split(":").at(-1));
  return { hub, node, wire, door, port, pump: () => settle(wire) };
}

async function connect(port: number, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...options });
  clients.push(client);
  return client;
}

describe("payloads", () => {
  test.each([
    ['{"zoom":2}', { zoom: 2 }],
    ["hello", "hello"],
    ["42", 42],
    ["", ""],
  ])("%p is hub data %p and goes back out as the same text", (text, data) => {
    expect(dataFromPayload("t", new TextEncoder().encode(text))).toEqual(data);
    expect(payloadFromData(data).toString()).toBe(text);
  });

  test("JSON nested deeper than the hub carries is refused before it is parsed", () => {
    expect(() => dataFromPayload("cam/deep", new TextEncoder().encode("[".repeat(40_000)))).toThrow("nests deeper than the 32 levels");
  });

  test("a payload counts as measured only up to SMALL_TEXT_BYTES, where its data's JSON cannot pass 64 KiB however it grows", () => {
    // Text whose escapes grow it 6 times, and the numbers that grow the most when written out ("1e20": 21 digits).
    const worst = ["\u0001".repeat(SMALL_TEXT_BYTES), `[${Array.from({ length: Math.floor((SMALL_TEXT_BYTES - 1) / 5) }, () => "1e20").join(",")}]`];
    for (const text of worst) {
      const payload = new TextEncoder().encode(text);
      expect(dataMeasured(payload)).toBe(true);
      expect(jsonByteLength(dataFromPayload("t", payload))).toBeLessThanOrEqual(MAX_DATA_BYTES);
    }
    expect(dataMeasured(new Uint8Array(SMALL_TEXT_BYTES + 1))).toBe(false);
  });

  test("bytes that are not UTF-8 are refused with a message saying what to do", () => {
    expect(() => dataFromPayload("cam/raw", new Uint8Array([0xff, 0xfe]))).toThrow('The MQTT message on "cam/raw" is not UTF-8 text');
  });
});

describe("the MQTT front door", () => {
  test("a QoS 1 publish is acknowledged only once the hub acked it, and reaches subscribers through the hub, once", async () => {
    const { wire, port, pump } = await nodeWithDoor();
    const subscriber = await connect(port);
    const received: string[] = [];
    subscriber.on("message", (topic, payload) => received.push(`${topic} ${payload}`));
    await subscriber.subscribeAsync("studio/#", { qos: 1 });
    const everything = await connect(port);
    const all: string[] = [];
    everything.on("message", (topic) => all.push(topic));
    await everything.subscribeAsync("#");
    await waitFor("the node's upstream subscriptions", () => wire.pendingUp().filter((f) => f.type === "sub").length === 2);
    pump();
    const publisher = await connect(port);
    let acked = false;
    const publishing = publisher.publishAsync("studio/cam1", '{"zoom":2}', { qos: 1 }).then(() => (acked = true));
    await waitFor("the pub on its way to the hub", () => wire.pendingUp().some((f) => f.type === "pub"));
    await Bun.sleep(50);
    expect(acked).toBe(false); // the hub has not seen it yet
    wire.pumpUp();
    await Bun.sleep(50);
    expect(acked).toBe(false); // the hub has it, its ack is still on the way back
    wire.pumpDown();
    await publishing;
    await waitFor("the message at the subscriber", () => received.length === 1);
    await Bun.sleep(50);
    expect(received).toEqual(['studio/cam1 {"zoom":2}']);
    expect(all).toEqual(["studio/cam1"]); // not also the copy aedes routed away from its subscribers
  });

  test("a QoS 1 publish in flight when the main dies waits, its client connected (pings answered), through a refusal as not active, until the next active hub acks it", async () => {
    const { node, wire, port, pump } = await nodeWithDoor();
    const subscriber = await connect(port);
    const received: string[] = [];
    subscriber.on("message", (topic, payload) => received.push(`${topic} ${payload}`));
    await subscriber.subscribeAsync("track/#", { qos: 1 });
    await waitFor("the node's upstream subscription", () => wire.pendingUp().some((f) => f.type === "sub"));
    pump();
    // Keepalive 1 s: aedes drops a client it hears nothing from for 1.5 s, mqtt.js one whose ping goes unanswered.
    const publisher = await connect(port, { keepalive: 1 });
    let closes = 0;
    for (const client of [subscriber, publisher]) client.on("close", () => closes++);
    let acked = false;
    const publishing = publisher.publishAsync("track/pos", "1", { qos: 1 }).then(() => (acked = true));
    publishing.catch(() => {}); // a close rejects it before it is awaited: the expectations below say what went wrong
    await waitFor("the pub on its way to the main", () => wire.pendingUp().some((f) => f.type === "pub"));
    wire.pumpUp();
    wire.cut(); // kill -9: the main took it, nothing came back
    // A server that is not active (yet) refuses it: the node keeps it for the active one.
    const standby = new FakeHubServer({ epoch: 1, writable: false });
    const toStandby = new Wire(node, standby);
    settle(toStandby);
    expect(node.uplink.needsReattach).toBe(true);
    toStandby.cut();
    await Bun.sleep(2000); // longer than both keepalive deadlines: the front door still answers pings while a publish waits
    expect(acked).toBe(false);
    expect(closes).toBe(0);
    const backup = new FakeHubServer({ epoch: 2, writable: true });
    settle(new Wire(node, backup));
    await publishing;
    await waitFor("the message at the subscriber", () => received.length === 1);
    await Bun.sleep(50);
    expect(received).toEqual(["track/pos 1"]);
    expect(closes).toBe(0);
  });

  test("retained publishes are the hub's retained state: set, read back by a later subscriber, deleted by an empty payload", async () => {
    const { hub, port, pump } = await nodeWithDoor();
    const publisher = await connect(port);
    const done = publisher.publishAsync("scene/current", '"news"', { qos: 1, retain: true });
    await waitFor("the set", () => {
      pump();
      return hub.hub.retainedEntry("scene/current") !== undefined;
    });
    await done;
    expect(hub.hub.retainedEntry("scene/current")?.value).toBe("news");
    const later = await connect(port);
    const got: { topic: string; payload: string; retain: boolean }[] = [];
    later.on("message", (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
    await later.subscribeAsync("scene/#");
    await waitFor("the retained value", () => {
      pump();
      return got.length > 0;
    });
    expect(got[0]).toMatchObject({ topic: "scene/current", payload: "news" });
    const deleting = publisher.publishAsync("scene/current", "", { qos: 1, retain: true });
    await waitFor("the delete", () => {
      pump();
      return hub.hub.retainedEntry("scene/current") === undefined || hub.hub.retainedEntry("scene/current")?.value === null;
    });
    await deleting;
  });

  test("what the hub delivers in one turn goes to a subscriber in order, in one socket write rather than one per packet", async () => {
    const { node, port, door } = await nodeWithDoor();
    const client = await connect(port);
    const got: string[] = [];
    client.on("message", (_topic, payload) => got.push(payload.toString()));
    await client.subscribeAsync("t/#");
    await waitFor("subscribed upstream", () => node.uplink.subscriptions().includes("t/#"));
    // The door's end of the subscriber's connection: every write the stream hands down to the socket.
    const [socket] = (door as unknown as { sockets: Set<Socket & { _write: Function; _writev: Function }> }).sockets;
    let writes = 0;
    for (const name of ["_write", "_writev"] as const) {
      const original = socket![name].bind(socket);
      socket![name] = (...args: unknown[]) => (writes++, original(...args));
    }
    for (let seq = 1; seq <= 200; seq++) node.uplink.onFrameFromServer({ type: "msg", topic: "t/a", data: seq, from: "ffffffffffffffff", seq });
    await waitFor("every message at the subscriber", () => got.length === 200);
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => String(i + 1)));
    expect(writes).toBeLessThan(20);
  });

  test("a payload short enough is not measured again; a longer one whose JSON is over 64 KiB is refused, its client closed, the reason logged", async () => {
    const lines: string[] = [];
    const { wire, port, pump } = await nodeWithDoor({ lines });
    const publisher = await connect(port);
    // The most a text's JSON can grow: a control character is 6 bytes escaped ("\u0001").
    await publisher.publishAsync("t/short", "\u0001".repeat(SMALL_TEXT_BYTES), { qos: 0 });
    await waitFor("the short one on its way to the hub", () => wire.pendingUp().some((f) => f.type === "pub"));
    const short = wire.pendingUp().find((f) => f.type === "pub");
    expect(short?.type === "pub" && jsonByteLength(short.data)).toBeLessThanOrEqual(MAX_DATA_BYTES);
    pump();
    const closed = new Promise<void>((resolve) => publisher.once("close", () => resolve()));
    publisher.publish("t/long", "\u0001".repeat(SMALL_TEXT_BYTES * 2), { qos: 1 });
    await closed;
    expect(wire.pendingUp().filter((f) => f.type === "pub")).toEqual([]);
    expect(lines.some((line) => line.includes("MQTT publish refused by the hub") && line.includes("at most 64 KiB of JSON"))).toBe(true);
  });

  test("publishing to the front door's own $understudy/ topics is refused; gaps are published on $understudy/gap", async () => {
    const { node, port } = await nodeWithDoor();
    const client = await connect(port);
    const gaps: string[] = [];
    client.on("message", (topic, payload) => gaps.push(`${topic} ${payload}`));
    await client.subscribeAsync(["$understudy/gap", "t/#"]);
    await waitFor("subscribed upstream", () => node.uplink.subscriptions().includes("t/#"));
    node.uplink.onFrameFromServer({ type: "gap", missed: 3, message: "3 messages were dropped" });
    await waitFor("the gap notice", () => gaps.length === 1);
    expect(JSON.parse(gaps[0]!.slice("$understudy/gap ".length))).toEqual({ missed: 3, message: "3 messages were dropped" });
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    client.publish("$understudy/gap", "fake");
    await closed; // MQTT 3.1.1 has no negative acknowledgement: the client is disconnected
  });

  test("stopping releases the port at once, with a client still connected (a role change re-opens it)", async () => {
    const { door, port } = await nodeWithDoor();
    await connect(port);
    doors.splice(doors.indexOf(door), 1);
    const stopping = door.stop();
    const again = await MqttFrontDoor.start({
      listen: { host: "127.0.0.1", port },
      password: null,
      attach: () => ({ id: "x", send() {}, close() {} }),
      backpressure: () => false,
      log: createLogger(() => "json", () => {}),
    });
    doors.push(again);
    await stopping;
    expect(again.address).toBe(`127.0.0.1:${port}`);
  });

  test("with a password, a client without it is refused", async () => {
    const { port } = await nodeWithDoor({ password: "correct horse" });
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, password: "wrong", username: "x" })).rejects.toThrow();
    const ok = await connect(port, { username: "any", password: "correct horse" });
    expect(ok.connected).toBe(true);
  });
});

/** A raw TCP connection to the door: what an attacker's script sends, byte for byte. */
async function rawSocket(port: number): Promise<{ socket: Socket; closed: Promise<void>; received: Buffer[] }> {
  const socket = tcpConnect({ host: "127.0.0.1", port });
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, closed, received };
}

const connectPacket = (clientId: string) => mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clientId, clean: true, keepalive: 0 });
/** The fixed header of a packet claiming `length` bytes, and nothing of its body. */
function claimHeader(first: number, length: number): Buffer {
  const bytes = [first];
  do {
    let digit = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) digit |= 0x80;
    bytes.push(digit);
  } while (length > 0);
  return Buffer.from(bytes);
}

describe("what a connection may cost the node", () => {
  test("a CONNECT claiming 200 MiB is refused on its length, before its body is read", async () => {
    const { port, door } = await nodeWithDoor();
    const { socket, closed } = await rawSocket(port);
    socket.write(claimHeader(0x10, 200 * 1024 * 1024));
    socket.write(Buffer.alloc(64 * 1024));
    await closed;
    await waitFor("the slot given back", () => door.connections === 0);
  });

  test("after CONNECT, a PUBLISH claiming more than the limit closes the client; one within it is published", async () => {
    const { port, pump, hub } = await nodeWithDoor();
    const { socket, closed, received } = await rawSocket(port);
    socket.write(connectPacket("raw"));
    await waitFor("CONNACK", () => received.length > 0);
    socket.write(claimHeader(0x30, MQTT_MAX_PACKET_BYTES + 1));
    await closed;
    const ok = await connect(port);
    const acked = ok.publishAsync("studio/fits", "x".repeat(60 * 1024), { qos: 1 });
    await waitFor("the publish at the hub", () => {
      pump();
      return (hub.hub.received.pub ?? 0) > 0;
    });
    await acked;
  });

  test("a connection that sends no CONNECT is closed after the CONNECT timeout", async () => {
    const { port, door } = await nodeWithDoor({ limits: { connectTimeoutMs: 100 } });
    const { closed } = await rawSocket(port);
    await closed;
    await waitFor("the slot given back", () => door.connections === 0);
  });

  test("connections are capped per source address: the next one is closed at once, and a slot comes back when one closes", async () => {
    const { port } = await nodeWithDoor({ limits: { perSource: 2 } });
    const first = await rawSocket(port);
    await rawSocket(port);
    const third = await rawSocket(port);
    await third.closed;
    first.socket.destroy();
    await first.closed;
    await waitFor("a fourth connection accepted", async () => {
      const fourth = await rawSocket(port);
      fourth.socket.write(connectPacket("fourth"));
      await Promise.race([fourth.closed, waitFor("CONNACK", () => fourth.received.length > 0)]);
      fourth.socket.destroy();
      return fourth.received.length > 0;
    });
  });

  test("a subscriber that never reads is disconnected; publishers on the node go on", async () => {
    const lines: string[] = [];
    const { port, wire, door } = await nodeWithDoor({ limits: { maxBufferedBytes: 64 * 1024 }, lines });
    const pumping = setInterval(() => settle(wire), 1);
    // A separate process, stopped once subscribed: the kernel's buffers fill and then the door's.
    const hello = Buffer.concat([connectPacket("slow"), mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "studio/#", qos: 0 }] })]);
    const slow = Bun.spawn([process.execPath, "-e", SLOW_SUBSCRIBER, String(port), hello.toString("hex")], { stdout: "pipe", stderr: "inherit" });
    try {
      await waitFor("the slow subscriber subscribed", async () => (await slow.stdout.getReader().read()).value !== undefined);
      slow.kill("SIGSTOP");
      const publisher = await connect(port);
      const payload = "x".repeat(32 * 1024);
      let acked = 0;
      while (acked < 1_000 && !lines.some((l) => l.includes("does not read"))) {
        await publisher.publishAsync("studio/frame", payload, { qos: 1 });
        acked += 1;
      }
      expect(lines.filter((l) => l.includes("does not read"))).toHaveLength(1);
      await waitFor("the slow subscriber's connection closed", () => door.connections === 1);
      await publisher.publishAsync("studio/frame", "after", { qos: 1 });
    } finally {
      clearInterval(pumping);
      slow.kill("SIGKILL");
    }
  }, 30_000);

  test("subscriptions past the node's share are refused in the SUBACK (0x80), said once in the log", async () => {
    const lines: string[] = [];
    const { port } = await nodeWithDoor({ maxFilters: 3, lines });
    const client = await connect(port);
    // mqtt.js turns a SUBACK with 0x80 into an error carrying the packet.
    const refused = (await client.subscribeAsync(["a/1", "a/2", "a/3", "a/4", "a/5", "a/6"]).catch((error: { packet?: { granted: number[] } }) => error)) as { packet?: { granted: number[] } };
    expect(refused.packet?.granted).toEqual([0, 0, 0, 128, 128, 128]);
    await client.subscribeAsync(["a/1"]);
    expect(lines.filter((l) => l.includes("MQTT subscriptions refused"))).toHaveLength(1);
  });

  test("with a password, a second client with the same id but without the password does not take the session over", async () => {
    const { port } = await nodeWithDoor({ password: "door secret 1" });
    const first = await connect(port, { clientId: "engine-1", username: "u", password: "door secret 1" });
    await expect(connect(port, { clientId: "engine-1", username: "u", password: "wrong one!" })).rejects.toThrow();
    await first.publishAsync("studio/still", "here", { qos: 0 });
    expect(first.connected).toBe(true);
  });
});

/** Connects, subscribes (argv: port, then the CONNECT and SUBSCRIBE packets in hex), says "subscribed" on stdout; stopped, it reads nothing more. */
const SLOW_SUBSCRIBER = `
const net = require("node:net");
const [port, hello] = process.argv.slice(-2);
const socket = net.connect({ host: "127.0.0.1", port: Number(port) }, () => socket.write(Buffer.from(hello, "hex")));
let said = false;
socket.on("data", (chunk) => { if (!said && chunk.includes(0x90)) { said = true; process.stdout.write("subscribed\\n"); } });
`;
