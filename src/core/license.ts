/**
 * License documents: a small JSON object signed (Ed25519, nacl.sign detached)
 * by the vendor key. The executable carries only the vendor public key; the
 * signing key lives with the vendor (and, for tests, a development pair in test/).
 */
import nacl from "tweetnacl";
import { z } from "zod";
import { AppError, InvalidInput } from "./errors.ts";

export const LICENSE_TYPES = ["standalone", "client", "server", "server-with-failover"] as const;
export type LicenseType = (typeof LICENSE_TYPES)[number];

export const LICENSE_TYPE_LABELS: Record<LicenseType, string> = {
  standalone: "Stand-alone",
  client: "Client",
  server: "Server",
  "server-with-failover": "Server with failover",
};

const isoDate = z.iso.datetime({ offset: true });

/** What the vendor signs. */
export const licenseTermsSchema = z.strictObject({
  type: z.enum(LICENSE_TYPES),
  holder: z.string().min(1).max(128),
  issuedAt: isoDate,
  expiresAt: isoDate.nullable(),
});
export type LicenseTerms = z.infer<typeof licenseTermsSchema>;

export const licenseDocumentSchema = z.strictObject({
  understudyLicense: z.literal(1),
  ...licenseTermsSchema.shape,
  signature: z.base64(),
});
export type LicenseDocument = z.infer<typeof licenseDocumentSchema>;

export class LicenseRejected extends AppError {
  constructor(code: string, message: string) {
    super(code, message, { status: 400 });
    this.name = "LicenseRejected";
  }
}

/** The exact bytes that are signed: fixed field order, so JSON formatting does not matter. */
export function signedBytes(terms: LicenseTerms): Uint8Array {
  const text = ["understudy-license-v1", terms.type, terms.holder, terms.issuedAt, terms.expiresAt ?? ""].join("\n");
  return new TextEncoder().encode(text);
}

export function signLicense(terms: LicenseTerms, vendorSecretKey: Uint8Array): LicenseDocument {
  const signature = nacl.sign.detached(signedBytes(terms), vendorSecretKey);
  return { understudyLicense: 1, ...terms, signature: Buffer.from(signature).toString("base64") };
}

/** Parses a license file's text (or a pasted license) and checks its signature. */
export function readLicense(text: string, vendorPublicKey: Uint8Array, source = "The license"): LicenseDocument {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InvalidInput(`${source} is not a license document: it is not JSON. Paste the whole license file.`, "license");
  }
  const parsed = licenseDocumentSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` (field "${issue.path.join(".")}": ${issue.message})` : "";
    throw new InvalidInput(`${source} is not a valid license document${where}.`, "license");
  }
  const doc = parsed.data;
  if (!isVendorSigned(doc, vendorPublicKey)) {
    throw new LicenseRejected(
      "LICENSE_SIGNATURE",
      `${source} was not signed by the understudy vendor key (or it was changed after signing). Ask your vendor for a new license file.`,
    );
  }
  return doc;
}

/** Whether the vendor key signed exactly these terms. */
export function isVendorSigned(doc: LicenseDocument, vendorPublicKey: Uint8Array): boolean {
  const signature = Buffer.from(doc.signature, "base64");
  return signature.length === nacl.sign.signatureLength && nacl.sign.detached.verify(signedBytes(doc), signature, vendorPublicKey);
}

/** Whether the license is in force for this machine at `now` (ms since epoch); throws why not. */
export function checkLicenseInForce(doc: LicenseTerms, machineName: string, now: number): void {
  if (doc.expiresAt !== null && Date.parse(doc.expiresAt) <= now) {
    throw new LicenseRejected("LICENSE_EXPIRED", `The license expired on ${doc.expiresAt.slice(0, 10)}. Ask your vendor for a renewal.`);
  }
  if (doc.holder !== "*" && doc.holder !== machineName) {
    throw new LicenseRejected(
      "LICENSE_HOLDER",
      `The license is for the machine "${doc.holder}", but this machine is named "${machineName}". Rename the machine (--name) or use its own license.`,
    );
  }
}
