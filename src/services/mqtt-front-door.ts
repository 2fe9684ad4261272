/**
 * The MQTT front door (docs/design.md §Data Hub): an aedes broker on the node's
 * own port (`--mqtt-listen`, loopback by default) so local apps in any
 * language reach the Data Hub. It is one local app of the node's uplink:
 *
 * - a PUBLISH goes up as `pub` (retained: `set`, an empty retained payload
 *   deletes the key); QoS 1/2 is acknowledged only once the active hub acked
 *   it, QoS 0 as soon as the node's queue took it (or, when the node applies
 *   backpressure, once the hub acked it, so a fast publisher is slowed down,
 *   not dropped). A refused or timed-out write closes that client (MQTT 3.1.1
 *   has no negative PUBACK) and is logged;
 * - what MQTT clients subscribe to, the node subscribes to upstream; messages
 *   and retained values from the hub are published into the broker (values as
 *   retained messages, so a later MQTT subscriber gets them at once), through
 *   a bounded line (mqtt-delivery-line.ts: what the subscribers cannot take is
 *   dropped, and its count said on the gap topic);
 * - a gap (messages the hub no longer held) is published on `$understudy/gap`.
 *
 * A PUBLISH from an MQTT client is not routed by aedes itself: the hub sends
 * it back like any other message, so every subscriber gets it once, in the
 * hub's order. The broker lives on the node, so a server failover never
 * disconnects an MQTT client: the node moves its uplink underneath.
 *
 * MQTT 3.1 and 3.1.1 (aedes does not speak MQTT 5 yet; a v5 CONNECT is refused
 * with "unacceptable protocol version"). What a connection may cost (packet
 * size, CONNECT timeout, connections per source, a subscriber that does not
 * read) is bounded in mqtt-door-limits.ts. A subscription the node cannot hold
 * is refused in the SUBACK (0x80), and said in the log once a minute per client.
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { Aedes, type Client, type PublishPacket } from "aedes";
import { formatHostPort, parseHostPort, type Config, type HostPort } from "../core/config.ts";
import type { FromHubFrame, ToHubFrame } from "../hub/frames.ts";
import type { Logger } from "../log.ts";
import type { AppGateway, InProcessApp } from "./app-gateway.ts";
import { listenError } from "../net/listen-error.ts";
import { FRONT_DOOR_TOPIC_PREFIX, GAP_TOPIC, dataFromPayload, dataMeasured, payloadFromData } from "./mqtt-payload.ts";
import { DeliveryLine, MQTT_BROKER_CONCURRENCY, type Delivery } from "./mqtt-delivery-line.ts";
import { RepeatFilter } from "../core/repeat-filter.ts";
import type { Clock } from "../core/clock.ts";
import { systemClock } from "../net/system-time.ts";
import { DEFAULT_MAX_FILTERS_PER_APP } from "../hub/uplink-options.ts";
import { ConnectionCaps } from "../net/connection-caps.ts";
import {
  DEFAULT_MQTT_DOOR_LIMITS,
  MQTT_DRAIN_TIMEOUT_MS,
  fallenBehind,
  limitPacketSize,
  type MqttDoorLimits,
} from "./mqtt-door-limits.ts";

/** Where aedes routes a PUBLISH already handed to the hub: a topic no client may subscribe to. */
const FORWARDED_TOPIC = `${FRONT_DOOR_TOPIC_PREFIX}forwarded`;

export type MqttFrontDoorOptions = {
  listen: HostPort;
  /** Required of every client when set (any user name); null on loopback without one. */
  password: string | null;
  /** Attaches the front door as a local app of the node's uplink (AppGateway.attachApp). */
  attach: (deliver: (frame: FromHubFrame) => void) => InProcessApp;
  /** Whether the node holds writes back (its queue is full): QoS 0 publishers then wait for their ack too. */
  backpressure: () => boolean;
  log: Logger;
  limits?: MqttDoorLimits;
  clock?: Clock;
  /** Filters the door holds upstream for all its clients (the node's share for one app). */
  maxFilters?: number;
};

type Deliver = (packet: unknown, done: () => void) => void;
/** The parts of an aedes Client the slow-reader guard uses (not in its types). */
type DeliveringClient = { deliver0: Deliver; deliverQoS: Deliver; conn: Socket; id: string };


type Pending = (error: Error | null) => void;
const ignore = () => {};

