/**
 * Alive tokens signed ahead on a worker thread (net/alive-presigner.ts) and how a server's
 * heartbeats take them (core/signed-beats.ts): every token handed out verifies as the server's
 * own for the right role, boot and time, is never stale nor ahead of the clock, nothing signed
 * for an old claim goes out under a new one, and when the worker is slow, broken or gone the
 * server signs on its own thread as before.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import nacl from "tweetnacl";
import { SignedBeats } from "../../../src/core/signed-beats.ts";
import { aliveMessage, type AliveClaim, type AliveToken, type ClaimSigner } from "../../../src/core/signed-claims.ts";
import { AlivePresigner, MAX_FAILURES_IN_A_ROW, PERIODS_AHEAD, SigningThread, type Signing } from "../../../src/net/alive-presigner.ts";
import { HeartbeatKeys } from "../../../src/net/heartbeat-keys.ts";
import { seededRandom } from "../../../src/net/crypto.ts";
import { ManualClock } from "../../support/clock.ts";
import { waitFor } from "../../support/wait-for.ts";

const BOOT = "a1b2c3d4e5f60718";
const PERIOD = 50;

function machine(seed: string) {
  const pair = nacl.sign.keyPair.fromSeed(seededRandom(seed)(32));
  return { pair, keys: new HeartbeatKeys(pair, new ManualClock(0)) };
}

const claimOf = (id: string, over: Partial<AliveClaim> = {}): AliveClaim => ({ role: "main", id, boot: BOOT, epoch: 1, periodMs: PERIOD, ...over });

/** Asks at `now` until a token comes back (the worker answers between turns of the event loop). */
function takeWhenReady(p: AlivePresigner, claim: AliveClaim, now: number): Promise<AliveToken> {
  return waitFor("a token signed ahead", () => p.take(claim, now));
}

/** A signing thread answered by hand: each request remembers the epoch the test was in when it was made. */
class HandThread implements Signing {
  usable = true;
  epoch = 1;
  readonly requests: { message: string; epoch: number; answer: (s: string | null) => void }[] = [];
  sign(_secretKey: Uint8Array, message: string, answer: (s: string | null) => void): void {
    this.requests.push({ message, epoch: this.epoch, answer });
  }
  answerAll(): void {
    for (const r of this.requests.splice(0)) r.answer(`ahead e${r.epoch} (${r.message})`);
  }
}

