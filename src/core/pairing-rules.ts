/**
 * Whom a backup lets pair with it and unpair it (docs/design.md §Pairing): the
 * pure rules behind `/pair`, so the service and the simulator's rogue key
 * holder run the same decisions. Who is asking is what the signed peer
 * handshake proved (machine id) and where the connection came from (TCP
 * address), never what a frame says about itself.
 */
import type { LicenseType } from "./license.ts";

/** What the backup knows when a pairing request arrives. */
export type PairRequestContext = {
  /** This machine's name, for messages. */
  readonly name: string;
  readonly role: string;
  readonly license: LicenseType | null;
  /** The host its setup names as the main; null when none. */
  readonly expectedMainHost: string | null;
  /** The main it is paired with now, or null. */
  readonly pairedWith: string | null;
  /** The requester, as the handshake proved it. */
  readonly fromId: string;
  /** The requester's host (the TCP peer address, without the port). */
  readonly fromHost: string;
  /** The license type the requester sent. */
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
  if (c.expectedMainHost === null) return { code: "NO_MAIN_SET", message: `${c.name} has no main server's address yet: enter this main's address on its setup page first.` };
  if (c.expectedMainHost !== c.fromHost) {
    return { code: "OTHER_MAIN", message: `${c.name} is set up as the backup of the main at ${c.expectedMainHost}, not of ${c.fromHost}.` };
  }
  if (c.pairedWith !== null && c.pairedWith !== c.fromId) {
    return { code: "ALREADY_PAIRED", message: `${c.name} is already the backup of another main (${c.pairedWith}): remove it there first.` };
  }
  return failoverLicenseRefusal("main", c.requesterLicense) ?? failoverLicenseRefusal("backup", c.license);
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
