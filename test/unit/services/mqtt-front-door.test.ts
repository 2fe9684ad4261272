/**
 * The MQTT front door against a real MQTT client (mqtt.js) and a real HubCore
 * behind a wire the test pumps by hand, so "QoS 1 is acknowledged only once
 * the hub has it" is checked step by step.
 */
import { afterEach, describe, expect, test } from "bun:test";
import mqtt, { type MqttClient } from "mqtt";
import type { FromHubFrame } from "../../../src/hub/frames.ts";
import { createLogger } from "../../../src/log.ts";
import { MqttFrontDoor } from "../../../src/services/mqtt-front-door.ts";
import { dataFromPayload, payloadFromData } from "../../../src/services/mqtt-payload.ts";
import { FakeHubServer, FakeNode, Wire, settle } from "../hub/hub-harness.ts";
import { waitFor } from "../../support/wait-for.ts";

const doors: MqttFrontDoor[] = [];
const clients: MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  for (const d of doors.splice(0)) await d.stop();
});

/** A node with the front door as its app "mqtt1", wired to an active hub; `pump()` lets frames cross. */
async function nodeWithDoor(options: { password?: string } = {}) {
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
      return { id: "mqtt1", send: (frame) => node.uplink.fromApp("mqtt1", frame, 0), close: () => node.uplink.appGone("mqtt1") };
    },
    backpressure: () => node.uplink.waitingFrames > 0,
    log: createLogger(() => "json", () => {}),
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
