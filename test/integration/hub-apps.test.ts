/**
 * Local apps in any language against the real executable: Debian's
 * mosquitto_pub/mosquitto_sub and the mqtt npm client on the nodes' MQTT
 * front doors, `understudy pub/sub/set/get`, and the HTTP API, across a
 * kill -9 of the main and short SIGSTOPs of it (same-epoch reconnects).
 * docs/design.md §Data Hub.
 */
import { afterEach, describe, expect, test } from "bun:test";
import mqtt, { type MqttClient } from "mqtt";
import { Cluster, DEFAULTS, freePeerPort } from "../support/cluster.ts";
import { waitFor } from "../support/wait-for.ts";
import { eachLine } from "../support/stream-lines.ts";

const TEST_MS = 60_000;
const MOSQUITTO = Bun.which("mosquitto_pub") !== null && Bun.which("mosquitto_sub") !== null;
if (!MOSQUITTO) console.log("[hub-apps] mosquitto_pub/mosquitto_sub not installed (apt-get install mosquitto-clients): skipping the mosquitto tests");

let cluster: Cluster | null = null;
const clients: MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end(true);
  await cluster?.shutdown();
  cluster = null;
});

/** A main, a backup and two clients, each client with its MQTT front door on a free loopback port. */
async function clusterWithMqtt(preset: { heartbeatMs: number; failoverTimeoutMs: number } | Record<string, never> = {}) {
  cluster = await Cluster.start(preset);
  const ports: Record<string, number> = {};
  for (const name of ["c1", "c2"]) {
    ports[name] = await freePeerPort();
    await cluster.startClient(name, { args: ["--mqtt-listen", `127.0.0.1:${ports[name]}`] });
  }
  const c = cluster;
  await c.waitAll("every client on the main", (name, s) => name === "main" || name === "backup" || s.failover?.hubConnected === true);
  return { c, mqttPort: (name: string) => ports[name]! };
}

/**
 * Until the backup is paired and holds its first copy it never serves (docs/design.md §Failover, step 3). The main's first
 * pairing attempt often finds the backup not listening yet and retries a second later, so a kill -9
 * right after start leaves no server at all and a QoS 1 publish rightly waits for one: that, not the
 * front door, made "QoS 1 across a kill -9" fail about one run in four. Tests that kill the main wait here.
 */
async function untilBackupCanTakeOver(c: Cluster): Promise<void> {
  await c.waitAll("the backup idle and every machine on the main's hub", (_name, s) => s.chip === "Backup is idle" && s.failover?.hubConnected === true, {
    timeoutMs: 15_000,
  });
}

/** Runs a mosquitto client; resolves with its stdout. */
async function mosquitto(args: string[], timeoutMs = 15_000): Promise<string> {
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs, killSignal: "SIGKILL" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`${args.join(" ")} exited with ${code}: ${err}${out}`);
  return out;
}

async function mqttClient(port: number, options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...options });
  clients.push(client);
  return client;
}

/** A long-running mosquitto_sub -v: its "topic payload" lines as they arrive. */
function mosquittoSub(port: number, filter: string) {
  const proc = Bun.spawn(["mosquitto_sub", "-p", String(port), "-t", filter, "-v", "-W", "50"], { stdout: "pipe", stderr: "pipe" });
  const lines: string[] = [];
  void eachLine(proc.stdout, (line) => lines.push(line));
  return { lines, stop: () => proc.kill("SIGKILL") };
}

