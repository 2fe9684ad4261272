/**
 * Pairing checks proofs, not claims (docs/design.md §Pairing), against the real backup
 * executable: a holder of the network key on the main's own host (another
 * port) asks an unpaired backup to pair while the main is off, with a signed
 * failover license, a forged one and an expired one. Each is refused with its
 * reason and the backup stays unpaired; the real main then pairs as before.
 */
import { parseHostPort } from "../../src/core/config.ts";
import { secureDialer } from "../../src/net/peer-net.ts";
import { afterEach, describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { parseNetworkKey } from "../../src/core/keys.ts";
import type { LicenseDocument } from "../../src/core/license.ts";
import { createLogger } from "../../src/log.ts";
import { PairingService, type PairingSide } from "../../src/services/pairing-service.ts";
import { Cluster } from "../support/cluster.ts";
import { DEV_VENDOR_PUBLIC_KEY, issueDevLicense } from "../support/licenses.ts";

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.shutdown();
  cluster = null;
});

/** The key holder's side of the exchange: it says it is the main, listening on `port` of the same host. */
function rogue(license: LicenseDocument, port: number): PairingSide {
  return {
    name: () => "studio-main", role: () => "main", licenseDocument: () => license, vendorPublicKey: () => DEV_VENDOR_PUBLIC_KEY, now: () => Date.now(),
    peerPort: () => port, expectedMain: () => null, pairedWith: () => null, pairedKey: () => null, acceptMain: () => {}, dropMain: () => {},
  };
}

describe("pairing with the real executable, as a holder of the network key", () => {
  test(
    "on the main's host at another port, with a good, a forged or an expired license: refused with the reason; then the real main pairs",
    async () => {
      const c = (cluster = await Cluster.start({ holdBackup: true }));
      await c.kill("main");
      await c.startHeld("backup");
      const networkKey = parseNetworkKey(await Bun.file(c.keyFile).text(), c.keyFile);
      const secure = { networkKey, machine: nacl.sign.keyPair() };
      const quiet = createLogger(() => "json", () => {});
      const attempt = async (license: LicenseDocument) =>
        new PairingService(rogue(license, c.ports.main + 1), secureDialer(secure), quiet).pair(parseHostPort(c.address("backup"))!).then(
          () => ({ code: "PAIRED", message: "" }),
          (error: { code: string; message: string }) => ({ code: error.code, message: error.message }),
        );

      const good = issueDevLicense({ type: "server-with-failover", holder: "*" });
      const upgraded = { ...issueDevLicense({ type: "server", holder: "*" }), type: "server-with-failover" as const };
      const expired = issueDevLicense({ type: "server-with-failover", holder: "*", now: Date.now() - 40 * 86_400_000, days: 30 });
      const answers = [await attempt(good), await attempt(good), await attempt(upgraded), await attempt(expired)];
      expect(answers.map((a) => a.code)).toEqual(["MAIN_NOT_AT_ADDRESS", "MAIN_NOT_AT_ADDRESS", "LICENSE_SIGNATURE", "LICENSE_EXPIRED"]);
      expect(answers[0]!.message).toContain(`could not reach the main at ${c.address("main")}`);
      expect(answers[2]!.message).toContain("not signed by the understudy vendor key");
      expect((await c.status("backup")).failover?.pairing ?? null).toBeNull();

      // The real main comes back and pairs: it answers at its address, so it is the one asking.
      await c.startHeld("main");
      const mainId = (await c.status("main")).id;
      await c.waitStatus("backup", "paired with the real main", (s) => s.failover?.pairing?.peerId === mainId, 20_000);
      // Now paired, the key holder is refused even where the main answers.
      expect((await attempt(good)).code).toMatch(/MAIN_NOT_AT_ADDRESS|ALREADY_PAIRED/);
    },
    90_000,
  );
});
