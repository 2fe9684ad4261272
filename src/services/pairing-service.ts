/**
 * The pairing exchange on `/pair` (docs/design.md §Pairing): the main asks a backup to pair,
 * sending its vendor-signed license document and the peer port it listens on;
 * the backup checks its role, the main's license (signature, holder, expiry,
 * type), and who answers at the main's address, host and port: it connects
 * there itself and the handshake must prove the same machine as the one
 * asking (core/pairing-rules.ts). A backup whose setup names no main takes the
 * first main that passes, and from then on only that machine until it is
 * removed. It records the pairing and answers with its own signed license,
 * which the main checks the same way before it records its side. Unpairing is
 * a message too, and counts only from the paired main.
 * The peer handshake already proved the same network key and each side's
 * machine key: both sides keep the other's public key, which the heartbeats
 * between them are then sealed under (net/heartbeat-keys.ts), so no other
 * holder of the network key can speak for either server.
 */
import { z } from "zod";
import { AppError } from "../core/errors.ts";
import type { Timers } from "../core/clock.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import { LICENSE_TYPES, type LicenseDocument, type LicenseType } from "../core/license.ts";
import {
  answeredAtRefusal,
  failoverLicenseRefusal,
  hostOfAddress,
  licenseProofRefusal,
  mainAddressToCheck,
  pairRequestRefusal,
  unpairCounts,
  type PairingRefusal,
} from "../core/pairing-rules.ts";
import type { Logger } from "../log.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import { whoAnswers } from "../net/peer-requests.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { encodeWireJson, InvalidWireJson, readWireJson } from "../core/wire-json.ts";
import { systemTimers } from "../net/system-time.ts";