export class MqttFrontDoor {
  private readonly broker: Aedes;
  private readonly server: Server;
  private readonly app: InProcessApp;
  private readonly log: Logger;
  private readonly backpressure: () => boolean;
  private readonly origin = `mqtt-${crypto.randomUUID().slice(0, 12)}`;
  private seq = 0;
  /** Writes waiting for the hub's ack (or refusal), by seq. */
  private readonly pending = new Map<number, Pending>();
  /** What the hub sent, on its way into the broker (bounded: mqtt-delivery-line.ts). */
  private readonly deliveries: DeliveryLine;
  /** Which MQTT clients hold each filter; the node is subscribed upstream to exactly these filters. */
  private readonly holders = new Map<string, Set<string>>();
  readonly address: string;
  private readonly limits: MqttDoorLimits;
  private readonly maxFilters: number;
  private readonly caps: ConnectionCaps;
  private readonly clock: Clock;
  /** Every open connection, also those that never sent CONNECT (aedes knows only connected clients). */
  private readonly sockets = new Set<Socket>();
  /** Log lines said once a minute per client (or source) and kind, with a count. */
  private readonly said = new RepeatFilter();

  private constructor(broker: Aedes, server: Server, options: MqttFrontDoorOptions, address: string) {
    this.broker = broker;
    this.server = server;
    this.log = options.log;
    this.limits = options.limits ?? DEFAULT_MQTT_DOOR_LIMITS;
    this.maxFilters = options.maxFilters ?? DEFAULT_MAX_FILTERS_PER_APP;
    this.caps = new ConnectionCaps(this.limits);
    this.clock = options.clock ?? systemClock;
    this.backpressure = options.backpressure;
    this.address = address;
    this.deliveries = new DeliveryLine(
      (delivery, done) => this.publishLocally(delivery, done),
      (missed) => ({ topic: GAP_TOPIC, payload: payloadFromData(missed), retain: false }),
    );
    this.app = options.attach((frame) => this.fromHub(frame));
  }

