/**
 * The hub bench's three ways to carry a message (hub.ts), shared with its paced publisher
 * (paced-publisher.ts, a process of its own): understudy's sealed /app path, and an MQTT front
 * door (a node's or mosquitto's). Each gives subscribers that record what arrives and publishers
 * with backpressure.
 */
import mqtt, { type MqttClient } from "mqtt";
import nacl from "tweetnacl";
import { encodeFrame, parseFromHubFrame, type FromHubFrame, type ToHubFrame } from "../../src/hub/frames.ts";
import { broadcastEpoch, openBroadcast } from "../../src/net/broadcast.ts";
import { deriveBroadcastKey } from "../../src/net/crypto.ts";
import { FrameBatcher, splitFrames } from "../../src/net/frame-batch.ts";
import { connectSecure, type SecureConnection } from "../../src/net/secure-socket.ts";

/** A bench message: seq 0 is a warm-up (proves the subscription live), t 0 carries no timestamp. */
export type Body = { seq: number; t: number; pad: string };
/** `sentAt`: each timed message's send time (wall clock), beside its latency. */
export type Receiver = { seqs: number[]; latencies: number[]; sentAt: number[]; warmed: boolean };
export type Publisher = {
  /** Resolves when there is room again (backpressure); sends stay in call order. */
  send(topic: string, body: Body): void | Promise<void>;
  close(): void;
  /** Gone for good: a workload stops rather than wait for what can never be sent. */
  lost?(): boolean;
};
/** How a publisher in another process reaches the same door (paced-publisher.ts). */
export type PublishVia = { kind: "sealed"; address: string; keyFile: string } | { kind: "mqtt"; port: number };
export type Transport = {
  name: string;
  /** A subscriber to `filter`; every message's seq and latency go into the receiver. */
  subscribe(filter: string, into: Receiver): Promise<() => void>;
  publisher(): Promise<Publisher>;
  via: PublishVia;
};

/** Unacknowledged messages a sealed publisher has out at most (as `understudy pub` keeps a window). */
export const WINDOW = 1000;

/** Milliseconds on the system clock with the monotonic clock's resolution: comparable between processes on one machine. */
export const wallNow = () => performance.timeOrigin + performance.now();

export const newReceiver = (): Receiver => ({ seqs: [], latencies: [], sentAt: [], warmed: false });

export function record(into: Receiver, body: { seq: number; t: number }) {
  if (body.seq === 0) {
    into.warmed = true;
    return;
  }
  into.seqs.push(body.seq);
  if (body.t > 0) {
    into.latencies.push(wallNow() - body.t);
    into.sentAt.push(body.t);
  }
}

async function sealedApp(networkKey: Uint8Array, address: string, onFrame: (frame: FromHubFrame) => void): Promise<{ send(frame: ToHubFrame): void; connection: SecureConnection }> {
  const onPayload = (payload: Uint8Array) => {
    for (const text of splitFrames(payload)) {
      const parsed = parseFromHubFrame(text);
      if (parsed.ok) onFrame(parsed.frame);
    }
  };
  const keys = new Map<number, ReturnType<typeof deriveBroadcastKey>>();
  const connection = await connectSecure(address, "/app", { networkKey, machine: nacl.sign.keyPair() }, () => ({
    message: onPayload,
    broadcast: (frame) => {
      const epoch = broadcastEpoch(frame, address);
      if (!keys.has(epoch)) keys.set(epoch, deriveBroadcastKey(networkKey, epoch));
      onPayload(openBroadcast(keys.get(epoch)!, frame, address));
    },
    close() {},
  }));
  // Batched like understudy pub does (frame-batch.ts): one seal and one write per batch of frames.
  const batch = new FrameBatcher((payload) => connection.send(payload));
  const send = (frame: ToHubFrame) => batch.push(encodeFrame(frame));
  send({ type: "hello", id: `bench-${crypto.randomUUID().slice(0, 8)}`, name: "bench", kind: "app" });
  return { send, connection };
}

/** A local app on client P's /app -> main -> a local app on client S's /app. */
export function sealedTransport(networkKey: Uint8Array, keyFile: string, pubAddress: string, subAddress: string): Transport {
  return {
    name: "sealed (client -> main -> client)",
    via: { kind: "sealed", address: pubAddress, keyFile },
    async subscribe(filter, into) {
      const app = await sealedApp(networkKey, subAddress, (frame) => {
        if (frame.type === "msg") record(into, frame.data as { seq: number; t: number });
      });
      app.send({ type: "sub", filter });
      return () => app.connection.close();
    },
    async publisher() {
      let acked = 0;
      const origin = `bench-${crypto.randomUUID().slice(0, 8)}`;
      let seq = 0;
      // Sends past the window, oldest first: released as acks make room, so order holds however many wait.
      const queued: { topic: string; body: Body; sent: () => void }[] = [];
      const publish = (topic: string, body: Body) => app.send({ type: "pub", topic, data: body, origin, seq: ++seq });
      const app = await sealedApp(networkKey, pubAddress, (frame) => {
        if (frame.type === "ack" && frame.origin === origin) {
          acked = Math.max(acked, frame.seq);
          while (queued.length > 0 && seq - acked < WINDOW) {
            const next = queued.shift()!;
            publish(next.topic, next.body);
            next.sent();
          }
        } else if (frame.type === "error") console.error(`bench hub: publish refused: ${frame.code} ${frame.message}`);
      });
      return {
        send(topic, body) {
          if (queued.length > 0 || seq - acked >= WINDOW) return new Promise<void>((sent) => queued.push({ topic, body, sent }));
          publish(topic, body);
        },
        close: () => app.connection.close(),
      };
    },
  };
}

/** mqtt.js publishing to one MQTT port and subscribing on another (the same for one broker). */
export function mqttTransport(name: string, pubPort: number, subPort: number): Transport {
  const connect = (p: number) => mqtt.connectAsync(`mqtt://127.0.0.1:${p}`, { reconnectPeriod: 0, protocolVersion: 4 });
  return {
    name,
    via: { kind: "mqtt", port: pubPort },
    async subscribe(filter, into) {
      const client = await connect(subPort);
      client.on("message", (_topic, payload) => record(into, JSON.parse(payload.toString()) as { seq: number; t: number }));
      await client.subscribeAsync(filter, { qos: 0 });
      return () => client.end(true);
    },
    async publisher() {
      const client: MqttClient = await connect(pubPort);
      // A publisher the node disconnected never gets its callbacks (no reconnect): without this the
      // workload waited forever (seen 2026-12-07); now it ends and is reported not whole.
      const waiting = new Set<() => void>();
      client.on("close", () => {
        if (waiting.size > 0) console.error(`bench hub: ${name}: the MQTT publisher's connection closed with ${waiting.size} sends waiting`);
        for (const resolve of waiting) resolve();
        waiting.clear();
      });
      return {
        send: (topic, body) => {
          if (!client.connected) return;
          return new Promise<void>((resolve) => {
            waiting.add(resolve);
            // mqtt.js calls back once the packet is written to its socket stream (its own backpressure).
            client.publish(topic, JSON.stringify(body), { qos: 0 }, () => {
              waiting.delete(resolve);
              resolve();
            });
          });
        },
        close: () => client.end(true),
        lost: () => !client.connected,
      };
    },
  };
}
