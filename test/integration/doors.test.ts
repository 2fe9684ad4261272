/**
 * The doors of the real executable, tried as an attacker (or a careless app)
 * would on loopback: refusals reach the sender at once with the reason
 * (docs/design.md §Data Hub), and what a stranger sends costs only what the doors
 * allow (§Security).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect as tcpConnect, type Socket } from "node:net";
import mqtt from "mqtt";
import mqttPacket from "mqtt-packet";
import { readFileSync } from "node:fs";
import { Cluster, freePeerPort } from "../support/cluster.ts";
import { parseNetworkKey } from "../../src/core/keys.ts";
import { fingerprint } from "../../src/core/keys.ts";
import { deriveKey } from "../../src/net/crypto.ts";
import { FINGERPRINT_HEADER, HandshakeInitiator, PROOF_HEADER } from "../../src/net/handshake.ts";
import { connectSecure } from "../../src/net/secure-socket.ts";
import { upgradeChallengeSchema, type UpgradeChallenge } from "../../src/net/upgrade-challenge.ts";
import nacl from "tweetnacl";
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

/** How much of `bytes` the door took before it closed the connection (it should not take them all); on `connected` when given (after a CONNECT). */
async function claimAndSend(port: number, header: Buffer, bytes: number, connected?: Socket): Promise<{ sent: number; closedByDoor: boolean }> {
  const socket = connected ?? tcpConnect({ host: "127.0.0.1", port });
  socket.on("error", () => {});
  if (!connected) await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
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

/** A raw MQTT connection to the node's front door, CONNECTed as `clientId`. */
async function rawMqtt(clientId: string) {
  const socket = tcpConnect({ host: "127.0.0.1", port: mqttPort });
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId, keepalive: 60 } as never));
  await new Promise<void>((resolve) => socket.once("data", () => resolve())); // CONNACK
  return socket;
}

describe("the MQTT front door's limits after CONNECT", () => {
  test(
    "PUBLISHes claiming 256 MB after a good CONNECT are closed on the claim; 10,000 subscriptions get 500 granted and the rest 0x80, said in one log line",
    async () => {
      const claims = await Promise.all(Array.from({ length: 4 }, async (_, i) => claimAndSend(mqttPort, Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]), 32 * 1024 * 1024, await rawMqtt(`claim-${i}`))));
      for (const claim of claims) expect(claim.closedByDoor).toBe(true);

      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0, clientId: "many-filters" });
      try {
        // mqtt.js turns a SUBACK with 0x80 into an error carrying the packet.
        const suback = (await client.subscribeAsync(Array.from({ length: 10_000 }, (_, i) => `many/${i}`)).catch((error: { packet?: { granted: number[] } }) => error)) as { packet?: { granted: number[] } };
        const granted = suback.packet?.granted ?? [];
        expect([granted.filter((g) => g !== 0x80).length, granted.filter((g) => g === 0x80).length]).toEqual([500, 9_500]);
        await client.publishAsync("studio/after", "ok", { qos: 1 });
        expect(cluster.logs("c1").filter((l) => String(l.event).startsWith("MQTT subscriptions refused"))).toHaveLength(1);
      } finally {
        client.end(true);
      }
    },
    TEST_MS,
  );

  test(
    "a subscriber that never reads is disconnected, and a publisher on the same node has every QoS 1 message acknowledged meanwhile",
    async () => {
      const slow = await rawMqtt("never-reads");
      slow.write(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "studio/#", qos: 0 }] } as never));
      await new Promise<void>((resolve) => slow.once("data", () => resolve())); // SUBACK
      slow.pause();
      const publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { reconnectPeriod: 0 });
      try {
        const payload = "x".repeat(32 * 1024);
        const cutOff = () => cluster.logs("c1").some((l) => String(l.event).includes("it does not read"));
        // Until the kernel's buffers and then the door's (1 MiB) are full, bounded.
        for (let i = 0; i < 2_000 && !cutOff(); i++) await publisher.publishAsync("studio/frame", payload, { qos: 1 });
        await waitFor("the door cut the slow subscriber off", cutOff);
        await publisher.publishAsync("studio/after", "ok", { qos: 1 });
      } finally {
        publisher.end(true);
        slow.destroy();
      }
    },
    TEST_MS,
  );
});