describe.skipIf(!MOSQUITTO)("mosquitto clients on the nodes' front doors", () => {
  test(
    "both directions with understudy pub/sub and HTTP, and retained values as the hub's state",
    async () => {
      const { c, mqttPort } = await clusterWithMqtt();
      // understudy pub on c1 -> mosquitto_sub on c2 (through the main), then an HTTP publish.
      const sub = mosquittoSub(mqttPort("c2"), "studio/#");
      try {
        await waitFor(
          "understudy pub's message at mosquitto_sub",
          async () => {
            await c.publish("c1", "studio/warm", "w", { count: 1 });
            await Bun.sleep(200);
            return sub.lines.length > 0;
          },
          10_000,
          0,
        );
        expect((await c.publish("c1", "studio/cam1", { zoom: 2 }, { count: 1 })).code).toBe(0);
        const http = await fetch(`${c.machine("c1").ui}/api/hub/publish`, {
          method: "POST",
          body: JSON.stringify({ topic: "studio/cam2", data: "live" }),
          headers: { "content-type": "application/json" },
        });
        expect(http.status).toBe(200);
        await waitFor("both messages", () => sub.lines.some((l) => l.startsWith("studio/cam2")), 10_000);
        expect(sub.lines.filter((l) => !l.startsWith("studio/warm"))).toEqual(['studio/cam1 {"zoom":2}', "studio/cam2 live"]);
      } finally {
        sub.stop();
      }

      // mosquitto_pub on c1 -> understudy sub on c2.
      const viewer = c.subscribe("c2", "show/#");
      await waitFor(
        "mosquitto_pub's message at understudy sub",
        async () => {
          await mosquitto(["mosquitto_pub", "-p", String(mqttPort("c1")), "-t", "show/tally", "-m", '{"on":true}', "-q", "1"]);
          await Bun.sleep(200);
          return viewer.on("show/tally").length > 0;
        },
        10_000,
        0,
      );
      expect(viewer.on("show/tally")[0]!.data).toEqual({ on: true });

      // Retained: mosquitto_pub -r on c1 is the hub's state (understudy get on c2); understudy set is retained for MQTT.
      await mosquitto(["mosquitto_pub", "-p", String(mqttPort("c1")), "-t", "scene/current", "-m", '"news"', "-r", "-q", "1"]);
      expect((await c.get("c2", "scene/current")).value).toBe("news");
      await c.set("c1", "scene/next", { title: "weather" });
      const retained = await mosquitto(["mosquitto_sub", "-p", String(mqttPort("c2")), "-t", "scene/next", "-C", "1", "-W", "10"]);
      expect(JSON.parse(retained)).toEqual({ title: "weather" });
    },
    TEST_MS,
  );
});

