/**
 * Hub fan-out: one seal and one Bun topic publish per message, whatever the
 * number of subscribers; the same bytes reach each, in order with frames sent
 * on each connection's own channel.
 */
import { afterEach, describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { fanOut, openBroadcast, broadcastEpoch } from "../../../src/net/broadcast.ts";
import { deriveBroadcastKey } from "../../../src/net/crypto.ts";
import { FanoutGroups } from "../../../src/net/fanout-groups.ts";
import { connectSecure, type SecureConnection, type TopicMember } from "../../../src/net/secure-socket.ts";
import { waitFor } from "../../support/wait-for.ts";
import { serveBarePeer } from "../../support/peer-identity.ts";

const networkKey = nacl.randomBytes(32);
const key = deriveBroadcastKey(networkKey, 5);
const text = new TextEncoder();
const servers: ReturnType<typeof Bun.serve>[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true);
});

class FakeMember implements TopicMember {
  readonly topics = new Set<string>();
  readonly published: { topic: string; frame: Uint8Array }[] = [];
  readonly sealed: Uint8Array[] = [];
  open = true;
  readonly peer = { machineId: "m", publicKey: new Uint8Array(32), address: "x" };
  send = () => true;
  sendSealed = (frame: Uint8Array) => this.sealed.push(frame) > 0;
  sendBulk = () => true;
  close() {}
  subscribe(topic: string) {
    this.topics.add(topic);
  }
  unsubscribe(topic: string) {
    this.topics.delete(topic);
  }
  publishSealed(topic: string, frame: Uint8Array) {
    this.published.push({ topic, frame });
    return true;
  }
}

describe("FanoutGroups", () => {
  test("one topic per set of connections, whatever their order; a closed connection's groups are forgotten", () => {
    const members = new Map(["a", "b", "c"].map((id) => [id, new FakeMember()]));
    const groups = new FanoutGroups();
    const get = (id: string) => members.get(id);
    expect(groups.publish(["b", "a"], get, new Uint8Array([1]))).toBe(true);
    expect(groups.publish(["a", "b"], get, new Uint8Array([2]))).toBe(true);
    expect(groups.size).toBe(1);
    expect([...members.get("a")!.topics]).toEqual(["hub:a b"]);
    groups.publish(["a", "b", "c"], get, new Uint8Array([3]));
    expect(groups.size).toBe(2);
    groups.forget("c");
    expect(groups.size).toBe(1);
    expect([...members.get("a")!.topics]).toEqual(["hub:a b"]); // the group without c stays
  });

  test("bounded: the least recently used group is dropped and its members leave its topic", () => {
    const members = new Map(["a", "b", "c"].map((id) => [id, new FakeMember()]));
    const groups = new FanoutGroups(2);
    const get = (id: string) => members.get(id);
    groups.publish(["a", "b"], get, new Uint8Array([1]));
    groups.publish(["a", "c"], get, new Uint8Array([1]));
    groups.publish(["b", "c"], get, new Uint8Array([1]));
    expect(groups.size).toBe(2);
    expect([...members.get("a")!.topics]).toEqual(["hub:a c"]);
  });

  test("a connection that cannot join topics: the same sealed bytes are written to each", () => {
    const plain = { ...new FakeMember(), sent: [] as Uint8Array[] };
    const withoutTopics: SecureConnection = {
      peer: plain.peer,
      open: true,
      send: () => true,
      sendSealed: (frame) => plain.sent.push(frame) > 0,
      sendBulk: () => true,
      close() {},
    };
    const other = new FakeMember();
    const connections = new Map<string, SecureConnection>([
      ["p", withoutTopics],
      ["o", other],
    ]);
    fanOut("hello", ["p", "o"], connections, key, new FanoutGroups());
    expect(plain.sent).toHaveLength(1);
    expect(other.sealed[0]).toBe(plain.sent[0]!);
    expect(other.published).toEqual([]);
  });
});

test("over real sockets: one seal and one publish reach every subscriber, in order with channel frames", async () => {
  const options = { networkKey, machine: nacl.sign.keyPair() };
  const accepted = new Map<string, SecureConnection>();
  let next = 0;
  const server = serveBarePeer(
    options,
    (connection) => {
      accepted.set(`c${++next}`, connection);
      return { message() {}, close() {} };
    },
    { path: "/hub", publish: true },
  );
  servers.push(server);
  const address = `127.0.0.1:${server.port}`;
  const received: string[][] = [[], [], []];
  const clients = await Promise.all(
    received.map((lines) =>
      connectSecure(address, "/hub", { networkKey, machine: nacl.sign.keyPair() }, () => ({
        message: (p) => lines.push(new TextDecoder().decode(p)),
        broadcast: (frame) => lines.push(new TextDecoder().decode(openBroadcast(deriveBroadcastKey(networkKey, broadcastEpoch(frame, address)), frame, address))),
        close() {},
      })),
    ),
  );
  await waitFor("three accepted connections", () => accepted.size === 3);
  const groups = new FanoutGroups();
  const ids = [...accepted.keys()];
  for (let i = 1; i <= 300; i++) {
    if (i % 3 === 0) fanOut(`only ${i}`, [ids[0]!], accepted, key, groups);
    else fanOut(`all ${i}`, ids, accepted, key, groups);
  }
  await waitFor("every frame", () => received[0]!.length === 300 && received[2]!.length === 200);
  const expectedAll = Array.from({ length: 300 }, (_, k) => k + 1).filter((i) => i % 3 !== 0).map((i) => `all ${i}`);
  expect(received[0]).toEqual(Array.from({ length: 300 }, (_, k) => (k + 1) % 3 === 0 ? `only ${k + 1}` : `all ${k + 1}`));
  expect(received[1]).toEqual(expectedAll);
  expect(received[2]).toEqual(expectedAll);
  expect(groups.size).toBe(1);
  for (const c of clients) c.close();
});
