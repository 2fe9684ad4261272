import { describe, expect, test } from "bun:test";
import type { HostPort } from "../../../src/core/config.ts";
import { PeerRefused } from "../../../src/net/errors.ts";
import type { PeerNet, PeerPath } from "../../../src/net/peer-net.ts";
import { PeerRefusals } from "../../../src/net/peer-refusals.ts";
import { CLOSE_NETWORK_KEY_CHANGED, NETWORK_KEY_CHANGED_REASON, type ConnectionEvents, type SecureConnection } from "../../../src/net/secure-socket.ts";
import { ServerLink } from "../../../src/net/server-link.ts";
import { ManualClock, ManualTimers } from "../../support/clock.ts";
import { RecordingConnection } from "../../support/recording-connection.ts";

const quiet = { info() {}, warn() {}, error() {} } as never;

type Dial = { to: HostPort; path: PeerPath; answer(): RecordingConnection; refuse(error: Error): Promise<void> };

class FakeNet implements PeerNet {
  dials: Dial[] = [];
  dial(to: HostPort, path: PeerPath, events: (c: SecureConnection) => ConnectionEvents): Promise<SecureConnection> {
    return new Promise((resolve, reject) => {
      this.dials.push({
        to,
        path,
        answer: () => {
          let connection!: RecordingConnection;
          const holder = { events: null as ConnectionEvents | null };
          connection = new RecordingConnection({ message: (p) => holder.events!.message(p), close: (r, c) => holder.events!.close(r, c) });
          holder.events = events(connection);
          resolve(connection);
          return connection;
        },
        refuse: async (error) => {
          reject(error);
          await Promise.resolve();
        },
      });
    });
  }
  serve() {
    return () => {};
  }
  setNetworkKey() {}
  closeDialled() {}
  closeAccepted() {}
  stop() {}
}

const settle = () => new Promise((r) => setTimeout(r, 0));

function harness(keep = true) {
  const clock = new ManualClock(0);
  const timers = new ManualTimers(clock);
  const net = new FakeNet();
  let target: HostPort | null = { host: "127.0.0.1", port: 7000 };
  let spare: HostPort | null = null;
  const ups: string[] = [];
  const refusals = new PeerRefusals(clock, quiet, () => 0);
  const sessions: { to: HostPort; frames: string[]; closed: string[] }[] = [];
  const broken: string[] = [];
  const rekeyed: string[] = [];
  const link = new ServerLink({
    net,
    path: "/replicate",
    target: () => target,
    session: (_c, to) => {
      const s = { to, frames: [] as string[], closed: [] as string[] };
      sessions.push(s);
      return { message: (p: Uint8Array) => s.frames.push(new TextDecoder().decode(p)), close: (r: string) => s.closed.push(r) };
    },
    keep,
    retryMs: 100,
    timers,
    refusals,
    event: "test link failed",
    broken: (_to, reason) => broken.push(reason),
    rekeyed: (_to, reason) => rekeyed.push(reason),
    up: (to) => ups.push(`${to.host}:${to.port}`),
    spare: () => spare,
    spareRetryMs: 1000,
  });
  return { clock, timers, net, link, sessions, broken, rekeyed, ups, refusals, setTarget: (t: HostPort | null) => (target = t), setSpare: (t: HostPort | null) => (spare = t) };
}