describe("the mqtt npm client", () => {
  test(
    "QoS 1 across a kill -9 of the main: both MQTT clients stay connected, nothing lost or duplicated",
    async () => {
      const { c, mqttPort } = await clusterWithMqtt();
      await untilBackupCanTakeOver(c);
      const subscriber = await mqttClient(mqttPort("c2"), { protocolVersion: 4, clientId: "viewer" });
      const publisher = await mqttClient(mqttPort("c1"), { protocolVersion: 4, clientId: "tracker" });
      let closes = 0;
      for (const client of [subscriber, publisher]) client.on("close", () => closes++);
      const received: number[] = [];
      let warm = false;
      subscriber.on("message", (topic, payload) => {
        if (topic === "track/pos") received.push((JSON.parse(payload.toString()) as { n: number }).n);
        if (topic === "track/warm") warm = true;
      });
      await subscriber.subscribeAsync("track/#", { qos: 1 });
      await liveEndToEnd(publisher, "track/warm", () => warm);
      const total = 400;
      let acked = 0;
      const publishing = (async () => {
        for (let n = 1; n <= total; n++) {
          await publisher.publishAsync("track/pos", JSON.stringify({ n }), { qos: 1 });
          acked = n;
          await Bun.sleep(3);
        }
      })();
      await waitFor("a quarter acknowledged", () => acked >= total / 4, 20_000);
      await c.kill("main");
      await publishing; // every PUBACK came: the backup's hub has each message
      // On a shortfall, fall through: the expectation names the missing numbers. One the main acknowledged
      // just before the kill and had not yet passed on is the known gap across a crash (README, "Failover").
      await waitFor("every message at the subscriber", () => received.length >= total, 20_000).catch(() => {});
      await Bun.sleep(200);
      expect(received).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(closes).toBe(0);
      expect((await c.status("c1")).failover?.activeServer).toBe("backup");
    },
    TEST_MS,
  );

  test(
    "QoS 0 and retained across a kill -9 of the main: QoS 0 arrives once, in order; retained values are the backup's state",
    async () => {
      const { c, mqttPort } = await clusterWithMqtt();
      await untilBackupCanTakeOver(c);
      const subscriber = await mqttClient(mqttPort("c2"), { protocolVersion: 4, clientId: "viewer" });
      const publisher = await mqttClient(mqttPort("c1"), { protocolVersion: 4, clientId: "tally" });
      let closes = 0;
      for (const client of [subscriber, publisher]) client.on("close", () => closes++);
      const received: number[] = [];
      let warm = false;
      subscriber.on("message", (topic, payload) => {
        if (topic === "tally/n") received.push(Number(payload.toString()));
        if (topic === "tally/warm") warm = true;
      });
      await subscriber.subscribeAsync("tally/#", { qos: 0 });
      await liveEndToEnd(publisher, "tally/warm", () => warm);
      await publisher.publishAsync("scene/next", '{"title":"weather"}', { qos: 1, retain: true });
      const total = 400;
      let sent = 0;
      const publishing = (async () => {
        for (let n = 1; n <= total; n++) {
          await publisher.publishAsync("tally/n", String(n), { qos: 0 });
          sent = n;
          await Bun.sleep(3);
        }
      })();
      await waitFor("a quarter sent", () => sent >= total / 4, 20_000);
      // The backup copies the hub's state every heartbeat, not each write: kill only once it holds scene/next.
      await c.waitStatus("main", "the backup's copy of the hub state caught up", (s) => s.replication?.hubState === 0);
      await c.kill("main");
      // Retained while no server is active: acknowledged once the backup took over and has it.
      await publisher.publishAsync("scene/current", '"news"', { qos: 1, retain: true });
      await publishing;
      await waitFor("every QoS 0 message at the subscriber", () => received.length >= total, 20_000).catch(() => {}); // as above
      await Bun.sleep(200);
      expect(received).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect((await c.get("c2", "scene/next")).value).toEqual({ title: "weather" });
      expect((await c.get("c2", "scene/current")).value).toBe("news");
      // A later MQTT subscriber gets both values from the backup's state.
      const later = await mqttClient(mqttPort("c2"), { protocolVersion: 4 });
      const retained = new Map<string, string>();
      later.on("message", (topic, payload) => retained.set(topic, payload.toString()));
      await later.subscribeAsync("scene/#");
      await waitFor("both retained values", () => retained.size === 2, 10_000);
      expect(Object.fromEntries(retained)).toEqual({ "scene/next": '{"title":"weather"}', "scene/current": "news" });
      expect(closes).toBe(0);
      expect((await c.status("c1")).failover?.activeServer).toBe("backup");
    },
    TEST_MS,
  );

  test(
    "short SIGSTOPs of the main (shorter than the timeout): a node that drops its link and comes back to the same server misses nothing",
    async () => {
      const { c, mqttPort } = await clusterWithMqtt(DEFAULTS);
      const subscriber = await mqttClient(mqttPort("c2"));
      const publisher = await mqttClient(mqttPort("c1"));
      const received: number[] = [];
      let warm = false;
      subscriber.on("message", (topic, payload) => {
        if (topic === "stop/n") received.push(Number(payload.toString()));
        if (topic === "stop/warm") warm = true;
      });
      await subscriber.subscribeAsync("stop/#", { qos: 1 });
      await liveEndToEnd(publisher, "stop/warm", () => warm);
      const epoch = (await c.status("main")).failover!.epoch;
      let n = 0;
      let publishing = true;
      const pump = (async () => {
        while (publishing) {
          await publisher.publishAsync("stop/n", String(++n), { qos: 0 });
          await Bun.sleep(5);
        }
      })();
      for (let stop = 0; stop < 4; stop++) {
        await Bun.sleep(300);
        c.pause("main");
        await Bun.sleep(DEFAULTS.failoverTimeoutMs - 150);
        c.resume("main");
      }
      await Bun.sleep(500);
      publishing = false;
      await pump;
      await waitFor("every message", () => received.length >= n, 15_000);
      expect(received).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect((await c.status("main")).failover!.epoch).toBe(epoch); // no failover happened
    },
    TEST_MS,
  );

  test.skipIf(!CAN_CUT)(
    "a node whose hub link is cut comes back to the same server at the same epoch and gets what it missed, once, in order",
    async () => {
      const { c, mqttPort } = await clusterWithMqtt();
      const subscriber = await mqttClient(mqttPort("c2"));
      const publisher = await mqttClient(mqttPort("c1"));
      const received: number[] = [];
      let warm = false;
      subscriber.on("message", (topic, payload) => {
        if (topic === "cut/n") received.push(Number(payload.toString()));
        if (topic === "cut/warm") warm = true;
      });
      await subscriber.subscribeAsync("cut/#", { qos: 1 });
      await liveEndToEnd(publisher, "cut/warm", () => warm);
      const epoch = (await c.status("main")).failover!.epoch;
      const mainPort = c.ports.main;
      let n = 0;
      let publishing = true;
      const pump = (async () => {
        while (publishing) {
          await publisher.publishAsync("cut/n", String(++n), { qos: 1 });
          await Bun.sleep(2);
        }
      })();
      let cuts = 0;
      for (let round = 0; round < 5; round++) {
        await Bun.sleep(250);
        cuts += cutConnections(c.machine("c2").proc.pid, mainPort);
      }
      await Bun.sleep(300);
      publishing = false;
      await pump;
      await waitFor("every message", () => received.length >= n, 15_000);
      await Bun.sleep(200);
      expect(cuts).toBeGreaterThan(0);
      expect(c.logs("c2").filter((l) => l.event === "hub link closed").length).toBeGreaterThan(0);
      expect(received).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect((await c.status("main")).failover!.epoch).toBe(epoch);
    },
    TEST_MS,
  );
});

