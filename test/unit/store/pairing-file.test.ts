/**
 * pairing.json keeps the other server's machine key, which the heartbeats
 * between the two servers are sealed under (net/heartbeat-keys.ts).
 */
import { formatHostPort, parseHostPort } from "../../../src/core/config.ts";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import nacl from "tweetnacl";
import { PairingFile } from "../../../src/store/pairing-file.ts";
import { PairingKeeper } from "../../../src/machine/pairing-keeper.ts";
import { createLogger } from "../../../src/log.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "understudy-pairing-file-"));
  dirs.push(dir);
  return dir;
}

const peerKey = nacl.sign.keyPair().publicKey;
const peer = { peerId: "00000000000000bb", peerName: "studio-backup", address: "10.0.0.2:7401", peerLicense: "server-with-failover" as const, peerKey };
const record = { peerId: peer.peerId, confirmed: true, hubCopied: false };

describe("pairing.json and the partner's machine key", () => {
  test("the key the exchange proved is written with the record and read back", () => {
    const file = new PairingFile(dataDir());
    file.expect(peer);
    file.write(record);
    expect(file.peerKey()).toEqual(peerKey);
    // A later record (the first copy is in) keeps it.
    file.write({ ...record, hubCopied: true });
    expect(file.peerKey()).toEqual(peerKey);
  });

  test("a file from before keys were kept reads as no key; pairing again with the same server adds it", () => {
    const dir = dataDir();
    const { peerKey: _, ...old } = { ...peer, ...record };
    writeFileSync(join(dir, "pairing.json"), `${JSON.stringify(old)}\n`);
    const file = new PairingFile(dir);
    expect(file.peerKey()).toBeNull();
    expect(file.read()).toEqual(record);
    file.rememberKey("00000000000000ee", peerKey);
    expect(file.peerKey()).toBeNull();
    file.rememberKey(peer.peerId, peerKey);
    expect(file.peerKey()).toEqual(peerKey);
    expect(file.read()).toEqual(record);
  });

  test("the main pairs again with a backup whose key its file lacks, and leaves one whose key it has", async () => {
    const asked: string[] = [];
    const keeper = (details: ReturnType<PairingFile["details"]>) =>
      new PairingKeeper({
        wanted: () => parseHostPort(peer.address),
        current: () => details,
        exchange: { pair: async (at) => (asked.push(formatHostPort(at)), peer), unpair: async () => {} },
        paired: () => {},
        unpaired: () => {},
        log: createLogger(() => "json", () => {}),
      });
    const base = { ...peer, ...record };
    await keeper({ ...base, peerKey: Buffer.from(peerKey).toString("base64") }).step();
    expect(asked).toEqual([]);
    await keeper({ ...base, peerKey: null }).step();
    expect(asked).toEqual([peer.address]);
  });

  test("asked to pair again (the backup dropped the pairing), the main runs the exchange once more though it holds a pairing", async () => {
    const asked: string[] = [];
    let fail = true;
    const keeper = new PairingKeeper({
      wanted: () => parseHostPort(peer.address),
      current: () => ({ ...peer, ...record, peerKey: Buffer.from(peerKey).toString("base64") }),
      exchange: {
        pair: async (at) => {
          asked.push(formatHostPort(at));
          if (fail) throw new Error("the backup does not answer");
          return peer;
        },
        unpair: async () => {},
      },
      paired: () => {},
      unpaired: () => {},
      log: createLogger(() => "json", () => {}),
      clock: { now: () => clock },
    });
    let clock = 0;
    await keeper.step();
    expect(asked).toEqual([]);
    keeper.pairAgain();
    await keeper.step();
    expect(asked).toHaveLength(1);
    // A failed attempt keeps the request: after the back-off it runs again, and once it succeeds it is done.
    expect(keeper.step()).toBeNull();
    fail = false;
    clock += 2000;
    await keeper.step();
    expect(asked).toHaveLength(2);
    await keeper.step();
    expect(asked).toHaveLength(2);
  });
});