describe("ServerLink", () => {
  test("a connection the server closes is reported broken, ends its session once, and is dialled again after retryMs", async () => {
    const h = harness();
    h.link.step();
    expect(h.net.dials).toHaveLength(1);
    const first = h.net.dials[0]!.answer();
    await settle();
    expect(h.link.address).toBe("127.0.0.1:7000");
    first.lost("main went away");
    expect(h.broken).toEqual(["main went away"]);
    expect(h.sessions[0]!.closed).toEqual(["main went away"]);
    h.timers.advance(99);
    expect(h.net.dials).toHaveLength(1);
    h.timers.advance(1);
    expect(h.net.dials).toHaveLength(2);
    h.net.dials[1]!.answer();
    await settle();
    expect(h.sessions).toHaveLength(2);
    expect(h.sessions[1]!.closed).toEqual([]);
  });

  test("a close for a network key change is not reported broken (docs/design.md §Security): the session ends once and the link dials again after retryMs", async () => {
    const h = harness();
    h.link.step();
    const first = h.net.dials[0]!.answer();
    await settle();
    first.lost(NETWORK_KEY_CHANGED_REASON, CLOSE_NETWORK_KEY_CHANGED);
    expect(h.broken).toEqual([]);
    expect(h.rekeyed).toEqual([NETWORK_KEY_CHANGED_REASON]);
    expect(h.sessions[0]!.closed).toEqual([NETWORK_KEY_CHANGED_REASON]);
    h.timers.advance(100);
    expect(h.net.dials).toHaveLength(2);
    // Any other close code is still a broken link.
    const second = h.net.dials[1]!.answer();
    await settle();
    second.lost("bad frame", 4002);
    expect(h.broken).toEqual(["bad frame"]);
  });

  test("a changed address takes effect at the next step: the old session ends at once, its late frames are dropped, the new server is dialled (IPv6 bracketed)", async () => {
    const h = harness();
    h.link.step();
    const old = h.net.dials[0]!.answer();
    await settle();
    h.setTarget({ host: "::1", port: 7001 });
    h.link.step();
    expect(h.sessions[0]!.closed).toHaveLength(1);
    expect(h.broken).toEqual([]);
    old.events!.message(new TextEncoder().encode("late"));
    expect(h.sessions[0]!.frames).toEqual([]);
    expect(h.net.dials[1]!.to).toEqual({ host: "::1", port: 7001 });
    h.net.dials[1]!.answer();
    await settle();
    expect(h.link.address).toBe("[::1]:7001");
  });

  test("a link dropped by its owner starts afresh: the next connection gets a new session (the removed-and-added backup)", async () => {
    const h = harness();
    h.link.step();
    h.net.dials[0]!.answer();
    await settle();
    h.setTarget(null);
    h.link.step();
    expect(h.sessions[0]!.closed).toHaveLength(1);
    expect(h.link.session).toBeNull();
    h.timers.advance(1000);
    expect(h.net.dials).toHaveLength(1);
    h.setTarget({ host: "127.0.0.1", port: 7000 });
    h.link.step();
    expect(h.net.dials).toHaveLength(2);
    h.net.dials[1]!.answer();
    await settle();
    expect(h.sessions).toHaveLength(2);
    expect(h.link.session).not.toBeNull();
  });

  test("a dial that resolves after the target moved is closed, and the new target is dialled", async () => {
    const h = harness();
    h.link.step();
    h.setTarget({ host: "127.0.0.2", port: 7000 });
    const late = h.net.dials[0]!.answer();
    await settle();
    expect(late.open).toBe(false);
    expect(h.net.dials.at(-1)!.to.host).toBe("127.0.0.2");
  });

  test("a refusal backs off through the refusal table before the next dial", async () => {
    const h = harness();
    h.link.step();
    await h.net.dials[0]!.refuse(new PeerRefused("127.0.0.1:7000", "no"));
    await settle();
    h.timers.advance(100);
    // The first refusal waits at least MIN_REFUSAL_BACKOFF_MS / 2 (random 0).
    expect(h.net.dials).toHaveLength(1);
    h.timers.advance(400);
    expect(h.net.dials).toHaveLength(2);
  });

  test("ready() dials on demand, reuses the open connection, and says why when there is no server", async () => {
    const h = harness(false);
    const first = h.link.ready(() => new Error("none"));
    h.net.dials[0]!.answer();
    const session = await first;
    expect(await h.link.ready(() => new Error("none"))).toBe(session);
    expect(h.net.dials).toHaveLength(1);
    h.setTarget(null);
    await expect(h.link.ready(() => new Error("no main known"))).rejects.toThrow("no main known");
  });

  describe("a spare connection to the server that may be next", () => {
    const MAIN = { host: "127.0.0.1", port: 7000 };
    const BACKUP = { host: "::1", port: 7001 };

    test("is kept idle beside the link; when the target becomes its server it is the link's connection at once, with no dial, and a new spare is dialled", async () => {
      const h = harness();
      h.setSpare(BACKUP);
      h.link.step();
      expect(h.net.dials.map((d) => d.to)).toEqual([MAIN, BACKUP]);
      h.net.dials[0]!.answer();
      const spare = h.net.dials[1]!.answer();
      await settle();
      // Idle: no session is built for it, and what it receives reaches nobody.
      expect(h.sessions).toHaveLength(1);
      spare.events!.message(new TextEncoder().encode("early"));
      // The main dies; the client follows the backup.
      h.net.dials.length = 0;
      h.setTarget(BACKUP);
      h.setSpare(MAIN);
      h.link.step();
      expect(h.link.address).toBe("[::1]:7001");
      expect(h.ups).toEqual(["127.0.0.1:7000", "::1:7001"]);
      expect(h.sessions).toHaveLength(2);
      expect(h.sessions[0]!.closed).toEqual(["Following another server now."]);
      spare.events!.message(new TextEncoder().encode("after"));
      expect(h.sessions[1]!.frames).toEqual(["after"]);
      // No dial for the backup; one for the new spare, the main.
      expect(h.net.dials.map((d) => d.to)).toEqual([MAIN]);
      // The taken-over connection closing is the link's news now.
      spare.lost("backup went away");
      expect(h.broken).toEqual(["backup went away"]);
    });

    test("closing or failing, it is nobody's news: dialled again after spareRetryMs, quietly", async () => {
      const h = harness();
      h.setSpare(BACKUP);
      h.link.step();
      h.net.dials[0]!.answer();
      await h.net.dials[1]!.refuse(new Error("backup down"));
      await settle();
      h.timers.advance(999);
      expect(h.net.dials).toHaveLength(2);
      h.timers.advance(1);
      expect(h.net.dials).toHaveLength(3);
      const spare = h.net.dials[2]!.answer();
      await settle();
      spare.lost("backup restarted");
      expect(h.broken).toEqual([]);
      h.timers.advance(1000);
      expect(h.net.dials.map((d) => d.to)).toEqual([MAIN, BACKUP, BACKUP, BACKUP]);
      expect(h.sessions).toHaveLength(1);
    });

    test("a spare server that refuses is backed off from as the link itself is", async () => {
      const h = harness();
      h.setSpare(BACKUP);
      h.link.step();
      h.net.dials[0]!.answer();
      for (let i = 0; i < 4; i++) {
        await h.net.dials.at(-1)!.refuse(new PeerRefused("[::1]:7001", "another network key"));
        await settle();
        h.timers.advance(1000);
      }
      // Refused four times in a row: the wait grew past the spare's own second (0.25, 0.5, 1, 2 s with no jitter); without it, a fifth dial.
      expect(h.net.dials.filter((d) => d.to === BACKUP).length).toBeLessThan(5);
      expect(h.broken).toEqual([]);
    });

    test("a new network key: the spare is closed and dialled again at once, whatever the back-off, and once it answers its refusal is no longer shown", async () => {
      const h = harness();
      h.setSpare(BACKUP);
      h.link.step();
      h.net.dials[0]!.answer();
      await h.net.dials[1]!.refuse(new PeerRefused("[::1]:7001", "another network key"));
      await settle();
      expect(h.refusals.current()?.peer).toBe("[::1]:7001");
      h.link.redialSpare("The network key changed.");
      expect(h.net.dials).toHaveLength(3);
      const proven = h.net.dials[2]!.answer();
      await settle();
      expect(h.refusals.current()).toBeNull();
      // An open spare proven under the old key is closed and replaced too.
      h.link.redialSpare("The network key changed again.");
      expect(proven.open).toBe(false);
      expect(h.net.dials.map((d) => d.to)).toEqual([MAIN, BACKUP, BACKUP, BACKUP]);
    });

    test("is never the target itself, is closed when no longer the spare, and goes with the link's stop", async () => {
      const h = harness();
      h.setSpare(MAIN);
      h.link.step();
      expect(h.net.dials.map((d) => d.to)).toEqual([MAIN]);
      h.net.dials[0]!.answer();
      await settle();
      h.setSpare(BACKUP);
      h.link.step();
      const spare = h.net.dials[1]!.answer();
      await settle();
      h.setSpare(null);
      h.link.step();
      expect(spare.open).toBe(false);
      h.setSpare(BACKUP);
      h.link.step();
      const again = h.net.dials[2]!.answer();
      await settle();
      h.link.stop();
      expect(again.open).toBe(false);
      h.timers.advance(5000);
      expect(h.net.dials).toHaveLength(3);
    });
  });
});