describe("AlivePresigner", () => {
  test("tokens it hands out verify as the machine's own, for the grid time of the current period, never stale or ahead", async () => {
    const { pair, keys } = machine("presigner one");
    const p = new AlivePresigner(pair.secretKey, new SigningThread());
    const claim = claimOf(keys.id);
    expect(p.take(claim, 1_000)).toBeNull(); // nothing is ready at start: the caller signs
    for (const now of [1_020, 1_050, 1_099, 1_130, 1_180, 1_200]) {
      const token = await takeWhenReady(p, claim, now);
      expect(token.b).toBe(BOOT);
      expect(token.t % PERIOD).toBe(0);
      expect(token.t).toBeLessThanOrEqual(now);
      expect(now - token.t).toBeLessThan(PERIOD);
      expect(keys.verify(keys.id, aliveMessage("main", keys.id, BOOT, token.t), token.s)).toBe(true);
      // What it signed is for the main only: as the backup's it proves nothing.
      expect(keys.verify(keys.id, aliveMessage("backup", keys.id, BOOT, token.t), token.s)).toBe(false);
    }
  });

  test("signs only when asked and at most PERIODS_AHEAD periods past the last ask; after a longer stall nothing it holds is handed out", async () => {
    const thread = new HandThread();
    const p = new AlivePresigner(new Uint8Array(64), thread);
    const claim = claimOf("m");
    expect(p.take(claim, 2_060)).toBeNull();
    const asked = thread.requests.map((r) => Number(r.message.split(" ").at(-1)));
    expect(asked).toEqual(Array.from({ length: PERIODS_AHEAD + 1 }, (_, i) => 2_050 + i * PERIOD));
    thread.answerAll();
    // A stalled loop asks nothing more, so nothing more is signed; when it wakes, all of it is stale.
    expect(thread.requests).toHaveLength(0);
    const woke = 2_050 + (PERIODS_AHEAD + 1) * PERIOD;
    expect(p.take(claim, woke)).toBeNull();
    expect(p.taken).toBe(0);
  });

  test("ready: the token of a later period already signed, for heartbeats built ahead; it asks for nothing and hands nothing out", () => {
    const thread = new HandThread();
    const p = new AlivePresigner(new Uint8Array(64), thread);
    const claim = claimOf("m");
    expect(p.take(claim, 2_060)).toBeNull();
    thread.answerAll();
    const ahead = p.ready(claim, 2_060 + 2 * PERIOD + 10);
    expect(ahead).toEqual({ b: BOOT, t: 2_150, s: expect.stringContaining("2150") });
    expect(p.ready(claim, 2_050 + (PERIODS_AHEAD + 1) * PERIOD)).toBeNull(); // never signed: not asked for
    expect(p.ready({ ...claim, epoch: 2 }, 2_160)).toBeNull(); // another claim
    expect(thread.requests).toHaveLength(0);
    expect(p.taken).toBe(0);
  });

  test("a change of role, boot, epoch, period or id drops what was signed for the old claim, and late answers for it", () => {
    const old = claimOf("m");
    for (const next of [claimOf("m", { role: "backup" }), claimOf("m", { boot: "ffffffffffffffff" }), claimOf("m", { epoch: 3 }), claimOf("m", { periodMs: 100 }), claimOf("n")]) {
      const thread = new HandThread();
      const p = new AlivePresigner(new Uint8Array(64), thread);
      // Signed and ready for the old claim: not handed out for the new.
      expect(p.take(old, 3_000)).toBeNull();
      thread.answerAll();
      expect(p.take(old, 3_010)?.t).toBe(3_000);
      expect(p.take(next, 3_010)).toBeNull();
      // Asked for the old claim, answered only after the change: dropped too.
      expect(p.take(old, 3_020)).toBeNull();
      thread.epoch = 2;
      expect(p.take(next, 3_020)).toBeNull();
      thread.answerAll();
      const token = p.take(next, 3_030)!;
      expect(token.s).toBe(`ahead e2 (${aliveMessage(next.role, next.id, next.boot, 3_000)})`);
    }
  });

  test("two machine keys on one thread: each token verifies only as its own key's", async () => {
    const a = machine("presigner key a");
    const b = machine("presigner key b");
    const thread = new SigningThread();
    const pa = new AlivePresigner(a.pair.secretKey, thread);
    const pb = new AlivePresigner(b.pair.secretKey, thread);
    const ta = await takeWhenReady(pa, claimOf(a.keys.id), 4_010);
    const tb = await takeWhenReady(pb, claimOf(b.keys.id), 4_010);
    expect(a.keys.verify(a.keys.id, aliveMessage("main", a.keys.id, BOOT, ta.t), ta.s)).toBe(true);
    b.keys.pin(a.pair.publicKey);
    a.keys.pin(b.pair.publicKey);
    expect(b.keys.verify(a.keys.id, aliveMessage("main", a.keys.id, BOOT, ta.t), ta.s)).toBe(true);
    expect(a.keys.verify(b.keys.id, aliveMessage("main", b.keys.id, BOOT, tb.t), tb.s)).toBe(true);
    expect(a.keys.verify(a.keys.id, aliveMessage("main", a.keys.id, BOOT, tb.t), tb.s)).toBe(false);
    // HeartbeatKeys signs ahead only for its own id.
    expect(a.keys.signedAhead(claimOf(b.keys.id), 4_010)).toBeNull();
  });

  test("a worker that fails hands out nothing, and after a few failures in a row is not started again", async () => {
    const thread = new SigningThread({ source: "throw new Error('broken on purpose');" });
    const p = new AlivePresigner(new Uint8Array(64), thread);
    let now = 5_000;
    await waitFor("the worker given up", () => {
      now += PERIOD;
      expect(p.take(claimOf("m"), now)).toBeNull();
      return !thread.usable;
    });
    expect(p.taken).toBe(0);
  });

  test("a worker that never answers is stopped after the stall limit; after a few in a row it is not started again", async () => {
    const thread = new SigningThread({ source: "self.onmessage = () => {};", stallMs: 30 });
    const p = new AlivePresigner(new Uint8Array(64), thread);
    let now = 6_000;
    let failures = 0;
    await waitFor("the silent worker given up", () => {
      now += PERIOD;
      expect(p.take(claimOf("m"), now)).toBeNull();
      failures++;
      return !thread.usable;
    });
    expect(failures).toBeGreaterThanOrEqual(MAX_FAILURES_IN_A_ROW);
    expect(p.taken).toBe(0);
  });

  test("a loop waking from its own stall does not blame the worker for answers it has not read yet", async () => {
    const clock = new ManualClock(0);
    const thread = new SigningThread({ clock });
    const key = machine("presigner own stall").pair.secretKey;
    const answers: (string | null)[] = [];
    thread.sign(key, "warm", (s) => answers.push(s));
    await waitFor("the worker up", () => answers.length === 1);
    thread.sign(key, "before the stall", (s) => answers.push(s));
    Bun.sleepSync(300); // the loop is held: the worker answers, the answer waits unread
    clock.advance(5_000);
    thread.sign(key, "on waking", (s) => answers.push(s));
    await waitFor("both answered", () => answers.length === 3);
    expect(answers.every((s) => s !== null)).toBe(true);
    expect(thread.usable).toBe(true);
  });

  test("a worker stopped mid-request answers nothing; the next request starts a new one", async () => {
    const { pair, keys } = machine("presigner closed");
    const thread = new SigningThread();
    const p = new AlivePresigner(pair.secretKey, thread);
    expect(p.take(claimOf(keys.id), 7_000)).toBeNull();
    thread.close();
    expect(p.take(claimOf(keys.id), 7_060)).toBeNull();
    const token = await takeWhenReady(p, claimOf(keys.id), 7_110);
    expect(keys.verify(keys.id, aliveMessage("main", keys.id, BOOT, token.t), token.s)).toBe(true);
  });

  test("the signing thread does not keep a process alive", async () => {
    const dir = mkdtempSync(join(tmpdir(), "presigner-"));
    const keysModule = resolve(import.meta.dir, "../../../src/net/heartbeat-keys.ts");
    const script = join(dir, "exit.ts");
    writeFileSync(
      script,
      `import { HeartbeatKeys } from ${JSON.stringify(keysModule)};
import nacl from "tweetnacl";
const keys = new HeartbeatKeys(nacl.sign.keyPair(), { now: () => performance.now() });
const claim = { role: "main", id: keys.id, boot: "b", epoch: 1, periodMs: 50 } as const;
keys.signedAhead(claim, performance.now());
while (keys.signedAhead(claim, performance.now()) === null) await Bun.sleep(10);
console.log("signed ahead");
`,
    );
    const started = performance.now();
    const child = Bun.spawn([process.execPath, script], { cwd: resolve(import.meta.dir, "../../.."), stdout: "pipe", stderr: "pipe" });
    const killer = setTimeout(() => child.kill(), 15_000);
    const code = await child.exited;
    clearTimeout(killer);
    expect(await new Response(child.stdout).text()).toBe("signed ahead\n");
    expect(code).toBe(0);
    expect(performance.now() - started).toBeLessThan(15_000);
  }, 20_000);
});

