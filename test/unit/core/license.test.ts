import { describe, expect, test } from "bun:test";
import nacl from "tweetnacl";
import { checkLicenseInForce, readLicense, signLicense } from "../../../src/core/license.ts";
import { DEV_VENDOR_PUBLIC_KEY, DEV_VENDOR_SECRET_KEY, devLicenseText, issueDevLicense } from "../../support/licenses.ts";

const NOW = Date.parse("2026-11-25T12:00:00Z");

describe("license documents", () => {
  test("a development license reads back with its terms", () => {
    const doc = readLicense(devLicenseText({ type: "server-with-failover", holder: "*", days: 30, now: NOW }), DEV_VENDOR_PUBLIC_KEY);
    expect(doc.type).toBe("server-with-failover");
    expect(doc.holder).toBe("*");
    expect(doc.expiresAt).toBe("2026-12-25T12:00:00.000Z");
  });

  const good = issueDevLicense({ type: "client", holder: "render-1", days: 10, now: NOW });
  const cases: [string, string, string][] = [
    ["not JSON", "hello", "not JSON"],
    ["not an object of the right shape", JSON.stringify({ hello: 1 }), "not a valid license document"],
    ["unknown type", JSON.stringify({ ...good, type: "platinum" }), 'field "type"'],
    ["changed after signing", JSON.stringify({ ...good, holder: "render-2" }), "not signed by the understudy vendor key"],
    ["signed by another key", JSON.stringify(signLicense(good, nacl.sign.keyPair().secretKey)), "not signed by the understudy vendor key"],
    ["short signature", JSON.stringify({ ...good, signature: "AAAA" }), "not signed"],
    ["extra field", JSON.stringify({ ...good, seats: 99 }), "not a valid license document"],
  ];
  for (const [name, text, message] of cases) {
    test(`refuses a license that is ${name}`, () => {
      expect(() => readLicense(text, DEV_VENDOR_PUBLIC_KEY)).toThrow(message);
    });
  }

  test("the signature covers the terms, not the JSON layout", () => {
    const compact = JSON.stringify(good);
    expect(readLicense(compact, DEV_VENDOR_PUBLIC_KEY).holder).toBe("render-1");
    expect(signLicense(good, DEV_VENDOR_SECRET_KEY).signature).toBe(good.signature);
  });

  test("expiry and holder are checked against the machine and the time", () => {
    expect(() => checkLicenseInForce(good, "render-1", NOW)).not.toThrow();
    expect(() => checkLicenseInForce(good, "render-1", NOW + 11 * 86_400_000)).toThrow("expired on 2026-12-05");
    expect(() => checkLicenseInForce(good, "render-2", NOW)).toThrow('for the machine "render-1"');
    const forever = issueDevLicense({ type: "server", holder: "*", now: NOW });
    expect(() => checkLicenseInForce(forever, "anything", NOW + 1e12)).not.toThrow();
  });
});