/** Opens a WebSocket with `headers`; resolves whether the upgrade was taken (a socket opened) or refused. */
async function upgrade(address: string, headers: Record<string, string>, path = "/hub"): Promise<{ opened: boolean; ws: WebSocket }> {
  const ws = new WebSocket(`ws://${address}${path}`, { headers } as unknown as string[]);
  const state = { opened: false, closed: false };
  ws.onopen = () => (state.opened = true);
  ws.onclose = () => (state.closed = true);
  ws.onerror = () => (state.closed = true);
  await waitFor("the upgrade answered", () => state.opened || state.closed, 10_000);
  return { opened: state.opened, ws };
}

async function challenge(address: string): Promise<UpgradeChallenge> {
  return upgradeChallengeSchema.parse(((await (await fetch(`http://${address}/identity`)).json()) as { challenge: unknown }).challenge);
}

function networkKey(): Uint8Array {
  return parseNetworkKey(readFileSync(cluster.keyFile, "utf8"), cluster.keyFile);
}

/** A key holder's proof for the listener that gave `from` (a fresh machine key each time). */
function proofHeaders(from: UpgradeChallenge, path = "/hub"): Record<string, string> {
  return new HandshakeInitiator({ networkKey: networkKey(), machine: nacl.sign.keyPair(), peerAddress: "listener", path, challenge: from }).headers;
}

/** What the main before this change took: an HMAC under the network key alone (no machine key), as `challenge.dialer.mac`. */
function networkKeyOnlyTicket(from: UpgradeChallenge): Record<string, string> {
  const dialer = nacl.randomBytes(16);
  const mac = deriveKey(networkKey(), "understudy/v1/upgrade-ticket", dialer, new TextEncoder().encode(`/hub\n${from.id}\n${from.nonce}`)).subarray(0, 16);
  return { "x-understudy-ticket": `${from.nonce}.${Buffer.from(dialer).toString("hex")}.${Buffer.from(mac).toString("hex")}`, [FINGERPRINT_HEADER]: fingerprint(networkKey()) };
}

/** `headers` with the last byte of the proof's signature flipped: the key holder cannot sign as the machine it claims. */
function badSignature(headers: Record<string, string>): Record<string, string> {
  const proof = Buffer.from(headers[PROOF_HEADER]!, "base64url");
  proof[proof.length - 1]! ^= 0x01;
  return { ...headers, [PROOF_HEADER]: proof.toString("base64url") };
}

/** The resident memory of a running process, in MiB (Linux). */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
}

/**
 * Writes a WebSocket upgrade request with `headers` and, straight after it without waiting for the answer,
 * one binary frame claiming half a MiB more than the `bytes` it then sends: a listener that took the upgrade
 * would hold them all, waiting for the rest. Leaves the socket open (the caller closes it).
 */
async function upgradeAndFlood(host: string, port: number, headers: Record<string, string>, bytes: number) {
  const socket = tcpConnect({ host, port });
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
  let closed = false;
  const closing = new Promise<void>((resolve) => socket.once("close", () => ((closed = true), resolve())));
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  socket.write(
    `GET /hub HTTP/1.1\r\nHost: ${host.includes(":") ? `[${host}]` : host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${Buffer.from(nacl.randomBytes(16)).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n${lines}\r\n`,
  );
  const frameHead = Buffer.alloc(14);
  frameHead[0] = 0x82; // FIN, binary
  frameHead[1] = 0x80 | 127; // masked, 64-bit length
  frameHead.writeBigUInt64BE(BigInt(bytes + 512 * 1024), 2);
  socket.write(frameHead);
  let sent = 0;
  const chunk = Buffer.alloc(256 * 1024, 7);
  while (sent < bytes && !closed) {
    if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once("drain", resolve)), closing, Bun.sleep(2_000)]);
    sent += chunk.length;
  }
  return { socket, sent, upgraded: () => answer.startsWith("HTTP/1.1 101") };
}