describe("SignedBeats with tokens signed ahead", () => {
  /** Signs "sig(message)" on the caller's thread and counts it; hands out `ahead` as signed ahead. */
  function signer(ahead: (claim: AliveClaim, now: number) => AliveToken | null, counts = { signed: 0 }): ClaimSigner {
    return {
      sign: (m) => {
        counts.signed++;
        return `sig(${m})`;
      },
      verify: () => true,
      signedAhead: ahead,
    };
  }
  const beats = (s: ClaimSigner) => new SignedBeats({ role: "main", id: "main", boot: BOOT, signer: s, heartbeatMs: PERIOD });

  test("a fresh token signed ahead is sent, and nothing is signed on the heartbeat's thread", () => {
    const counts = { signed: 0 };
    const b = beats(signer((_c, now) => ({ b: BOOT, t: Math.floor(now / PERIOD) * PERIOD, s: "ahead" }), counts));
    for (const now of [1_000, 1_049, 1_050, 1_120]) expect(b.outgoing(1, 1, now).mainToken).toEqual({ b: BOOT, t: Math.floor(now / PERIOD) * PERIOD, s: "ahead" });
    expect(counts.signed).toBe(0);
  });

  const refused: [string, (claim: AliveClaim, now: number) => AliveToken | null][] = [
    ["none ready", () => null],
    ["a stale one", (_c, now) => ({ b: BOOT, t: now - PERIOD, s: "ahead" })],
    ["one for a time still ahead", (_c, now) => ({ b: BOOT, t: now + 1, s: "ahead" })],
    ["one of another boot", (_c, now) => ({ b: "ffffffffffffffff", t: now, s: "ahead" })],
  ];
  for (const [name, ahead] of refused) {
    test(`with ${name}, the server signs a token for now itself`, () => {
      const counts = { signed: 0 };
      const token = beats(signer(ahead, counts)).outgoing(1, 1, 7_013).mainToken;
      expect(token).toEqual({ b: BOOT, t: 7_013, s: `sig(${aliveMessage("main", "main", BOOT, 7_013)})` });
      expect(counts.signed).toBe(1);
    });
  }

  test("a token it holds is kept while fresh unless one signed ahead is newer", () => {
    let ready: AliveToken | null = null;
    const b = beats(signer(() => ready));
    expect(b.outgoing(1, 1, 8_010).mainToken?.t).toBe(8_010);
    ready = { b: BOOT, t: 8_000, s: "older" };
    expect(b.outgoing(1, 1, 8_030).mainToken?.t).toBe(8_010);
    ready = { b: BOOT, t: 8_050, s: "newer" };
    expect(b.outgoing(1, 1, 8_055).mainToken).toEqual(ready);
  });

  test("asks for the claim it sends under: its role, id, boot, period and the heartbeat's epoch", () => {
    const claims: AliveClaim[] = [];
    const b = beats(signer((c) => (claims.push(c), null)));
    b.outgoing(1, 1, 9_000);
    b.outgoing(3, 3, 9_100);
    expect(claims).toEqual([claimOf("main"), claimOf("main", { epoch: 3 })]);
  });

  test("no token signed ahead for a past epoch is ever sent, not even one held or answered late", () => {
    const thread = new HandThread();
    const presigner = new AlivePresigner(new Uint8Array(64), thread);
    const counts = { signed: 0 };
    const b = beats(signer((claim, now) => presigner.take(claim, now), counts));
    const sent: AliveToken[] = [];
    let now = 10_013;
    const beat = (epoch: number) => {
      thread.epoch = epoch;
      sent.push(b.outgoing(epoch, epoch, now).mainToken!);
      now += PERIOD;
    };
    beat(1);
    thread.answerAll();
    for (let i = 0; i < 3; i++) beat(1);
    expect(sent.at(-1)!.s).toStartWith("ahead e1");
    const before = sent.length;
    // The epoch changes with tokens for epoch 1 held, ready and still to be answered.
    for (let i = 0; i < 2; i++) beat(3);
    thread.answerAll();
    for (let i = 0; i < 4; i++) {
      beat(3);
      thread.answerAll();
    }
    const after = sent.slice(before);
    for (const token of after) expect(token.s.startsWith("ahead e1")).toBe(false);
    expect(after.at(-1)!.s).toStartWith("ahead e3");
  });

  test("with Ed25519 keys in steady state, no token is signed on the heartbeat's thread, and every one sent verifies", async () => {
    const { keys } = machine("beats ed25519");
    const onThread = { signed: 0 };
    const sign = keys.sign.bind(keys);
    keys.sign = (message) => (onThread.signed++, sign(message));
    const b = new SignedBeats({ role: "main", id: keys.id, boot: BOOT, signer: keys, heartbeatMs: PERIOD });
    let now = 10_013;
    const beat = () => {
      const token = b.outgoing(1, 1, now).mainToken!;
      expect(now - token.t).toBeLessThan(PERIOD);
      expect(token.t).toBeLessThanOrEqual(now);
      expect(keys.verify(keys.id, aliveMessage("main", keys.id, BOOT, token.t), token.s)).toBe(true);
      now += PERIOD;
    };
    // Warming up: the first tokens are signed here while the worker starts.
    for (let i = 0; i < 5; i++) {
      beat();
      await Bun.sleep(PERIOD);
    }
    onThread.signed = 0;
    for (let i = 0; i < 20; i++) {
      beat();
      await Bun.sleep(PERIOD);
    }
    // Without signing ahead this is one a period: 20. On a loaded machine the worker may fall behind
    // now and then, and the fallback signing here is what it is for (bench/RESULTS.md: 0.6 a second at load 11).
    expect(onThread.signed).toBeLessThan(10);
  });
});
