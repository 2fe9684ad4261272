/**
 * Whom a backup lets pair with it and unpair it (docs/design.md §Pairing): the pure rules
 * behind `/pair`, so the service and the simulator's rogue key holder run the
 * same decisions. Who is asking is what the signed peer handshake proved
 * (machine id and key), where the connection came from (TCP address), what the
 * vendor signed (the license document) and who answers at the main's address
 * (host and port), never what a frame says about itself.
 */
import { isVendorSigned, licenseDocumentSchema, type LicenseDocument, type LicenseType } from "./license.ts";
import type { HostPort } from "./config.ts";

/** What the backup knows when a pairing request arrives. */
export type PairRequestContext = {
  /** This machine's name, for messages. */
  readonly name: string;
  readonly role: string;
  readonly license: LicenseType | null;
  /** The host its setup names as the main; null when none (then the first main with the key and a failover license pairs). */
  readonly expectedMainHost: string | null;
  /** The main it is paired with now, or null. */
  readonly pairedWith: string | null;
  /** That main's machine public key (base64) as the pairing proved it; null in files from before it was kept. */
  readonly pairedKey?: string | null;
  /** The requester, as the handshake proved it. */
  readonly fromId: string;
  /** Its machine public key (base64), as the handshake proved it. */
  readonly fromKey?: string;
  /** The requester's host (the TCP peer address, without the port). */
  readonly fromHost: string;
  /** The license type of the requester's vendor-signed document (licenseProofRefusal checked it). */
  readonly requesterLicense: LicenseType | null;
};

export type PairingRefusal = { readonly code: string; readonly message: string };

/** Why both servers need a server-with-failover license, or null when `license` is one. */
export function failoverLicenseRefusal(who: string, license: LicenseType | null): PairingRefusal | null {
  if (license === "server-with-failover") return null;
  return {
    code: "LICENSE_NO_FAILOVER",
    message: `The ${who}'s license (${license ?? "none"}) does not allow a backup: both servers need a server-with-failover license.`,
  };
}

/** Null when the backup accepts the request; else why not, in words for the main's log and page. */
export function pairRequestRefusal(c: PairRequestContext): PairingRefusal | null {
  if (c.role !== "backup") {
    return { code: "NOT_A_BACKUP", message: `${c.name} is not set up as a backup server (its role is ${c.role}): choose "Backup server" on its setup page first.` };
  }
  if (c.expectedMainHost !== null && c.expectedMainHost !== c.fromHost) {
    return { code: "OTHER_MAIN", message: `${c.name} is set up as the backup of the main at ${c.expectedMainHost}, not of ${c.fromHost}.` };
  }
  const otherKey = c.pairedKey != null && c.fromKey !== undefined && c.pairedKey !== c.fromKey;
  if (c.pairedWith !== null && (c.pairedWith !== c.fromId || otherKey)) {
    return {
      code: "ALREADY_PAIRED",
      message: `${c.name} is already the backup of another main (${c.pairedWith}): remove it there, or choose "Forget this main" on ${c.name}'s own page.`,
    };
  }
  return failoverLicenseRefusal("main", c.requesterLicense) ?? failoverLicenseRefusal("backup", c.license);
}

/**
 * Why the license document a server sent in the pairing exchange is not proof enough, or null with
 * its terms good: signed by the vendor key, in force at `now` (ms), held by that server (its name or
 * machine id, or "*"), and of a type that allows a backup. `who` is "main" or "backup".
 */
export function licenseProofRefusal(
  who: string,
  sent: unknown,
  vendorPublicKey: Uint8Array,
  holder: { readonly name: string; readonly id: string },
  now: number,
): PairingRefusal | null {
  if (sent === undefined || sent === null) {
    return { code: "LICENSE_PROOF_MISSING", message: `The ${who} sent no signed license document: update understudy on it (both servers need the same version).` };
  }
  const parsed = licenseDocumentSchema.safeParse(sent);
  if (!parsed.success) return { code: "LICENSE_INVALID", message: `The ${who} sent something that is not a license document; pairing refused.` };
  const doc: LicenseDocument = parsed.data;
  if (!isVendorSigned(doc, vendorPublicKey)) {
    return { code: "LICENSE_SIGNATURE", message: `The ${who}'s license was not signed by the understudy vendor key (forged, or changed after signing); pairing refused.` };
  }
  if (doc.expiresAt !== null && Date.parse(doc.expiresAt) <= now) {
    return { code: "LICENSE_EXPIRED", message: `The ${who}'s license expired on ${doc.expiresAt.slice(0, 10)}; pairing refused. Renew it on the ${who}.` };
  }
  if (doc.holder !== "*" && doc.holder !== holder.name && doc.holder !== holder.id) {
    return {
      code: "LICENSE_HOLDER",
      message: `The ${who}'s license is for the machine "${doc.holder}", but the ${who} is "${holder.name}" (${holder.id}); pairing refused.`,
    };
  }
  return failoverLicenseRefusal(who, doc.type);
}

/**
 * Where the backup checks who the main is: the address its setup names (host and port), or,
 * when it names none, the requester's host at the peer port the requester says it listens on.
 * Null when there is no port to check (an older main): then the request is refused.
 */
export function mainAddressToCheck(expectedMain: HostPort | null, fromHost: string, claimedPort: number | undefined): HostPort | null {
  if (expectedMain) return expectedMain;
  return claimedPort === undefined ? null : { host: fromHost, port: claimedPort };
}

/**
 * The port is part of the main's address: the machine answering there (its handshake proves its
 * id) must be the one asking. Another holder of the key on the main's host, at another port, is
 * not the main. `answered` is the proven id, or why nobody answered.
 */
export function answeredAtRefusal(name: string, address: string, answered: { readonly id: string } | { readonly error: string }, fromId: string): PairingRefusal | null {
  if ("error" in answered) {
    return { code: "MAIN_NOT_AT_ADDRESS", message: `${name} could not reach the main at ${address} to check who is asking (${answered.error}); pairing refused.` };
  }
  if (answered.id !== fromId) {
    return { code: "MAIN_NOT_AT_ADDRESS", message: `The machine answering at ${address} (${answered.id}) is not the one asking to pair (${fromId}); pairing refused.` };
  }
  return null;
}

/** An unpair request counts only from the main this backup is paired with; from anyone else it changes nothing. */
export function unpairCounts(pairedWith: string | null, fromId: string): boolean {
  return pairedWith !== null && pairedWith === fromId;
}

/** The host part of "host:port" or "[v6]:port". */
export function hostOfAddress(address: string): string {
  const at = address.lastIndexOf(":");
  const host = at > 0 ? address.slice(0, at) : address;
  return host.replace(/^\[|\]$/g, "");
}
