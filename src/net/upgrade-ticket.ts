/**
 * The WebSocket upgrade on the peer port carries a ticket that proves the
 * network key (an HMAC over a fresh nonce and the path), so a machine without
 * the key never gets a WebSocket at all: nothing it sends is buffered, and its
 * refusal costs one HMAC. The connecting machine also names its key's
 * fingerprint, so a machine on another key is told apart (and both logs name
 * both fingerprints) without any handshake.
 *
 * A ticket seen before is refused; the last MAX_REMEMBERED_TICKETS are kept.
 * A replayed older ticket only buys a connection that must still pass the
 * handshake, under the pending-connection caps.
 */
import { fingerprint } from "../core/keys.ts";
import { LABELS, bytesEqual, deriveKey, systemRandom, type RandomBytes } from "./crypto.ts";

export const TICKET_HEADER = "x-understudy-ticket";
export const FINGERPRINT_HEADER = "x-understudy-network-key";
const NONCE_BYTES = 16;
const MAC_BYTES = 16;
const TICKET = /^([0-9a-f]{32})\.([0-9a-f]{32})$/;
export const MAX_REMEMBERED_TICKETS = 65_536;

const encoder = new TextEncoder();

function ticketMac(networkKey: Uint8Array, nonce: Uint8Array, path: string): Uint8Array {
  return deriveKey(networkKey, LABELS.upgradeTicket, nonce, encoder.encode(path)).subarray(0, MAC_BYTES);
}

/** Headers for `new WebSocket(url, { headers })` to `path`. */
export function upgradeHeaders(networkKey: Uint8Array, path: string, random: RandomBytes = systemRandom): Record<string, string> {
  const nonce = random(NONCE_BYTES);
  const mac = ticketMac(networkKey, nonce, path);
  return { [TICKET_HEADER]: `${Buffer.from(nonce).toString("hex")}.${Buffer.from(mac).toString("hex")}`, [FINGERPRINT_HEADER]: fingerprint(networkKey) };
}

/** "ok", or why the upgrade is refused: the other side's fingerprint when it named another key. */
export type TicketVerdict = { ok: true } | { ok: false; why: "other-key"; theirs: string } | { ok: false; why: "no-proof" | "replayed" };

export class UpgradeTickets {
  private readonly seen = new Set<string>();
  private readonly ours: string;

  constructor(private readonly networkKey: Uint8Array) {
    this.ours = fingerprint(networkKey);
  }

  check(headers: Headers, path: string): TicketVerdict {
    const theirs = headers.get(FINGERPRINT_HEADER);
    if (theirs !== null && /^[0-9a-f]{16}$/.test(theirs) && theirs !== this.ours) return { ok: false, why: "other-key", theirs };
    const match = TICKET.exec(headers.get(TICKET_HEADER) ?? "");
    if (!match) return { ok: false, why: "no-proof" };
    const nonce = Buffer.from(match[1]!, "hex");
    if (!bytesEqual(Buffer.from(match[2]!, "hex"), ticketMac(this.networkKey, nonce, path))) return { ok: false, why: "no-proof" };
    if (this.seen.has(match[1]!)) return { ok: false, why: "replayed" };
    if (this.seen.size >= MAX_REMEMBERED_TICKETS) this.seen.delete(this.seen.values().next().value!);
    this.seen.add(match[1]!);
    return { ok: true };
  }
}
