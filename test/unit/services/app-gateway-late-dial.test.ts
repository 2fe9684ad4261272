/**
 * A node's app gateway whose dial to one server answers after it moved to another: the late
 * connection is closed unused, and that close must not take the uplink from the server it follows
 * now (its writes would wait, unsent, while the link to it stays open). And what a node whose own event
 * loop was held keeps of its acknowledged writes.
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
import { RecordingConnection } from "../../support/recording-connection.ts";

const log = createLogger(() => "json", () => {});

/** Dials answer only when the test says so. */
class HeldDials implements PeerDialer {
  readonly pending = new Map<string, () => RecordingConnection>();
  dial(to: HostPort, _path: PeerPath, events: (connection: SecureConnection) => ConnectionEvents): Promise<SecureConnection> {
    return new Promise((resolve) => {
      this.pending.set(formatHostPort(to), () => {
        const connection = new RecordingConnection();
        connection.events = events(connection);
        resolve(connection);
        return connection;
      });
    });
  }
  answer(to: HostPort): RecordingConnection {
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

test("acknowledged writes are kept a whole retention after this node's own event loop was held (sim seed 105700)", async () => {
  const main = { host: "127.0.0.1", port: 1 };
  const net = new HeldDials();
  const clock = new ManualClock();
  const manual = new ManualTimers(clock);
  // The gateway's periodic check runs only when the test says: late, as after a held event loop, or on time.
  let check = () => {};
  const timers = { after: (ms: number, run: () => void) => manual.after(ms, run), every: (_ms: number, run: () => void) => ((check = run), () => {}) };
  const gateway = new AppGateway({ node: { id: "n", name: "n" }, net, networkKey: new Uint8Array(32), log, onLinkBroken: () => {}, retainAckedMs: 2_400, clock, timers });
  const app = gateway.attachApp("app", () => {});
  const checkUntil = async (t: number, toMain: RecordingConnection) => {
    while (clock.now() < t) {
      clock.advance(100);
      check();
      await turn();
      // The main answers every ping at once: it is alive.
      for (const text of toMain.sent.splice(0)) {
        const frame = JSON.parse(text) as { type: string; sentAt?: number };
        if (frame.type === "ping") toMain.events!.message(new TextEncoder().encode(JSON.stringify({ type: "pong", sentAt: frame.sentAt })));
      }
    }
  };
  try {
    gateway.follow({ role: "main", address: main });
    const toMain = net.answer(main);
    await turn();
    app.send({ type: "pub", topic: "t", data: 1, origin: "o", seq: 1 });
    await turn();
    toMain.events!.message(new TextEncoder().encode(JSON.stringify({ type: "ack", origin: "o", seq: 1 })));
    expect(gateway.uplink.ackedKept).toBe(1);
    // Trimmed once (at 1 s: "acknowledged by now"), its server heard alive then.
    await checkUntil(1_000, toMain);
    // The loop is held 1.5 s: the next check comes that late. Awake again, the node hears its server at the next ping.
    clock.advance(1_500);
    await checkUntil(4_600, toMain);
    expect(gateway.uplink.ackedKept).toBe(1);
    // A whole retention of running time after it woke, the write goes.
    await checkUntil(5_600, toMain);
    expect(gateway.uplink.ackedKept).toBe(0);
  } finally {
    gateway.stop();
  }
});
