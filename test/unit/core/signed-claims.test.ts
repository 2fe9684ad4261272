/**
 * Epoch certificates and alive tokens (core/signed-claims.ts, core/signed-beats.ts): what a
 * heartbeat's claims turn into at the receiver, table by table, with the attacks of issue 17
 * (a key holder in its own name) as rows.
 */
import { describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { ClaimantTally, CLAIMANT_LOG_EVERY_MS } from "../../../src/core/claimant-tally.ts";
import { fingerprint } from "../../../src/core/keys.ts";
import { SignedBeats } from "../../../src/core/signed-beats.ts";
import { aliveMessage, ClaimJudge, epochMessage, VERIFY_BUDGET_PER_SENDER_PERIOD, type ClaimSigner, type Claims, type EpochCert } from "../../../src/core/signed-claims.ts";
import { ManualClock } from "../../support/clock.ts";
import { HeartbeatKeys } from "../../../src/net/heartbeat-keys.ts";

/** A counting stand-in: a signature names its signer and message. */
function signerOf(self: string, counts = { verify: 0 }): ClaimSigner {
  const sig = (id: string, m: string) => `sig(${id}|${m})`;
  return {
    sign: (m) => sig(self, m),
    verify: (id, m, s) => {
      counts.verify++;
      return s === sig(id, m);
    },
  };
}

const known = { main: "main", backup: "backup" };
const cert = (e: number, by = e % 2 === 1 ? "main" : "backup"): EpochCert => ({ e, s: `sig(${by}|${epochMessage(e, e % 2 === 1 ? "main" : "backup", by)})` });
const token = (role: "main" | "backup", b: string, t: number, by: string = role) => ({ b, t, s: `sig(${by}|${aliveMessage(role, role, b, t)})` });

function client(claims: Partial<Claims>): Claims {
  return { role: "client", state: "follow-main", epoch: 0, activeEpoch: null, msSinceHeardMain: null, ...claims };
}

describe("epoch certificates", () => {
  const cases: [string, Claims, { epoch: number; activeEpoch: number | null; backed: boolean }][] = [
    ["a relayed certificate of the main's epoch", client({ epoch: 3, activeEpoch: 3, epochCert: cert(3) }), { epoch: 3, activeEpoch: 3, backed: true }],
    ["a bare higher epoch (finding 1)", client({ state: "follow-backup", epoch: 4, activeEpoch: 4 }), { epoch: 0, activeEpoch: null, backed: false }],
    ["a real certificate copied onto a higher epoch", client({ state: "follow-backup", epoch: 4, activeEpoch: 4, epochCert: { e: 4, s: cert(3).s } }), { epoch: 0, activeEpoch: null, backed: false }],
    ["a certificate the key holder signed itself", client({ state: "follow-backup", epoch: 4, activeEpoch: 4, epochCert: cert(4, "rogue") }), { epoch: 0, activeEpoch: null, backed: false }],
    ["an even epoch signed by the main (only the backup owns it)", client({ state: "follow-backup", epoch: 4, activeEpoch: 4, epochCert: cert(4, "main") }), { epoch: 0, activeEpoch: null, backed: false }],
    ["a higher epoch beside a real lower certificate", client({ epoch: 9, epochCert: cert(3), activeCert: cert(3) }), { epoch: 3, activeEpoch: null, backed: false }],
    ["following the backup at the main's certified epoch", client({ state: "follow-backup", epoch: 3, activeEpoch: 3, epochCert: cert(3) }), { epoch: 3, activeEpoch: null, backed: false }],
    ["an active epoch with its own certificate", client({ state: "follow-backup", epoch: 5, activeEpoch: 4, epochCert: cert(5), activeCert: cert(4) }), { epoch: 5, activeEpoch: 4, backed: true }],
  ];
  for (const [name, claims, want] of cases) {
    test(name, () => {
      const j = new ClaimJudge(signerOf("backup"), 100).judge("rogue", claims, known, 0);
      expect({ epoch: j.epoch, activeEpoch: j.activeEpoch, backed: j.unbacked === null }).toEqual(want);
    });
  }

  test("a server whose partner is unknown believes no certificate for that partner's epochs", () => {
    const j = new ClaimJudge(signerOf("main"), 100).judge("c1", client({ state: "follow-backup", epoch: 4, activeEpoch: 4, epochCert: cert(4) }), { main: "main", backup: null }, 0);
    expect(j.epoch).toBe(0);
  });

  test("each signature is checked once; a flood of made-up ones is cut off per sender and period", () => {
    const counts = { verify: 0 };
    const judge = new ClaimJudge(signerOf("main", counts), 100);
    for (let i = 0; i < 20; i++) judge.judge("c1", client({ epoch: 3, epochCert: cert(3) }), known, i);
    expect(counts.verify).toBe(1);
    for (let i = 0; i < 50; i++) judge.judge("rogue", client({ epoch: 5, epochCert: { e: 5, s: `made-up-${i}` } }), known, 10);
    expect(counts.verify).toBe(1 + VERIFY_BUDGET_PER_SENDER_PERIOD);
  });

  test("a server's own certificate on its own sealed heartbeat needs no check; the other server's, or one relayed, does", () => {
    const counts = { verify: 0 };
    const judge = new ClaimJudge(signerOf("c1", counts), 100);
    const takeover: Claims = { role: "backup", state: "active", epoch: 4, activeEpoch: 4, msSinceHeardMain: null, epochCert: cert(4) };
    expect(judge.judge("backup", takeover, known, 0, true)).toMatchObject({ epoch: 4, activeEpoch: 4, unbacked: null });
    expect(counts.verify).toBe(0);
    // The main's certificate that the backup carries is the main's claim, not the sender's: checked.
    judge.judge("backup", { ...takeover, state: "idle", epoch: 5, activeEpoch: null, epochCert: cert(5) }, known, 1, true);
    expect(counts.verify).toBe(1);
    // Not sealed by the backup itself (direct false): checked, and a made-up one refused.
    const relayed = new ClaimJudge(signerOf("main", counts), 100);
    expect(relayed.judge("c2", client({ state: "follow-backup", epoch: 4, activeEpoch: 4, epochCert: { e: 4, s: "made-up" } }), known, 0).epoch).toBe(0);
    expect(counts.verify).toBe(2);
  });
});

describe("witness tokens", () => {
  // The backup's clock runs 1000 ms ahead of the main's; the main's heartbeats take 2 ms.
  function backupHeardMain(): ClaimJudge {
    const judge = new ClaimJudge(signerOf("backup"), 100);
    for (const t of [0, 100, 200]) judge.sampleDirect("main", "main", token("main", "boot-m1", t), t + 1000 + 2);
    return judge;
  }
  const witness = (j: ClaimJudge, claims: Partial<Claims>, now: number) => j.judge("c1", client(claims), known, now).witnessMsAgo;

  test("a fresh token of the main counts, aged by the backup's own view of the main's clock", () => {
    const j = backupHeardMain();
    expect(witness(j, { msSinceHeardMain: 5, mainToken: token("main", "boot-m1", 900) }, 1950)).toBe(48);
  });

  test("a client's word without a token, or with a made-up one, proves nothing (and is noted)", () => {
    const j = backupHeardMain();
    const bare = j.judge("rogue", client({ msSinceHeardMain: 0 }), known, 1950);
    expect([bare.witnessMsAgo, bare.unbacked !== null]).toEqual([null, true]);
    const forged = j.judge("rogue", client({ msSinceHeardMain: 0, mainToken: token("main", "boot-m1", 940, "rogue") }), known, 1950);
    expect([forged.witnessMsAgo, forged.unbacked !== null]).toEqual([null, true]);
  });

  test("a recorded token is exactly as old as it is, whatever the client says", () => {
    const j = backupHeardMain();
    expect(witness(j, { msSinceHeardMain: 0, mainToken: token("main", "boot-m1", 200) }, 5000)).toBe(3798);
  });

  test("a token of a boot the backup never heard directly proves nothing", () => {
    const j = backupHeardMain();
    expect(witness(j, { msSinceHeardMain: 0, mainToken: token("main", "boot-other", 4990) }, 5000)).toBeNull();
  });

  test("a client that says it does not hear the main is no witness, token or not", () => {
    const j = backupHeardMain();
    expect(witness(j, { msSinceHeardMain: null, mainToken: token("main", "boot-m1", 200) }, 1210)).toBeNull();
  });
});

describe("SignedBeats", () => {
  test("a server signs its own epoch once, sends its certificate and a token at most once a period", () => {
    const counts = { sign: 0 };
    const base = signerOf("main");
    const signer: ClaimSigner = { ...base, sign: (m) => (counts.sign++, base.sign(m)) };
    const beats = new SignedBeats({ role: "main", id: "main", boot: "boot-m1", signer, heartbeatMs: 100 });
    beats.holds(3);
    beats.holds(3);
    const sent = [0, 30, 60, 99, 100, 150].map((t) => beats.outgoing(3, 3, t));
    expect(sent[0]!.epochCert).toEqual(cert(3));
    expect(new Set(sent.map((f) => f.mainToken!.t))).toEqual(new Set([0, 100]));
    expect(counts.sign).toBe(3);
  });

  test("holding the other server's epoch signs the one this server would claim next, so its takeover signs nothing", () => {
    const counts = { sign: 0 };
    const base = signerOf("backup");
    const signer: ClaimSigner = { ...base, sign: (m) => (counts.sign++, base.sign(m)) };
    const beats = new SignedBeats({ role: "backup", id: "backup", boot: "boot-b1", signer, heartbeatMs: 100 });
    beats.holds(3); // the main's epoch: the backup signs 4 now
    expect(counts.sign).toBe(1);
    // Not sent while the backup names the main's epoch.
    expect(beats.outgoing(3, 3, 0).epochCert).toBeNull();
    expect(counts.sign).toBe(2); // its token
    beats.holds(4); // the takeover
    expect(counts.sign).toBe(2);
    // Its first heartbeat at 4: the certificate signed before, and the token held (it names no epoch).
    expect(beats.outgoing(4, 4, 10)).toMatchObject({ epochCert: cert(4, "backup"), backupToken: { t: 0 } });
    expect(counts.sign).toBe(2);
    beats.holds(5); // the main back at 5: the backup's next is 6
    expect(beats.outgoing(6, 6, 20).epochCert).toEqual(cert(6, "backup"));
  });

  test("a client keeps what proved valid and relays it, never what did not", () => {
    const beats = new SignedBeats({ role: "client", id: "c1", boot: "boot-c1", signer: signerOf("c1"), heartbeatMs: 100 });
    const fromMain = { role: "main" as const, state: "active", epoch: 3, activeEpoch: 3, msSinceHeardMain: 0, epochCert: cert(3), mainToken: token("main", "boot-m1", 10) };
    expect(beats.incoming("main", fromMain, known, "main", 20)).toMatchObject({ epoch: 3, activeEpoch: 3 });
    beats.incoming("rogue", client({ epoch: 5, epochCert: cert(5, "rogue") }), known, "rogue", 21);
    expect(beats.outgoing(3, 3, 30)).toEqual({ epochCert: cert(3), mainToken: token("main", "boot-m1", 10), backupToken: null });
    expect(beats.outgoing(5, null, 30).epochCert).toBeNull();
  });

  test("the claimant is named once a minute with a count, and counted by machine id", () => {
    const beats = new SignedBeats({ role: "backup", id: "backup", boot: "boot-b1", signer: signerOf("backup"), heartbeatMs: 100 });
    const logs = [0, 50, 100, CLAIMANT_LOG_EVERY_MS + 1].map((t) => beats.incoming("rogue", client({ state: "follow-backup", epoch: 7, activeEpoch: 7 }), known, null, t).log);
    expect(logs[0]).toContain("Machine rogue sent a claim it cannot back (epoch 7 without a certificate");
    expect(logs.slice(1, 3)).toEqual([null, null]);
    expect(logs[3]).toContain("sent 3 claims");
    expect(beats.claimants.counts().get("rogue")).toBe(4);
  });
});

describe("ClaimantTally", () => {
  test("past its bound it still counts the total", () => {
    const tally = new ClaimantTally();
    for (let i = 0; i < 300; i++) tally.record(`m${i}`, "x", 0);
    expect([tally.total, tally.counts().size]).toEqual([300, 256]);
  });
});

describe("Ed25519 claims (net/heartbeat-keys.ts)", () => {
  test("signatures verify for the machine itself and pinned peers only", () => {
    const clock = new ManualClock(0);
    const [a, b, c] = [nacl.sign.keyPair(), nacl.sign.keyPair(), nacl.sign.keyPair()];
    const keysA = new HeartbeatKeys(a, clock);
    const keysB = new HeartbeatKeys(b, clock);
    const message = epochMessage(3, "main", fingerprint(a.publicKey));
    const signature = keysA.sign(message);
    expect(signature).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    expect(keysA.verify(keysA.id, message, signature)).toBe(true);
    expect(keysB.verify(keysA.id, message, signature)).toBe(false); // not pinned yet
    keysB.pin(a.publicKey);
    expect(keysB.verify(keysA.id, message, signature)).toBe(true);
    expect(keysB.verify(keysA.id, epochMessage(5, "main", keysA.id), signature)).toBe(false);
    keysB.pin(c.publicKey);
    expect(keysB.verify(fingerprint(c.publicKey), message, signature)).toBe(false);
    expect(keysB.verify(keysA.id, message, "not base64 at all")).toBe(false);
  });
});