export const pairingFrameSchema = z.discriminatedUnion("type", [
  /**
   * `license` is the type, for older peers' logs only; `licenseDocument` is the proof (checked with
   * the license schema by core/pairing-rules.ts, so a bad one is refused with its reason); `port`
   * is the main's peer port, checked by connecting to it.
   */
  z.object({
    type: z.literal("pair"),
    name: z.string().max(64),
    license: z.enum(LICENSE_TYPES).nullable(),
    licenseDocument: z.unknown().optional(),
    port: z.number().int().min(1).max(65535).optional(),
  }),
  z.object({ type: z.literal("accepted"), name: z.string().max(64), license: z.enum(LICENSE_TYPES).nullable(), licenseDocument: z.unknown().optional() }),
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

/** Who the other server is, as the exchange learned it (its license type is that of the signed document it sent, checked here). */
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
  /** This machine's vendor-signed license, sent as proof; null when it has none. */
  licenseDocument(): LicenseDocument | null;
  /** The vendor key the other server's license must be signed with. */
  vendorPublicKey(): Uint8Array;
  /** Wall-clock ms, for license expiry. */
  now(): number;
  /** Main: the port its peer endpoint listens on (the backup checks who answers there). */
  peerPort(): number;
  /** Backup: the main's address its setup names (only the machine answering there may pair); null when none. */
  expectedMain(): HostPort | null;
  /** The machine id this server is paired with now, or null. */
  pairedWith(): string | null;
  /** That machine's public key (base64) as the pairing proved it; null when not kept (older files). */
  pairedKey(): string | null;
  /** Backup: record the pairing with this main (the core persists it). */
  acceptMain(peer: PairedPeer & { address: string }): void;
  /** Backup: the main removed it. */
  dropMain(peerId: string): void;
};

const ANSWER_TIMEOUT_MS = 5000;

function refuseIf(refusal: PairingRefusal | null): void {
  if (refusal) throw new PairingRefused(refusal.code, refusal.message);
}

/** The machine that answers at `address`, as its handshake proves it; throws when none does. */
export type IdentifyPeer = (address: HostPort) => Promise<{ id: string }>;

export type PairingServiceOptions = {
  /** Who answers at an address (tests); by default a handshake on `/pair` through the PeerNet. */
  identify?: IdentifyPeer;
  /** For the answer's deadline; the system's by default. */
  timers?: Timers;
  /** How the other server's license document is judged: core/pairing-rules.ts's (the simulator remembers its answers: verifying costs milliseconds). */
  checkLicense?: typeof licenseProofRefusal;
};

export class PairingService {
  /** Pairing requests one after the other: two mains asking at once cannot both be first. */
  private pairingQueue: Promise<void> = Promise.resolve();
  private readonly identify: IdentifyPeer;
  private readonly timers: Timers;
  private readonly checkLicense: typeof licenseProofRefusal;

  constructor(
    private readonly side: PairingSide,
    /** Dials the other server (the machine's PeerNet): the exchange and the backup's check of the main's address. */
    private readonly net: PeerDialer,
    private readonly log: Logger,
    options: PairingServiceOptions = {},
  ) {
    this.identify = options.identify ?? (async (address) => ({ id: (await whoAnswers(this.net, address, "/pair", "checked")).machineId }));
    this.timers = options.timers ?? systemTimers;
    this.checkLicense = options.checkLicense ?? licenseProofRefusal;
  }

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
        if (frame.type === "pair") {
          this.pairingQueue = this.pairingQueue.then(() => this.answerPair(connection, frame, send));
        } else if (frame.type === "unpair") {
          if (unpairCounts(this.side.pairedWith(), peer.machineId)) this.side.dropMain(peer.machineId);
          else this.log.warn("unpair request ignored: it does not come from the paired main", { from: peer.address, id: peer.machineId });
          send({ type: "unpaired" });
        } else {
          connection.close(4002, "Unexpected pairing frame.");
        }
      },
      close: () => {},
    };
  }

  /** The backup's answer to one pairing request; never throws (a refusal is the answer). */
  private async answerPair(connection: SecureConnection, frame: Extract<PairingFrame, { type: "pair" }>, send: (f: PairingFrame) => void): Promise<void> {
    const peer = connection.peer;
    try {
      const own = this.side.licenseDocument();
      const proof = frame.licenseDocument as LicenseDocument | undefined;
      refuseIf(this.checkLicense("main", proof, this.side.vendorPublicKey(), { name: frame.name, id: peer.machineId }, this.side.now()));
      const fromHost = hostOfAddress(peer.address);
      const expected = this.side.expectedMain();
      refuseIf(
        pairRequestRefusal({
          name: this.side.name(),
          role: this.side.role(),
          license: own?.type ?? null,
          expectedMainHost: expected?.host ?? null,
          pairedWith: this.side.pairedWith(),
          pairedKey: this.side.pairedKey(),
          fromId: peer.machineId,
          fromKey: Buffer.from(peer.publicKey).toString("base64"),
          fromHost,
          requesterLicense: proof!.type,
        }),
      );
      const at = mainAddressToCheck(expected, fromHost, frame.port);
      if (at === null) throw new PairingRefused("MAIN_NOT_AT_ADDRESS", `The main did not say which port it listens on: update understudy on it.`);
      const address = formatHostPort(at);
      const answered = await this.identify(at).then(
        (who) => who,
        (error: Error) => ({ error: error.message }),
      );
      refuseIf(answeredAtRefusal(this.side.name(), address, answered, peer.machineId));
      this.side.acceptMain({ peerId: peer.machineId, peerName: frame.name, peerLicense: proof!.type, peerKey: peer.publicKey, address });
      this.log.info("paired with the main", { main: frame.name, id: peer.machineId, address });
      send({ type: "accepted", name: this.side.name(), license: own?.type ?? null, licenseDocument: own });
    } catch (error) {
      const e = error instanceof AppError ? error : new PairingRefused("PAIRING_FAILED", (error as Error).message);
      this.log.warn("pairing refused", { from: peer.address, code: e.code, message: e.message });
      send({ type: "refused", code: e.code, message: e.message });
    }
  }

  /** The main's side: asks the backup at `address` to pair. Resolves with who it is; throws PairingRefused saying why not. */
  async pair(at: HostPort): Promise<PairedPeer> {
    const address = formatHostPort(at);
    const own = this.side.licenseDocument();
    // Its own license was checked when it was loaded; the backup checks it again as proof.
    refuseIf(failoverLicenseRefusal("main", own?.type ?? null));
    const request: PairingFrame = { type: "pair", name: this.side.name(), license: own!.type, licenseDocument: own, port: this.side.peerPort() };
    const { connection, answer } = await this.exchange(at, request);
    try {
      const frame = await answer;
      if (frame.type === "refused") throw new PairingRefused(frame.code, frame.message);
      if (frame.type !== "accepted") throw new PairingRefused("PAIRING_FAILED", `${address} answered the pairing request with ${frame.type}.`);
      const proof = frame.licenseDocument as LicenseDocument | undefined;
      refuseIf(this.checkLicense("backup", proof, this.side.vendorPublicKey(), { name: frame.name, id: connection.peer.machineId }, this.side.now()));
      return { peerId: connection.peer.machineId, peerName: frame.name, peerLicense: proof!.type, peerKey: connection.peer.publicKey };
    } finally {
      connection.close(1000, "done");
    }
  }

  /** The main's side: tells the backup it is removed. Best effort: an unreachable backup drops it when it next hears the main. */
  async unpair(at: HostPort): Promise<void> {
    const address = formatHostPort(at);
    try {
      const { connection, answer } = await this.exchange(at, { type: "unpair" });
      await answer.catch(() => undefined);
      connection.close(1000, "done");
    } catch (error) {
      this.log.info("the removed backup was not reachable; it lets go when it next hears this main", { address, message: (error as Error).message });
    }
  }

  private async exchange(at: HostPort, request: PairingFrame): Promise<{ connection: SecureConnection; answer: Promise<PairingFrame> }> {
    const address = formatHostPort(at);
    let settle: (f: PairingFrame | Error) => void = () => {};
    const answered = new Promise<PairingFrame | Error>((resolve) => (settle = resolve));
    const connection = await this.net.dial(at, "/pair", () => ({
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
    const cancel = this.timers.after(ANSWER_TIMEOUT_MS, () => settle(new PairingRefused("PAIRING_TIMEOUT", `${address} did not answer the pairing request.`)));
    const answer = answered.then((f) => {
      cancel();
      if (f instanceof Error) throw f;
      return f;
    });
    return { connection, answer };
  }
}
