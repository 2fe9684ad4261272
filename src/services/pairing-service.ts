/**
 * The pairing exchange on `/pair` (docs/design.md §Pairing): the main asks a
 * backup to pair; the backup checks its role, that it was set up for this
 * main, and the main's license (core/pairing-rules.ts), records the pairing
 * and answers with its own license, which the main checks before it records
 * its side. Unpairing is a message too, and counts only from the paired main.
 * The peer handshake already proved the same network key and each side's
 * machine key: both sides keep the other's public key, which the heartbeats
 * between them are then sealed under (net/heartbeat-keys.ts), so no other
 * holder of the network key can speak for either server.
 */
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import { LICENSE_TYPES, type LicenseType } from "../core/license.ts";
import { failoverLicenseRefusal, hostOfAddress, pairRequestRefusal, unpairCounts } from "../core/pairing-rules.ts";
import type { Logger } from "../log.ts";
import { connectSecure, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "../net/secure-socket.ts";
import { encodeWireJson, InvalidWireJson, readWireJson } from "../core/wire-json.ts";
import { pause } from "../net/system-time.ts";

export const pairingFrameSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("pair"), name: z.string().max(64), license: z.enum(LICENSE_TYPES).nullable() }),
  z.object({ type: z.literal("accepted"), name: z.string().max(64), license: z.enum(LICENSE_TYPES).nullable() }),
  z.object({ type: z.literal("refused"), code: z.string().max(40), message: z.string().max(400) }),
  z.object({ type: z.literal("unpair") }),
  z.object({ type: z.literal("unpaired") }),
]);
export type PairingFrame = z.infer<typeof pairingFrameSchema>;

export class PairingRefused extends AppError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** Something arrived on `/pair` that is not a pairing frame: refused, nothing read from it. */
export class InvalidPairingFrame extends AppError {
  constructor(from: string, why: string, cause?: unknown) {
    super("PAIRING_FRAME", `${from} sent something that is not a pairing frame (${why}); nothing was changed.`, { cause });
  }
}

/** Pairing frames are a few hundred bytes. */
export const MAX_PAIRING_FRAME_BYTES = 4096;

/** The pairing frame in `payload`; throws InvalidPairingFrame (code PAIRING_FRAME) saying why not. */
export function parsePairingFrame(payload: Uint8Array, from: string): PairingFrame {
  let json: unknown;
  try {
    json = readWireJson(payload, { maxBytes: MAX_PAIRING_FRAME_BYTES });
  } catch (error) {
    throw new InvalidPairingFrame(from, error instanceof InvalidWireJson ? error.message.replace(/\.$/, "") : "not JSON", error);
  }
  const parsed = pairingFrameSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidPairingFrame(from, issue ? `${issue.path.join(".") || "frame"}: ${issue.message}` : "schema", parsed.error);
  }
  return parsed.data;
}

/** Who the other server is, as the exchange learned it (its license type is what it sent, checked here). */
export type PairedPeer = {
  peerId: string;
  peerName: string;
  peerLicense: LicenseType | null;
  /** Its machine public key, as the signed handshake proved it: the heartbeats between the two are sealed under it. */
  peerKey: Uint8Array;
};

/** What the exchange needs from this machine. */
export type PairingSide = {
  name(): string;
  role(): string;
  license(): LicenseType | null;
  /** Backup: the host its setup names as the main (only that main may pair); null when none. */
  expectedMainHost(): string | null;
  /** The machine id this server is paired with now, or null. */
  pairedWith(): string | null;
  /** Backup: record the pairing with this main (the core persists it). */
  acceptMain(peer: PairedPeer & { address: string }): void;
  /** Backup: the main removed it. */
  dropMain(peerId: string): void;
};

const ANSWER_TIMEOUT_MS = 5000;

function needsFailoverLicense(who: string, license: LicenseType | null): void {
  const refusal = failoverLicenseRefusal(who, license);
  if (refusal) throw new PairingRefused(refusal.code, refusal.message);
}

export class PairingService {
  constructor(
    private readonly side: PairingSide,
    private readonly secure: SecureSocketOptions,
    private readonly log: Logger,
  ) {}

