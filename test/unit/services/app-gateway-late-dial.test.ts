/**
 * A node's app gateway whose dial to one server answers after it moved to another: the late
 * connection is closed unused, and that close must not take the uplink from the server it follows
 * now (its writes would wait, unsent, while the link to it stays open).
 */
import { expect, test } from "bun:test";
import type { HostPort } from "../../../src/core/config.ts";
import { formatHostPort } from "../../../src/core/config.ts";
import type { FromHubFrame } from "../../../src/hub/frames.ts";
import { createLogger } from "../../../src/log.ts";
import type { PeerDialer, PeerPath } from "../../../src/net/peer-net.ts";
import type { ConnectionEvents, SecureConnection } from "../../../src/net/secure-socket.ts";
import { AppGateway } from "../../../src/services/app-gateway.ts";
import { ManualClock, ManualTimers } from "../../support/clock.ts";

const log = createLogger(() => "json", () => {});
const decoder = new TextDecoder();

class FakeConnection implements SecureConnection {
  open = true;
  readonly sent: string[] = [];
  events: ConnectionEvents | null = null;
  readonly peer = { machineId: "m", publicKey: new Uint8Array(32), address: "a" };
  send(payload: Uint8Array) {
    if (this.open) this.sent.push(...decoder.decode(payload).split("\n"));
    return this.open;
  }
  sendSealed() {
    return this.open;
  }
  sendBulk() {
    return this.open;
  }
  close(code?: number, reason = "closing") {
    if (!this.open) return;
    this.open = false;
    this.events?.close(reason, code);
  }
}

/** Dials answer only when the test says so. */
class HeldDials implements PeerDialer {
  readonly pending = new Map<string, () => FakeConnection>();
  dial(to: HostPort, _path: PeerPath, events: (connection: SecureConnection) => ConnectionEvents): Promise<SecureConnection> {
    return new Promise((resolve) => {
      this.pending.set(formatHostPort(to), () => {
        const connection = new FakeConnection();
        connection.events = events(connection);
        resolve(connection);
        return connection;
      });
    });
  }
  answer(to: HostPort): FakeConnection {
    const answer = this.pending.get(formatHostPort(to))!;
    this.pending.delete(formatHostPort(to));
    return answer();
  }
}

/** The gateway's frame batches go out at the end of the turn (setImmediate); this waits for it. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("a dial answered after the node moved to another server does not detach the uplink from that server", async () => {
  const main = { host: "127.0.0.1", port: 1 };
  const backup = { host: "127.0.0.1", port: 2 };
  const net = new HeldDials();
  const clock = new ManualClock();
  const gateway = new AppGateway({ node: { id: "n", name: "n" }, net, networkKey: new Uint8Array(32), log, onLinkBroken: () => {}, retainAckedMs: 1_000, clock, timers: new ManualTimers(clock) });
  const frames: FromHubFrame[] = [];
  const app = gateway.attachApp("app", (frame) => frames.push(frame));
  try {
    // Dialling the main (e.g. frozen: its kernel took the connection, the handshake waits for it)...
    gateway.follow({ role: "main", address: main });
    expect(net.pending.has(formatHostPort(main))).toBe(true);
    // ...when the backup takes over and the node follows it.
    gateway.follow({ role: "backup", address: backup });
    const toBackup = net.answer(backup);
    await turn();
    expect(gateway.uplink.attached).toBe(true);
    // The main answers at last (thawed): its connection is not wanted and closes.
    const toMain = net.answer(main);
    await turn();
    expect(toMain.open).toBe(false);
    // The uplink still sends to the backup.
    app.send({ type: "pub", topic: "t", data: 1, origin: "o", seq: 1 });
    await turn();
    expect(gateway.uplink.attached).toBe(true);
    expect(toBackup.sent.some((text) => text.includes('"type":"pub"'))).toBe(true);
  } finally {
    gateway.stop();
  }
});

test("what the server being left had already sent reaches the apps before the node switches (a stalled node reads heartbeats first)", async () => {
  const main = { host: "127.0.0.1", port: 1 };
  const backup = { host: "127.0.0.1", port: 2 };
  const net = new HeldDials();
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const gateway = new AppGateway({ node: { id: "n", name: "n" }, net, networkKey: new Uint8Array(32), log, onLinkBroken: () => {}, retainAckedMs: 1_000, clock, timers });
  const got: FromHubFrame[] = [];
  const app = gateway.attachApp("app", (frame) => got.push(frame));
  try {
    gateway.follow({ role: "main", address: main });
    const toMain = net.answer(main);
    await turn();
    app.send({ type: "sub", filter: "t/#" });
    // The main sent messages 1 and 2, then died; the node's event loop was held meanwhile, and on waking it takes the
    // backup's heartbeats (handed over by the socket thread) before it reads the main's socket.
    gateway.follow({ role: "backup", address: backup });
    const buffered = ["1", "2"].map((seq) => JSON.stringify({ type: "msg", topic: "t/a", data: 1, from: "o", seq: Number(seq), pos: Number(seq) }));
    toMain.events!.message(new TextEncoder().encode(buffered.join("\n")));
    toMain.close(1006, "closed (1006)");
    timers.advance(0);
    await turn();
    expect(got.filter((f) => f.type === "msg").map((f) => (f as { seq: number }).seq)).toEqual([1, 2]);
    // And the node then moves to the backup.
    expect(net.pending.has(formatHostPort(backup))).toBe(true);
    net.answer(backup);
    await turn();
    expect(gateway.uplink.attached).toBe(true);
  } finally {
    gateway.stop();
  }
});
