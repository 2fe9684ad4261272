/**
 * The WebSocket upgrade on the peer port carries a ticket that proves the
 * network key, so a machine without the key never gets a WebSocket at all:
 * nothing it sends is buffered, and its refusal costs one HMAC. The connecting
 * machine also names its key's fingerprint, so a machine on another key is
 * told apart (and both logs name both fingerprints) without any handshake.
 *
 * A ticket is an HMAC (under the network key) over the path, the listener's
 * machine id and a challenge the listener hands out on `GET /identity`, plus
 * a fresh nonce of the dialer. The challenge is random per listener and per
 * window of TICKET_WINDOW_MS (the current and the previous one are taken), so
 * a ticket sniffed on the way to the backup, or to another client, opens
 * nothing at the main, a ticket stops working within two windows, and a
 * restart makes every earlier ticket useless (the listener remembers nothing
 * across it, and needs to). Within its window each ticket opens one socket.
 * docs/design.md §Security.
 */
import { z } from "zod";
import type { Clock } from "../core/clock.ts";
import { fingerprint } from "../core/keys.ts";
import { LABELS, bytesEqual, deriveKey, systemRandom, type RandomBytes } from "./crypto.ts";

export const TICKET_HEADER = "x-understudy-ticket";
export const FINGERPRINT_HEADER = "x-understudy-network-key";
const NONCE_BYTES = 16;
const MAC_BYTES = 16;
const TICKET = /^([0-9a-f]{32})\.([0-9a-f]{32})\.([0-9a-f]{32})$/;
/** How long one challenge is current; a ticket made from it is taken for up to twice that. */
export const TICKET_WINDOW_MS = 30_000;
/** Tickets remembered per window: past this, new ones wait for the next window (refused as busy, never replayable). */
export const MAX_TICKETS_PER_WINDOW = 65_536;

/** What a listener says on GET /identity so a dialer can make a ticket for it. */
export const ticketChallengeSchema = z.object({ id: z.string().min(1).max(128), nonce: z.string().regex(/^[0-9a-f]{32}$/) });
export type TicketChallenge = z.infer<typeof ticketChallengeSchema>;

const encoder = new TextEncoder();

function ticketMac(networkKey: Uint8Array, dialerNonce: Uint8Array, path: string, challenge: TicketChallenge): Uint8Array {
  return deriveKey(networkKey, LABELS.upgradeTicket, dialerNonce, encoder.encode(`${path}\n${challenge.id}\n${challenge.nonce}`)).subarray(0, MAC_BYTES);
}

/** Headers for `new WebSocket(url, { headers })` to `path` at the listener that gave `challenge`. */
export function upgradeHeaders(networkKey: Uint8Array, path: string, challenge: TicketChallenge, random: RandomBytes = systemRandom): Record<string, string> {
  const nonce = random(NONCE_BYTES);
  const mac = ticketMac(networkKey, nonce, path, challenge);
  return {
    [TICKET_HEADER]: `${challenge.nonce}.${Buffer.from(nonce).toString("hex")}.${Buffer.from(mac).toString("hex")}`,
    [FINGERPRINT_HEADER]: fingerprint(networkKey),
  };
}

/** "ok", or why the upgrade is refused: the other side's fingerprint when it named another key. */
export type TicketVerdict =
  | { ok: true }
  | { ok: false; why: "other-key"; theirs: string }
  | { ok: false; why: "no-proof" | "replayed" | "stale" | "busy" };

type Window = { index: number; nonce: string; seen: Set<string> };

/** The listener's side: hands out challenges and checks tickets. */
export class UpgradeTickets {
  private readonly ours: string;
  private current: Window;
  private previous: Window | null = null;

  constructor(
    private readonly networkKey: Uint8Array,
    private readonly machineId: string,
    private readonly clock: Clock,
    private readonly random: RandomBytes = systemRandom,
  ) {
    this.ours = fingerprint(networkKey);
    this.current = this.newWindow(this.windowAt(clock.now()));
  }

  /** For GET /identity: what a dialer makes its ticket from now. */
  challenge(): TicketChallenge {
    return { id: this.machineId, nonce: this.turn().nonce };
  }

  check(headers: Headers, path: string): TicketVerdict {
    const theirs = headers.get(FINGERPRINT_HEADER);
    if (theirs !== null && /^[0-9a-f]{16}$/.test(theirs) && theirs !== this.ours) return { ok: false, why: "other-key", theirs };
    const match = TICKET.exec(headers.get(TICKET_HEADER) ?? "");
    if (!match) return { ok: false, why: "no-proof" };
    const [, challengeNonce, dialerNonce, mac] = match as unknown as [string, string, string, string];
    const proven = bytesEqual(Buffer.from(mac, "hex"), ticketMac(this.networkKey, Buffer.from(dialerNonce, "hex"), path, { id: this.machineId, nonce: challengeNonce }));
    if (!proven) return { ok: false, why: "no-proof" };
    this.turn();
    const window = [this.current, this.previous].find((w) => w?.nonce === challengeNonce);
    // A challenge this run never gave (an earlier run's) or one too old: the dialer asks again.
    if (!window) return { ok: false, why: "stale" };
    if (window.seen.has(dialerNonce)) return { ok: false, why: "replayed" };
    if (window.seen.size >= MAX_TICKETS_PER_WINDOW) return { ok: false, why: "busy" };
    window.seen.add(dialerNonce);
    return { ok: true };
  }

  private turn(): Window {
    const index = this.windowAt(this.clock.now());
    if (index !== this.current.index) {
      this.previous = index === this.current.index + 1 ? this.current : null;
      this.current = this.newWindow(index);
    }
    return this.current;
  }

  private windowAt(now: number): number {
    return Math.floor(now / TICKET_WINDOW_MS);
  }

  private newWindow(index: number): Window {
    return { index, nonce: Buffer.from(this.random(NONCE_BYTES)).toString("hex"), seen: new Set() };
  }
}