/**
 * Destroys every TCP connection process `pid` has to `port` on loopback (`ss -K`, root only): its
 * hub link breaks while the server runs on, so the node reconnects to the same server at the same epoch.
 */
function cutConnections(pid: number, port: number): number {
  const listed = Bun.spawnSync(["ss", "-tnpH", "state", "established", "dst", `127.0.0.1:${port}`]).stdout.toString();
  let cut = 0;
  for (const line of listed.split("\n")) {
    if (!line.includes(`pid=${pid},`)) continue;
    const local = line.trim().split(/\s+/)[2]; // Recv-Q Send-Q Local:Port Peer:Port Process
    const localPort = local?.split(":").at(-1);
    if (!localPort) continue;
    Bun.spawnSync(["ss", "-K", "src", `127.0.0.1:${localPort}`, "dst", `127.0.0.1:${port}`]);
    cut++;
  }
  return cut;
}

const CAN_CUT = process.getuid?.() === 0 && Bun.which("ss") !== null;
if (!CAN_CUT) console.log("[hub-apps] not root or no ss(8): skipping the test that cuts a node's hub link");

/** Publishes on `topic` until the subscriber saw one: the subscription reached the hub. */
async function liveEndToEnd(publisher: MqttClient, topic: string, seen: () => boolean): Promise<void> {
  await waitFor(
    `a message on ${topic} end to end`,
    async () => {
      await publisher.publishAsync(topic, "1", { qos: 1 });
      await Bun.sleep(100);
      return seen();
    },
    10_000,
    0,
  );
}