  /** The backup's side of `/pair`. Anything but a pairing frame closes the connection and changes nothing. */
  accept(connection: SecureConnection): ConnectionEvents {
    const send = (f: PairingFrame) => connection.send(encodeWireJson(f));
    return {
      message: (payload) => {
        const peer = connection.peer;
        let frame: PairingFrame;
        try {
          frame = parsePairingFrame(payload, peer.address);
        } catch (error) {
          this.log.warn("pairing frame refused", { from: peer.address, message: (error as Error).message });
          return connection.close(4002, "Not a pairing frame.");
        }
        try {
          if (frame.type === "pair") {
            const refusal = pairRequestRefusal({
              name: this.side.name(),
              role: this.side.role(),
              license: this.side.license(),
              expectedMainHost: this.side.expectedMainHost(),
              pairedWith: this.side.pairedWith(),
              fromId: peer.machineId,
              fromHost: hostOfAddress(peer.address),
              requesterLicense: frame.license,
            });
            if (refusal) throw new PairingRefused(refusal.code, refusal.message);
            this.side.acceptMain({ peerId: peer.machineId, peerName: frame.name, peerLicense: frame.license, peerKey: peer.publicKey, address: peer.address });
            this.log.info("paired with the main", { main: frame.name, id: peer.machineId, address: peer.address });
            send({ type: "accepted", name: this.side.name(), license: this.side.license() });
          } else if (frame.type === "unpair") {
            if (unpairCounts(this.side.pairedWith(), peer.machineId)) this.side.dropMain(peer.machineId);
            else this.log.warn("unpair request ignored: it does not come from the paired main", { from: peer.address, id: peer.machineId });
            send({ type: "unpaired" });
          } else {
            connection.close(4002, "Unexpected pairing frame.");
          }
        } catch (error) {
          const e = error instanceof AppError ? error : new PairingRefused("PAIRING_FAILED", (error as Error).message);
          this.log.warn("pairing refused", { from: peer.address, code: e.code, message: e.message });
          send({ type: "refused", code: e.code, message: e.message });
        }
      },
      close: () => {},
    };
  }

  /** The main's side: asks the backup at `address` to pair. Resolves with who it is; throws PairingRefused saying why not. */
  async pair(address: string): Promise<PairedPeer> {
    needsFailoverLicense("main", this.side.license());
    const { connection, answer } = await this.exchange(address, { type: "pair", name: this.side.name(), license: this.side.license() });
    try {
      const frame = await answer;
      if (frame.type === "refused") throw new PairingRefused(frame.code, frame.message);
      if (frame.type !== "accepted") throw new PairingRefused("PAIRING_FAILED", `${address} answered the pairing request with ${frame.type}.`);
      needsFailoverLicense("backup", frame.license);
      return { peerId: connection.peer.machineId, peerName: frame.name, peerLicense: frame.license, peerKey: connection.peer.publicKey };
    } finally {
      connection.close(1000, "done");
    }
  }

  /** The main's side: tells the backup it is removed. Best effort: an unreachable backup drops it when it next hears the main. */
  async unpair(address: string): Promise<void> {
    try {
      const { connection, answer } = await this.exchange(address, { type: "unpair" });
      await answer.catch(() => undefined);
      connection.close(1000, "done");
    } catch (error) {
      this.log.info("the removed backup was not reachable; it lets go when it next hears this main", { address, message: (error as Error).message });
    }
  }

  private async exchange(address: string, request: PairingFrame): Promise<{ connection: SecureConnection; answer: Promise<PairingFrame> }> {
    let settle: (f: PairingFrame | Error) => void = () => {};
    const answered = new Promise<PairingFrame | Error>((resolve) => (settle = resolve));
    const connection = await connectSecure(address, "/pair", this.secure, () => ({
      message: (payload) => {
        try {
          settle(parsePairingFrame(payload, address));
        } catch (error) {
          settle(new PairingRefused("PAIRING_FAILED", (error as Error).message));
        }
      },
      close: (reason) => settle(new PairingRefused("PAIRING_FAILED", `${address} closed the pairing connection${reason ? `: ${reason}` : ""}.`)),
    }));
    connection.send(encodeWireJson(request));
    const timeout = pause(ANSWER_TIMEOUT_MS).then(() => new PairingRefused("PAIRING_TIMEOUT", `${address} did not answer the pairing request.`));
    const answer = Promise.race([answered, timeout]).then((f) => {
      if (f instanceof Error) throw f;
      return f;
    });
    return { connection, answer };
  }
}
