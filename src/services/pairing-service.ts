/**
 * The pairing exchange on `/pair` (DESIGN.md "Pairing"): the main asks a
 * backup to pair; the backup checks its role, that it was set up for this
 * main, and the main's license, records the pairing and answers with its own
 * license, which the main checks before it records its side. Unpairing is a
 * message too; a backup that misses it drops the pairing when it next hears
 * the main (its heartbeat names no backup, or another). The peer handshake
 * already proved the same network key and each side's machine id.
 */
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import { LICENSE_TYPES, type LicenseType } from "../core/license.ts";
import type { Logger } from "../log.ts";
import { connectSecure, type ConnectionEvents, type SecureConnection, type SecureSocketOptions } from "../net/secure-socket.ts";
import { decodeWireJson, encodeWireJson } from "../core/wire-json.ts";

const frameSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("pair"), name: z.string().max(64), license: z.enum(LICENSE_TYPES).nullable() }),
  z.object({ type: z.literal("accepted"), name: z.string().max(64), license: z.enum(LICENSE_TYPES).nullable() }),
  z.object({ type: z.literal("refused"), code: z.string().max(40), message: z.string().max(400) }),
  z.object({ type: z.literal("unpair") }),
  z.object({ type: z.literal("unpaired") }),
]);
type Frame = z.infer<typeof frameSchema>;

export class PairingRefused extends AppError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** Who the other server is, as the exchange learned it (its license type is what it sent, checked here). */
export type PairedPeer = { peerId: string; peerName: string; peerLicense: LicenseType | null };

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
/** Pairing frames are a few hundred bytes. */
const PAIRING_JSON = { maxBytes: 4096 };

function needsFailoverLicense(who: string, license: LicenseType | null): void {
  if (license !== "server-with-failover") {
    throw new PairingRefused(
      "LICENSE_NO_FAILOVER",
      `The ${who}'s license (${license ?? "none"}) does not allow a backup: both servers need a server-with-failover license.`,
    );
  }
}

function hostOf(address: string): string {
  const at = address.lastIndexOf(":");
  const host = at > 0 ? address.slice(0, at) : address;
  return host.replace(/^\[|\]$/g, "");
}

export class PairingService {
  constructor(
    private readonly side: PairingSide,
    private readonly secure: SecureSocketOptions,
    private readonly log: Logger,
  ) {}

  /** The backup's side of `/pair`. */
  accept(connection: SecureConnection): ConnectionEvents {
    const send = (f: Frame) => connection.send(encodeWireJson(f));
    return {
      message: (payload) => {
        const parsed = frameSchema.safeParse(decodeWireJson(payload, PAIRING_JSON));
        if (!parsed.success) return connection.close(4002, "Not a pairing frame.");
        const frame = parsed.data;
        const peer = connection.peer;
        try {
          if (frame.type === "pair") {
            this.checkRequest(peer.address, peer.machineId, frame.license);
            this.side.acceptMain({ peerId: peer.machineId, peerName: frame.name, peerLicense: frame.license, address: peer.address });
            this.log.info("paired with the main", { main: frame.name, id: peer.machineId, address: peer.address });
            send({ type: "accepted", name: this.side.name(), license: this.side.license() });
          } else if (frame.type === "unpair") {
            if (this.side.pairedWith() === peer.machineId) this.side.dropMain(peer.machineId);
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

  private checkRequest(address: string, peerId: string, license: LicenseType | null): void {
    const name = this.side.name();
    if (this.side.role() !== "backup") {
      throw new PairingRefused("NOT_A_BACKUP", `${name} is not set up as a backup server (its role is ${this.side.role()}): choose "Backup server" on its setup page first.`);
    }
    const expected = this.side.expectedMainHost();
    if (expected === null) throw new PairingRefused("NO_MAIN_SET", `${name} has no main server's address yet: enter this main's address on its setup page first.`);
    if (expected !== hostOf(address)) {
      throw new PairingRefused("OTHER_MAIN", `${name} is set up as the backup of the main at ${expected}, not of ${hostOf(address)}.`);
    }
    const current = this.side.pairedWith();
    if (current !== null && current !== peerId) {
      throw new PairingRefused("ALREADY_PAIRED", `${name} is already the backup of another main (${current}): remove it there first.`);
    }
    needsFailoverLicense("main", license);
    needsFailoverLicense("backup", this.side.license());
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
      return { peerId: connection.peer.machineId, peerName: frame.name, peerLicense: frame.license };
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

  private async exchange(address: string, request: Frame): Promise<{ connection: SecureConnection; answer: Promise<Frame> }> {
    let settle: (f: Frame | Error) => void = () => {};
    const answered = new Promise<Frame | Error>((resolve) => (settle = resolve));
    const connection = await connectSecure(address, "/pair", this.secure, () => ({
      message: (payload) => {
        const parsed = frameSchema.safeParse(decodeWireJson(payload, PAIRING_JSON));
        settle(parsed.success ? parsed.data : new PairingRefused("PAIRING_FAILED", `${address} sent something that is not a pairing answer.`));
      },
      close: (reason) => settle(new PairingRefused("PAIRING_FAILED", `${address} closed the pairing connection${reason ? `: ${reason}` : ""}.`)),
    }));
    connection.send(encodeWireJson(request));
    const timeout = Bun.sleep(ANSWER_TIMEOUT_MS).then(() => new PairingRefused("PAIRING_TIMEOUT", `${address} did not answer the pairing request.`));
    const answer = Promise.race([answered, timeout]).then((f) => {
      if (f instanceof Error) throw f;
      return f;
    });
    return { connection, answer };
  }
}
