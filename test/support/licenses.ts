/** Development licenses for tests and the demo, signed with the development vendor key. */
import devKey from "./dev-vendor-key.json";
import { signLicense, type LicenseDocument, type LicenseType } from "../../src/core/license.ts";

export const DEV_VENDOR_SECRET_KEY = new Uint8Array(Buffer.from(devKey.secretKey, "base64"));
export const DEV_VENDOR_PUBLIC_KEY = new Uint8Array(Buffer.from(devKey.publicKey, "base64"));

export function issueDevLicense(opts: { type: LicenseType; holder: string; days?: number | null; now?: number }): LicenseDocument {
  const now = opts.now ?? Date.now();
  const days = opts.days ?? null;
  return signLicense(
    {
      type: opts.type,
      holder: opts.holder,
      issuedAt: new Date(now).toISOString(),
      expiresAt: days === null ? null : new Date(now + days * 86_400_000).toISOString(),
    },
    DEV_VENDOR_SECRET_KEY,
  );
}

export function devLicenseText(opts: Parameters<typeof issueDevLicense>[0]): string {
  return `${JSON.stringify(issueDevLicense(opts), null, 2)}\n`;
}
