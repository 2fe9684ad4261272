/**
 * The pairing record of a server (docs/design.md §Pairing): which server it is
 * paired with, whether the main confirmed it and whether a first Data Hub
 * copy is in (core/failover PairingRecord), plus where that server is and its
 * name. One small file in the data dir, written atomically before the core
 * announces anything that depends on it.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { PairingRecord } from "../core/failover/index.ts";
import { InvalidInput } from "../core/errors.ts";
import { LICENSE_TYPES } from "../core/license.ts";
import { writeFileAtomic } from "./atomic-file.ts";

const pairingFileSchema = z.strictObject({
  peerId: z.string().regex(/^[0-9a-f]{16}$/),
  peerName: z.string().max(64),
  address: z.string().max(300),
  /** The license type the other server sent in the exchange (files written before it was kept: null). */
  peerLicense: z.enum(LICENSE_TYPES).nullable().default(null),
  confirmed: z.boolean(),
  hubCopied: z.boolean(),
  /**
   * The other server's machine public key (base64), as the signed pairing exchange proved it: the
   * heartbeats between the two are sealed under it (net/heartbeat-keys.ts). Files written before it
   * was kept: null, and the main pairs again to learn it.
   */
  peerKey: z.base64().nullable().default(null),
});
export type PairingDetails = z.infer<typeof pairingFileSchema>;

type Peer = Pick<PairingDetails, "peerId" | "peerName" | "address" | "peerLicense"> & { peerKey: Uint8Array };

export class PairingFile {
  readonly path: string;
  /** Where and who the server being paired is: set by the exchange just before the core records the pairing. */
  private next: Peer | null = null;

  constructor(dataDir: string) {
    this.path = join(dataDir, "pairing.json");
  }

  details(): PairingDetails | null {
    if (!existsSync(this.path)) return null;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(this.path, "utf8"));
    } catch {
      json = null;
    }
    const parsed = pairingFileSchema.safeParse(json);
    if (!parsed.success) throw new InvalidInput(`${this.path} is damaged. Move it away and pair the servers again on the main's Machines page.`, "data");
    return parsed.data;
  }

  read(): PairingRecord | null {
    const d = this.details();
    return d && { peerId: d.peerId, confirmed: d.confirmed, hubCopied: d.hubCopied };
  }

  /** Names the server the next pairing record is about (address and name are not the core's business). */
  expect(peer: Peer): void {
    this.next = peer;
  }

  write(pairing: PairingRecord | null): void {
    if (pairing === null) {
      rmSync(this.path, { force: true });
      return;
    }
    const known = this.details();
    const about = this.next?.peerId === pairing.peerId ? this.next : known?.peerId === pairing.peerId ? known : null;
    const record: PairingDetails = {
      ...pairing,
      peerName: about?.peerName ?? "",
      address: about?.address ?? "",
      peerLicense: about?.peerLicense ?? null,
      peerKey: about === null ? null : about === this.next ? keyText(this.next.peerKey) : (known?.peerKey ?? null),
    };
    writeFileAtomic(this.path, `${JSON.stringify(record)}\n`, 0o600);
  }

  /** The paired server's machine public key, or null (none paired, or a file from before keys were kept). */
  peerKey(): Uint8Array | null {
    const key = this.details()?.peerKey ?? null;
    return key === null ? null : new Uint8Array(Buffer.from(key, "base64"));
  }

  /**
   * A pairing exchange with the server already paired (the same machine id) proved its key again:
   * keep it, when the record lacks it or holds another. The core writes nothing then (nothing changed for it).
   */
  rememberKey(peerId: string, peerKey: Uint8Array): void {
    const known = this.details();
    if (known === null || known.peerId !== peerId || known.peerKey === keyText(peerKey)) return;
    writeFileAtomic(this.path, `${JSON.stringify({ ...known, peerKey: keyText(peerKey) })}\n`, 0o600);
  }
}

function keyText(key: Uint8Array): string {
  return Buffer.from(key).toString("base64");
}