describe("the peer port: no socket before a machine proved itself", () => {
  test(
    "a key holder's upgrade with a network-key-only ticket, a bad machine signature, a replayed, stale or other machine's proof gets no socket; 20 of them each sending 15 MiB straight after leave the main's memory where it was",
    async () => {
      const main = cluster.address("main");
      const [host, port] = [main.slice(0, main.lastIndexOf(":")), Number(main.slice(main.lastIndexOf(":") + 1))];
      const atMain = await challenge(main);
      const used = proofHeaders(atMain);
      const first = await upgrade(main, used);
      expect(first.opened).toBe(true);
      first.ws.close();
      const stale = proofHeaders({ id: atMain.id, nonce: Buffer.from(nacl.randomBytes(16)).toString("hex") });
      const kinds = [networkKeyOnlyTicket(atMain), badSignature(proofHeaders(atMain)), used, stale, proofHeaders(await challenge(cluster.address("backup")))];
      for (const headers of kinds) expect((await upgrade(main, headers)).opened).toBe(false);

      const pid = cluster.machine("main").proc.pid;
      const before = rssMiB(pid);
      const floods = await Promise.all(Array.from({ length: 20 }, (_, i) => upgradeAndFlood(host, port, kinds[i % kinds.length]!, 15 * 1024 * 1024)));
      const during = rssMiB(pid);
      for (const f of floods) f.socket.destroy();
      expect(floods.filter((f) => f.upgraded())).toHaveLength(0);
      // 20 frames of 15 MiB buffered would be 300 MiB; the listener read none of them.
      expect(during - before).toBeLessThan(48);

      // A legitimate peer still gets in, twice.
      for (let round = 0; round < 2; round++) {
        const peer = await connectSecure(main, "/hub", { networkKey: networkKey(), machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} }));
        expect(peer.open).toBe(true);
        peer.close();
      }
    },
    TEST_MS,
  );

  test(
    "on IPv6 ([::1]): while strangers and key holders with bad proofs flood upgrades, a legitimate peer gets in, twice; a proof made for it opens one socket there, once",
    async () => {
      const machine = await cluster.startClient("v6", { args: ["--peer-listen", "[::1]:0"] });
      try {
        const address = machine.peer!;
        expect(address).toStartWith("[::1]:");
        const port = Number(address.slice(address.lastIndexOf(":") + 1));
        const here = await challenge(address);
        const guessed = { [PROOF_HEADER]: Buffer.from(nacl.randomBytes(176)).toString("base64url"), [FINGERPRINT_HEADER]: fingerprint(networkKey()) };
        const flooding = Promise.all(Array.from({ length: 24 }, (_, i) => upgradeAndFlood("::1", port, i % 2 ? guessed : badSignature(proofHeaders(here)), 4 * 1024 * 1024)));
        for (let round = 0; round < 2; round++) {
          const peer = await connectSecure(address, "/hub", { networkKey: networkKey(), machine: nacl.sign.keyPair() }, () => ({ message() {}, close() {} }));
          expect(peer.open).toBe(true);
          peer.close();
        }
        const floods = await flooding;
        for (const f of floods) f.socket.destroy();
        expect(floods.filter((f) => f.upgraded())).toHaveLength(0);

        const once = proofHeaders(await challenge(address));
        const opened = await upgrade(address, once);
        expect(opened.opened).toBe(true);
        opened.ws.close();
        expect((await upgrade(address, once)).opened).toBe(false);
      } finally {
        await cluster.kill("v6");
      }
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
