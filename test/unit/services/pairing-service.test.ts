/**
 * The backup's side of /pair against a holder of the network key that is not
 * its main: who asks is what the signed handshake proved (machine id, TCP
 * address), so a request "as the main" from anywhere else changes nothing.
 */
import { describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { createLogger } from "../../../src/log.ts";
import type { SecureConnection } from "../../../src/net/secure-socket.ts";
import { PairingService, type PairingFrame, type PairingSide } from "../../../src/services/pairing-service.ts";

const MAIN = { machineId: "00000000000000aa", address: "10.0.0.1:7401" };
const ROGUE = { machineId: "00000000000000ee", address: "10.0.0.9:7401" };
const license = "server-with-failover" as const;

function backup(pairedWith: string | null) {
  const changes: string[] = [];
  const side: PairingSide = {
    name: () => "studio-backup", role: () => "backup", license: () => license, expectedMainHost: () => "10.0.0.1", pairedWith: () => pairedWith,
    acceptMain: (peer) => void changes.push(`accept ${peer.peerId}`), dropMain: (id) => void changes.push(`drop ${id}`),
  };
  const service = new PairingService(side, { networkKey: nacl.randomBytes(32), machine: nacl.sign.keyPair() }, createLogger(() => "json", () => {}));
  /** One frame from `peer` on a fresh connection; returns what the backup answered. */
  const ask = (peer: { machineId: string; address: string }, frame: PairingFrame): PairingFrame[] => {
    const answers: PairingFrame[] = [];
    const connection = {
      peer: { ...peer, publicKey: new Uint8Array(32) }, open: true,
      send: (payload: Uint8Array) => (answers.push(JSON.parse(new TextDecoder().decode(payload))), true),
      sendSealed: () => true, sendBulk: () => true, close: () => {},
    } satisfies SecureConnection;
    service.accept(connection).message(new TextEncoder().encode(JSON.stringify(frame)));
    return answers;
  };
  return { changes, ask };
}

describe("pairing: only the paired main counts", () => {
  test("an unpair request from another machine is answered but changes nothing; from the paired main it unpairs", () => {
    const b = backup(MAIN.machineId);
    expect(b.ask(ROGUE, { type: "unpair" })).toEqual([{ type: "unpaired" }]);
    expect(b.ask({ machineId: ROGUE.machineId, address: MAIN.address }, { type: "unpair" })).toEqual([{ type: "unpaired" }]);
    expect(b.changes).toEqual([]);
    b.ask(MAIN, { type: "unpair" });
    expect(b.changes).toEqual([`drop ${MAIN.machineId}`]);
  });

  test("a pairing request from another address, or from another machine while paired, is refused and changes nothing", () => {
    const unpaired = backup(null);
    const [answer] = unpaired.ask(ROGUE, { type: "pair", name: "studio-main", license });
    expect(answer).toMatchObject({ type: "refused", code: "OTHER_MAIN" });
    expect(unpaired.changes).toEqual([]);

    const paired = backup(MAIN.machineId);
    const [again] = paired.ask({ machineId: ROGUE.machineId, address: MAIN.address }, { type: "pair", name: "studio-main", license });
    expect(again).toMatchObject({ type: "refused", code: "ALREADY_PAIRED" });
    expect(paired.changes).toEqual([]);
    paired.ask(MAIN, { type: "pair", name: "studio-main", license });
    expect(paired.changes).toEqual([`accept ${MAIN.machineId}`]);
  });
});
