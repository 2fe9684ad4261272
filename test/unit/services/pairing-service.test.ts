/**
 * The backup's side of /pair against a holder of the network key that is not
 * its main: who asks is what the signed handshake proved (machine id and key,
 * TCP address), what the vendor signed (the license document) and who answers
 * at the main's address, host and port. A request "as the main" from anywhere
 * else, or with a license that is not proof, changes nothing and says why.
 */
import { formatHostPort, type HostPort } from "../../../src/core/config.ts";
import { secureDialer } from "../../../src/net/peer-net.ts";
import { describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { signLicense } from "../../../src/core/license.ts";
import { createLogger } from "../../../src/log.ts";
import type { SecureConnection } from "../../../src/net/secure-socket.ts";
import { PairingService, type PairingFrame, type PairingSide } from "../../../src/services/pairing-service.ts";
import { DEV_VENDOR_PUBLIC_KEY, issueDevLicense } from "../../support/licenses.ts";

type Peer = { machineId: string; address: string; key?: number };
/** The main connects from an ephemeral port; its peer endpoint listens on 7401. */
const MAIN: Peer = { machineId: "00000000000000aa", address: "10.0.0.1:50123" };
/** Another key holder on the main's own host, listening on another port. */
const SAME_HOST: Peer = { machineId: "00000000000000ee", address: "10.0.0.1:50999" };
const ELSEWHERE: Peer = { machineId: "00000000000000ef", address: "10.0.0.9:50111" };
const failover = () => issueDevLicense({ type: "server-with-failover", holder: "studio-main" });
const pair = (licenseDocument: unknown = failover(), port = 7401): PairingFrame => ({ type: "pair", name: "studio-main", license: "server-with-failover", licenseDocument, port });

/** A backup whose setup names `expectedMain` (or none); `answersAt` is who the handshake proves at each address. */
function backup(options: { pairedWith?: string | null; expectedMain?: string | null; answersAt?: Record<string, string> } = {}) {
  const changes: string[] = [];
  let paired = { id: options.pairedWith ?? null, key: options.pairedWith ? keyOf(0) : null };
  const expected = options.expectedMain === undefined ? "10.0.0.1:7401" : options.expectedMain;
  const answersAt = options.answersAt ?? { "10.0.0.1:7401": MAIN.machineId };
  const side: PairingSide = {
    name: () => "studio-backup",
    role: () => "backup",
    licenseDocument: () => issueDevLicense({ type: "server-with-failover", holder: "studio-backup" }),
    vendorPublicKey: () => DEV_VENDOR_PUBLIC_KEY,
    now: () => Date.now(),
    peerPort: () => 7402,
    expectedMain: () => (expected ? { host: expected.slice(0, expected.lastIndexOf(":")), port: Number(expected.slice(expected.lastIndexOf(":") + 1)) } : null),
    pairedWith: () => paired.id,
    pairedKey: () => paired.key,
    acceptMain: (peer) => {
      changes.push(`accept ${peer.peerId} at ${peer.address}`);
      paired = { id: peer.peerId, key: Buffer.from(peer.peerKey).toString("base64") };
    },
    dropMain: (id) => void changes.push(`drop ${id}`),
  };
  const identify = async (at: HostPort) => {
    const id = answersAt[formatHostPort(at)];
    if (!id) throw new Error("connection refused");
    return { id };
  };
  const service = new PairingService(side, secureDialer({ networkKey: nacl.randomBytes(32), machine: nacl.sign.keyPair() }), createLogger(() => "json", () => {}), { identify });
  /** One frame from `peer` on a fresh connection; resolves with what the backup answered. */
  const ask = (peer: Peer, frame: PairingFrame): Promise<PairingFrame> =>
    new Promise((resolve) => {
      const connection = {
        peer: { machineId: peer.machineId, address: peer.address, publicKey: keyBytes(peer.key ?? 0) },
        open: true,
        send: (payload: Uint8Array) => (resolve(JSON.parse(new TextDecoder().decode(payload))), true),
        sendSealed: () => true,
        sendBulk: () => true,
        close: (code?: number) => resolve({ type: "refused", code: `closed ${code}`, message: "" }),
      } satisfies SecureConnection;
      service.accept(connection).message(new TextEncoder().encode(JSON.stringify(frame)));
    });
  return { changes, ask };
}

const keyBytes = (n: number) => new Uint8Array(32).fill(n);
const keyOf = (n: number) => Buffer.from(keyBytes(n)).toString("base64");

describe("pairing: only the paired main counts", () => {
  test("an unpair request from another machine is answered but changes nothing; from the paired main it unpairs", async () => {
    const b = backup({ pairedWith: MAIN.machineId });
    expect(await b.ask(ELSEWHERE, { type: "unpair" })).toEqual({ type: "unpaired" });
    expect(await b.ask({ machineId: ELSEWHERE.machineId, address: MAIN.address }, { type: "unpair" })).toEqual({ type: "unpaired" });
    expect(b.changes).toEqual([]);
    await b.ask(MAIN, { type: "unpair" });
    expect(b.changes).toEqual([`drop ${MAIN.machineId}`]);
  });

  test("the main with a signed failover license pairs; the backup records the address it checked, and answers with its own license", async () => {
    const b = backup();
    const answer = await b.ask(MAIN, pair());
    expect(answer).toMatchObject({ type: "accepted", name: "studio-backup", licenseDocument: { type: "server-with-failover", holder: "studio-backup" } });
    expect(b.changes).toEqual([`accept ${MAIN.machineId} at 10.0.0.1:7401`]);
    // Asked twice (the main re-pairs after a restart): the same answer.
    expect(await b.ask(MAIN, pair())).toMatchObject({ type: "accepted" });
  });

  test("a request from another host, or from another machine while paired, is refused and changes nothing", async () => {
    const unpaired = backup();
    expect(await unpaired.ask(ELSEWHERE, pair())).toMatchObject({ type: "refused", code: "OTHER_MAIN" });
    expect(unpaired.changes).toEqual([]);

    const paired = backup({ pairedWith: MAIN.machineId });
    expect(await paired.ask({ machineId: ELSEWHERE.machineId, address: MAIN.address }, pair())).toMatchObject({ type: "refused", code: "ALREADY_PAIRED" });
    // The paired main's id with another machine key is not that main.
    expect(await paired.ask({ ...MAIN, key: 9 }, pair())).toMatchObject({ type: "refused", code: "ALREADY_PAIRED" });
    expect(paired.changes).toEqual([]);
  });
});

describe("pairing as an attacker with the network key", () => {
  test("a key holder on the main's host at another port cannot pair an unpaired backup; the real main still can", async () => {
    const b = backup();
    const answer = await b.ask(SAME_HOST, pair(issueDevLicense({ type: "server-with-failover", holder: "*" }), 50999));
    expect(answer).toMatchObject({ type: "refused", code: "MAIN_NOT_AT_ADDRESS" });
    expect((answer as { message: string }).message).toContain(`The machine answering at 10.0.0.1:7401 (${MAIN.machineId}) is not the one asking to pair (${SAME_HOST.machineId})`);
    expect(b.changes).toEqual([]);
    expect(await b.ask(MAIN, pair())).toMatchObject({ type: "accepted" });
  });

  test("with the main switched off, a key holder taking its host is refused: nobody it could be answers at the main's port", async () => {
    const b = backup({ answersAt: {} });
    expect(await b.ask(SAME_HOST, pair())).toMatchObject({ type: "refused", code: "MAIN_NOT_AT_ADDRESS", message: expect.stringContaining("could not reach the main at 10.0.0.1:7401") });
    expect(b.changes).toEqual([]);
  });

  test("a forged license is refused with the reason: changed after signing, or signed with another key", async () => {
    const b = backup();
    const upgraded = { ...issueDevLicense({ type: "server", holder: "studio-main" }), type: "server-with-failover" };
    const selfSigned = signLicense({ type: "server-with-failover", holder: "studio-main", issuedAt: new Date().toISOString(), expiresAt: null }, nacl.sign.keyPair().secretKey);
    for (const forged of [upgraded, selfSigned]) {
      const answer = await b.ask(MAIN, pair(forged));
      expect(answer).toMatchObject({ type: "refused", code: "LICENSE_SIGNATURE" });
      expect((answer as { message: string }).message).toContain("not signed by the understudy vendor key");
    }
    expect(await b.ask(MAIN, pair({ understudyLicense: 1, type: "server-with-failover" }))).toMatchObject({ type: "refused", code: "LICENSE_INVALID" });
    expect(b.changes).toEqual([]);
  });

  test("an expired license, another machine's, one without failover, or none at all is refused with the reason", async () => {
    const b = backup();
    const expired = issueDevLicense({ type: "server-with-failover", holder: "studio-main", now: Date.now() - 40 * 86_400_000, days: 30 });
    const cases: [unknown, string, string][] = [
      [expired, "LICENSE_EXPIRED", "license expired on"],
      [issueDevLicense({ type: "server-with-failover", holder: "other-studio" }), "LICENSE_HOLDER", `is for the machine "other-studio"`],
      [issueDevLicense({ type: "server", holder: "studio-main" }), "LICENSE_NO_FAILOVER", "does not allow a backup"],
      [undefined, "LICENSE_PROOF_MISSING", "sent no signed license document"],
    ];
    for (const [doc, code, words] of cases) {
      const frame: PairingFrame = doc === undefined ? { type: "pair", name: "studio-main", license: "server-with-failover", port: 7401 } : pair(doc);
      const answer = await b.ask(MAIN, frame);
      expect(answer).toMatchObject({ type: "refused", code });
      expect((answer as { message: string }).message).toContain(words);
    }
    // A license bound to the machine id (not the name) is good.
    expect(await b.ask(MAIN, pair(issueDevLicense({ type: "server-with-failover", holder: MAIN.machineId })))).toMatchObject({ type: "accepted" });
  });

  test("a backup that names no main takes the first main that proves itself at the port it names, then only that machine", async () => {
    const b = backup({ expectedMain: null, answersAt: { "10.0.0.9:7401": ELSEWHERE.machineId, "10.0.0.1:7401": MAIN.machineId } });
    // Names a port where another machine answers: refused.
    expect(await b.ask(SAME_HOST, pair(issueDevLicense({ type: "server-with-failover", holder: "*" }), 7401))).toMatchObject({ code: "MAIN_NOT_AT_ADDRESS" });
    expect(await b.ask(ELSEWHERE, pair(issueDevLicense({ type: "server-with-failover", holder: "*" }), 7401))).toMatchObject({ type: "accepted" });
    expect(b.changes).toEqual([`accept ${ELSEWHERE.machineId} at 10.0.0.9:7401`]);
    expect(await b.ask(MAIN, pair())).toMatchObject({ type: "refused", code: "ALREADY_PAIRED" });
    expect(b.changes).toHaveLength(1);
  });

  test("two requests at once: only one is first", async () => {
    const b = backup({ expectedMain: null, answersAt: { "10.0.0.9:7401": ELSEWHERE.machineId, "10.0.0.1:7401": MAIN.machineId } });
    const license = issueDevLicense({ type: "server-with-failover", holder: "*" });
    const answers = await Promise.all([b.ask(ELSEWHERE, pair(license)), b.ask(MAIN, pair(license))]);
    expect(answers.map((a) => a.type)).toEqual(["accepted", "refused"]);
    expect(b.changes).toHaveLength(1);
  });
});