  /** Starts the broker and listens; throws a ListenError naming --mqtt-listen when the port is taken. */
  static async start(options: MqttFrontDoorOptions): Promise<MqttFrontDoor> {
    const limits = options.limits ?? DEFAULT_MQTT_DOOR_LIMITS;
    const broker = await Aedes.createBroker({ drainTimeout: MQTT_DRAIN_TIMEOUT_MS, connectTimeout: limits.connectTimeoutMs, concurrency: MQTT_BROKER_CONCURRENCY });
    let accept = (socket: Socket): void => {
      socket.destroy();
    };
    const server = createServer((socket) => accept(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(options.listen.port, options.listen.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      throw listenError(error, options.listen, "--mqtt-listen");
    }
    const bound = server.address();
    const port = typeof bound === "object" && bound ? bound.port : options.listen.port;
    const door = new MqttFrontDoor(broker, server, options, formatHostPort({ host: options.listen.host, port }));
    door.install(options.password);
    accept = (socket) => door.accept(socket);
    return door;
  }

  /** Stops listening at once (a new role's front door may bind the same port right away), then closes the clients. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.app.close();
    for (const settle of this.pending.values()) settle(new Error("The node is shutting down."));
    this.pending.clear();
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** One TCP connection: within the caps, with the packet size limit and the slow-reader guard, handed to aedes. */
  private accept(socket: Socket): void {
    const source = socket.remoteAddress ?? "unknown";
    if (!this.caps.take(source)) {
      this.say(`${source} full`, "MQTT connection refused: too many open from this address or in total", { from: source, max: this.limits.perSource });
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once("close", () => {
      this.sockets.delete(socket);
      this.caps.release(source);
    });
    const client = this.broker.handle(socket);
    limitPacketSize(client, this.limits.maxPacketBytes);
    this.neverWaitFor(client as unknown as DeliveringClient);
  }

  /**
   * Deliveries to a client hand control back to the broker at once instead of when its socket
   * drained, and a client with more than maxBufferedBytes unread is disconnected: one subscriber
   * that never reads cannot hold up the broker, and with it every publisher on the node.
   */
  private neverWaitFor(client: DeliveringClient): void {
    // What is delivered in one turn of the event loop goes out in one socket write, not one per packet: a write
    // per 150-byte packet was a third of a subscribing node's CPU in a burst (bench hub, node MQTT path). aedes
    // writes a delivery one turn later (setImmediate in its deliverQoS0), so the socket is uncorked two turns after
    // the first delivery, and corked again at once when more were delivered meanwhile (their writes are still to come).
    let corked = false;
    let later = 0;
    const uncorkSoon = () => setImmediate(() => setImmediate(uncork));
    const uncork = () => {
      client.conn.uncork();
      if (later > 0 && !client.conn.destroyed) {
        later = 0;
        client.conn.cork();
        uncorkSoon();
      } else corked = false;
    };
    // Every delivery is done on the next turn, in order: one setImmediate a turn for all of them, not one each
    // (a setImmediate per message per subscriber was ≈ 2-3 % of a subscribing node's CPU in the bench).
    let dones: (() => void)[] = [];
    const finish = () => {
      const now = dones;
      dones = [];
      for (const done of now) done();
    };
    const guard = (deliver: Deliver): Deliver => (packet, done) => {
      if (fallenBehind(client.conn, this.limits.maxBufferedBytes)) {
        this.say(`${client.id} slow`, "MQTT client disconnected: it does not read what it subscribed to", { client: client.id, unreadBytes: client.conn.writableLength });
        client.conn.destroy();
      } else {
        if (!corked) {
          corked = true;
          client.conn.cork();
          uncorkSoon();
        } else later++;
        deliver(packet, ignore);
      }
      if (dones.push(done) === 1) setImmediate(finish);
    };
    client.deliver0 = guard(client.deliver0);
    client.deliverQoS = guard(client.deliverQoS);
  }

  /** Open MQTT connections (for tests and the status). */
  get connections(): number {
    return this.caps.connections;
  }

  private say(key: string, event: string, fields: Record<string, unknown>): void {
    const verdict = this.said.note(key, this.clock.now());
    if (verdict.report) this.log.warn(event, verdict.suppressed > 0 ? { ...fields, repeated: verdict.suppressed } : fields);
  }

  private install(password: string | null): void {
    const broker = this.broker;
    if (password !== null) {
      const expected = Buffer.from(password);
      broker.authenticate = (_client, _username, given, done) => {
        const ok = given !== undefined && given.length === expected.length && timingSafeEqual(given, expected);
        if (ok) return done(null, true);
        const error = Object.assign(new Error("Bad user name or password."), { returnCode: 4 as const });
        done(error, false);
      };
    }
    broker.authorizePublish = (client, packet, done) => this.onPublish(client, packet, done);
    // A client's publish went to the hub, which sends it back to every subscriber: aedes need not route it
    // (its store, its emitter and its "publish" event cost about a tenth of a publishing node's CPU per message).
    // At run time aedes calls it as (packet, client, done) from a client's publish, and (packet, done) from ours.
    type Publish = (packet: PublishPacket, client: unknown, done?: (error?: Error) => void) => void;
    const publish = broker.publish.bind(broker) as unknown as Publish;
    const skipping: Publish = (packet, client, done) => {
      if (packet.topic !== FORWARDED_TOPIC) return publish(packet, client, done);
      (typeof client === "function" ? (client as () => void) : done)?.();
    };
    broker.publish = skipping as unknown as typeof broker.publish;
    broker.authorizeSubscribe = (client, subscription, done) => {
      // The front door's own topics are not for subscribing, except the gap notices.
      const own = subscription.topic.startsWith(FRONT_DOOR_TOPIC_PREFIX) && subscription.topic !== GAP_TOPIC;
      if (own) return done(null, null);
      // A new filter past the node's share is refused in the SUBACK (0x80), not granted and then dropped.
      if (!this.holders.has(subscription.topic) && this.holders.size >= this.maxFilters) {
        this.say(`${client?.id} subscriptions`, "MQTT subscriptions refused: the node holds no more filters for its MQTT clients", { client: client?.id, max: this.maxFilters });
        return done(null, null);
      }
      // Held now, not at the "subscribe" event: aedes authorizes a SUBSCRIBE's filters together, before any is stored.
      if (client) this.hold(subscription.topic, client.id);
      done(null, subscription);
    };
    broker.on("subscribe", (subscriptions, client) => {
      for (const { topic } of subscriptions) if (!topic.startsWith(FRONT_DOOR_TOPIC_PREFIX)) this.hold(topic, client.id);
    });
    broker.on("unsubscribe", (topics, client) => {
      for (const topic of topics) this.release(topic, client.id);
    });
    broker.on("clientDisconnect", (client) => {
      // A persistent session keeps its subscriptions (aedes queues for it); a clean one is gone.
      if (client.clean) for (const topic of [...this.holders.keys()]) this.release(topic, client.id);
    });
    broker.on("clientError", (client, error) => this.log.warn("MQTT client dropped", { client: client.id, message: error.message }));
  }

  /** A PUBLISH from an MQTT client: up to the hub; acknowledged (by aedes) when `done` is called. */
  private onPublish(client: Client | null, packet: PublishPacket, done: (error?: Error | null) => void): void {
    if (packet.topic.startsWith("$")) return done(new Error(`Topics starting with "$" are reserved; "${packet.topic}" was not published.`));
    let frame: ToHubFrame;
    try {
      const data = dataFromPayload(packet.topic, packet.payload as Uint8Array);
      const seq = ++this.seq;
      frame = packet.retain
        ? { type: "set", key: packet.topic, value: packet.payload.length === 0 ? null : data, origin: this.origin, seq }
        : { type: "pub", topic: packet.topic, data, origin: this.origin, seq };
    } catch (error) {
      this.log.warn("MQTT publish refused", { client: client?.id, topic: packet.topic, message: (error as Error).message });
      return done(error as Error);
    }
    const seq = frame.seq;
    const forwarded = (error: Error | null) => {
      if (error) {
        this.log.warn("MQTT publish refused by the hub", { client: client?.id, topic: packet.topic, message: error.message });
        return done(error);
      }
      packet.topic = FORWARDED_TOPIC; // aedes routes it nowhere: the hub sends it back to every subscriber
      packet.retain = false;
      done(null);
    };
    this.pending.set(seq, forwarded);
    this.app.send(frame, dataMeasured(packet.payload as Uint8Array));
    // QoS 0 need not wait for the hub, unless it was refused at once or the node is applying backpressure.
    if (packet.qos === 0 && this.pending.has(seq) && !this.backpressure()) {
      this.pending.delete(seq);
      forwarded(null);
    }
  }

  private fromHub(frame: FromHubFrame): void {
    switch (frame.type) {
      case "ack":
        return this.settle(frame.origin, frame.seq, null);
      case "error":
        if (frame.ref?.origin !== undefined && frame.ref.seq !== undefined) this.settle(frame.ref.origin, frame.ref.seq, new Error(`${frame.code}: ${frame.message}`));
        else this.say(`hub ${frame.ref?.type} ${frame.code}`, "hub refused an MQTT request", { code: frame.code, message: frame.message });
        return;
      case "msg":
        return this.deliver({ topic: frame.topic, payload: payloadFromData(frame.data), retain: false });
      case "value":
        // Retained in the broker too, so an MQTT client subscribing later gets it; a deleted key clears it.
        return this.deliveries.push({ topic: frame.key, payload: frame.value === null ? Buffer.alloc(0) : payloadFromData(frame.value), retain: true });
      case "gap":
        return this.deliver({ topic: GAP_TOPIC, payload: payloadFromData({ missed: frame.missed, message: frame.message }), retain: false });
      default:
        return;
    }
  }

  private settle(origin: string, seq: number, error: Error | null): void {
    if (origin !== this.origin) return;
    const pending = this.pending.get(seq);
    if (!pending) return;
    this.pending.delete(seq);
    pending(error);
  }

  /** Into the broker through the bounded line; what it drops is said in the log once a minute. */
  private deliver(delivery: Delivery): void {
    const before = this.deliveries.dropped;
    this.deliveries.push(delivery);
    if (this.deliveries.dropped > before) {
      this.say("deliveries dropped", "MQTT messages dropped: this node's MQTT subscribers do not keep up with the Data Hub", { dropped: this.deliveries.dropped });
    }
  }

  private publishLocally(message: Delivery, done: () => void): void {
    const packet = { cmd: "publish", qos: 0, dup: false, topic: message.topic, payload: message.payload, retain: message.retain } as PublishPacket;
    this.broker.publish(packet, (error) => {
      if (error) this.log.warn("MQTT delivery failed", { topic: message.topic, message: error.message });
      done();
    });
  }

  private hold(filter: string, client: string): void {
    let clients = this.holders.get(filter);
    if (!clients) {
      this.holders.set(filter, (clients = new Set()));
      this.app.send({ type: "sub", filter });
    }
    clients.add(client);
  }

  private release(filter: string, client: string): void {
    const clients = this.holders.get(filter);
    if (!clients?.delete(client) || clients.size > 0) return;
    this.holders.delete(filter);
    this.app.send({ type: "unsub", filter });
  }
}

/**
 * The front door for this machine's `--mqtt-listen`, attached to its app gateway; null when "off".
 * A port already taken (another broker on this machine) is logged, not fatal: the node runs on without it.
 */
export async function startMqttFrontDoor(config: Pick<Config, "mqttListen" | "mqttPassword">, gateway: AppGateway, log: Logger): Promise<MqttFrontDoor | null> {
  if (config.mqttListen === "off") return null;
  try {
    const door = await MqttFrontDoor.start({
      listen: parseHostPort(config.mqttListen)!,
      password: config.mqttPassword,
      attach: (deliver) => gateway.attachApp("mqtt", deliver),
      backpressure: () => gateway.uplink.waitingFrames > 0,
      log,
    });
    log.info("MQTT front door open", { mqtt: door.address });
    return door;
  } catch (error) {
    log.error("MQTT front door not started", { message: (error as Error).message });
    return null;
  }
}
