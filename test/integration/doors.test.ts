/**
 * The doors of the real executable, tried as an attacker (or a careless app)
 * would on loopback: refusals reach the sender at once with the reason
 * (docs/design.md §Data Hub), and what a stranger sends costs only what the doors
 * allow (§Security).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as tcpConnect } from "node:net";
import mqtt from "mqtt";
import { readFileSync } from "node:fs";
import { Cluster, freePeerPort } from "../support/cluster.ts";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { ticketChallengeSchema, upgradeHeaders } from "../../src/net/upgrade-ticket.ts";
import { waitFor } from "../support/wait-for.ts";
import { startMachine } from "../support/machine-process.ts";

const TEST_MS = 60_000;
let cluster: Cluster;
let mqttPort = 0;

beforeAll(async () => {
  cluster = await Cluster.start();
  mqttPort = await freePeerPort();
  await cluster.startClient("c1", { args: ["--mqtt-listen", `127.0.0.1:${mqttPort}`] });
  await cluster.waitAll("c1 on the main's hub", (name, s) => name !== "c1" || s.failover?.hubConnected === true);
}, TEST_MS);

afterAll(async () => {
  await cluster?.shutdown();
});

/** A JSON value nested `depth` levels. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { v: value };
  return value;
}

describe("every refusal reaches the sender at once", () => {
  test(
    "a value nested 64 deep: `pub` exits non-zero with the reason, HTTP answers 400 with {error}, nothing stays queued",
    async () => {
      const pub = await cluster.command(["pub", "studio/deep", JSON.stringify(nested(64)), "--node", cluster.peer("c1"), "--key", cluster.keyFile], { check: false });
      expect(pub.code).not.toBe(0);
      expect(pub.err).toContain("at most 32 levels");

      const http = await fetch(`${cluster.machine("c1").ui}/api/hub/publish`, {
        method: "POST",
        body: JSON.stringify({ topic: "studio/deep", data: nested(64) }),
        headers: { "content-type": "application/json" },
      });
      expect(http.status).toBe(400);
      expect(((await http.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "INVALID_FRAME", message: expect.stringContaining("32 levels") });

      // The node went on: the next message is acknowledged, and none of the refused ones waits in its queue.
      expect((await cluster.publish("c1", "studio/after", { ok: true }, { count: 1 })).code).toBe(0);
    },
    TEST_MS,
  );
});

/** How much of `bytes` the door took before it closed the connection (it should not take them all). */
async function claimAndSend(port: number, header: Buffer, bytes: number): Promise<{ sent: number; closedByDoor: boolean }> {
  const socket = tcpConnect({ host: "127.0.0.1", port });
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  let closed = false;
  const closing = new Promise<void>((resolve) => socket.once("close", () => ((closed = true), resolve())));
  socket.write(header);
  let sent = 0;
  const chunk = Buffer.alloc(256 * 1024);
  while (sent < bytes && !closed) {
    if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), closing]);
    sent += chunk.length;
  }
  const closedByDoor = closed;
  socket.destroy();
  return { sent, closedByDoor };
}

describe("the MQTT front door of the executable", () => {
  test(
    "CONNECTs claiming 200 MiB are closed on the claim, before their bytes are taken; the door still serves",
    async () => {
      const claim = Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]); // CONNECT, remaining length 200 MiB
      const attempts = await Promise.all(Array.from({ length: 8 }, () => claimAndSend(mqttPort, claim, 32 * 1024 * 1024)));
      for (const attempt of attempts) expect(attempt.closedByDoor).toBe(true);
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
      try {
        await client.publishAsync("studio/after", "ok", { qos: 1 });
      } finally {
        client.end(true);
      }
    },
    TEST_MS,
  );
});

/** Opens a WebSocket with `headers`; resolves whether the upgrade was taken (a socket opened) or refused. */
async function upgrade(address: string, headers: Record<string, string>): Promise<{ opened: boolean; ws: WebSocket }> {
  const ws = new WebSocket(`ws://${address}/hub`, { headers } as unknown as string[]);
  const state = { opened: false, closed: false };
  ws.onopen = () => (state.opened = true);
  ws.onclose = () => (state.closed = true);
  ws.onerror = () => (state.closed = true);
  await waitFor("the upgrade answered", () => state.opened || state.closed, 10_000);
  return { opened: state.opened, ws };
}

async function challenge(address: string) {
  return ticketChallengeSchema.parse(((await (await fetch(`http://${address}/identity`)).json()) as { ticket: unknown }).ticket);
}

describe("upgrade tickets on the peer port", () => {
  test(
    "a ticket a client sent to the backup opens no socket at the main; one made for the main opens one, once",
    async () => {
      const networkKey = parseNetworkKey(readFileSync(cluster.keyFile, "utf8"), cluster.keyFile);
      const toBackup = upgradeHeaders(networkKey, "/hub", await challenge(cluster.address("backup")));
      const atBackup = await upgrade(cluster.address("backup"), toBackup);
      expect(atBackup.opened).toBe(true);
      atBackup.ws.close();
      // A sniffer on the LAN saw that ticket go by and sends it to the main.
      expect((await upgrade(cluster.address("main"), toBackup)).opened).toBe(false);

      const toMain = upgradeHeaders(networkKey, "/hub", await challenge(cluster.address("main")));
      const once = await upgrade(cluster.address("main"), toMain);
      expect(once.opened).toBe(true);
      once.ws.close();
      expect((await upgrade(cluster.address("main"), toMain)).opened).toBe(false);
    },
    TEST_MS,
  );
});

/** GET /api/status on the setup pages from `localAddress` (a 127.0.0.0/8 address), with Basic `password`: the HTTP status. */
async function statusFrom(ui: string, localAddress: string, password: string): Promise<number> {
  const { hostname, port } = new URL(ui);
  const socket = tcpConnect({ host: hostname, port: Number(port), localAddress });
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.once("close", () => resolve());
    socket.write(`GET /api/status HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Basic ${Buffer.from(`admin:${password}`).toString("base64")}\r\nConnection: close\r\n\r\n`);
  });
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString("latin1"))?.[1] ?? 0);
}

describe("the setup pages' password", () => {
  test(
    "20 wrong guesses a second from rotating addresses never make the right password 429",
    async () => {
      const password = "correct horse battery";
      const machine = await startMachine([], { env: { UNDERSTUDY_UI_PASSWORD: password } });
      try {
        for (let round = 0; round < 5; round++) {
          const guesses = await Promise.all(Array.from({ length: 20 }, (_, i) => statusFrom(machine.ui, `127.0.${10 + round}.${i + 1}`, `guess ${round}.${i}`)));
          expect(guesses.every((status) => status === 401)).toBe(true);
          expect(await statusFrom(machine.ui, "127.0.0.1", password)).toBe(200);
        }
      } finally {
        await machine.stop();
      }
    },
    TEST_MS,
  );
});
