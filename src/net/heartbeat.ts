/**
 * Heartbeat datagrams (UDP, every --heartbeat-ms): the body schema, sealing and
 * opening, and the per-sender replay filter. Pure: no sockets, no clock (the
 * Bun adapter is heartbeat-socket.ts).
 *
 * A heartbeat is JSON, sealed with secretbox in the versioned envelope with a
 * random nonce: under the pair key of sender and receiver when the sender
 * knows the receiver's machine key (heartbeat-keys.ts; the sender's public
 * key rides in the header), else under a key derived from the network key.
 * A machine-sealed heartbeat proves which machine sent it; whom a machine
 * then believes is core/heartbeat-trust.ts. A network-sealed one could come
 * from any key holder. Either way a replayed heartbeat never counts
 * (core/freshness.ts: it must echo a stamp the receiver sent recently).
 */
import { readWireJson } from "../core/wire-json.ts";
import { z } from "zod";
import type { BeatBody } from "../core/failover/types.ts";
import { AppError } from "../core/errors.ts";
import nacl from "tweetnacl";
import { deriveHeartbeatKey, systemRandom, type RandomBytes } from "./crypto.ts";
import { FrameKind, frameKind, HEADER_BYTES, MIN_ENVELOPE_BYTES, NONCE_BYTES, openEnvelope, sealEnvelope, WIRE_VERSION } from "./envelope.ts";
import { InvalidHeartbeat, MalformedFrame, UnsealFailed } from "./errors.ts";
import type { HeartbeatKeys } from "./heartbeat-keys.ts";

/** Stays under a typical 1500-byte MTU so a heartbeat is never fragmented. */
export const MAX_HEARTBEAT_BYTES = 1200;

const counter = z.int().nonnegative();
const milliseconds = z.number().finite().nonnegative();

const stampSchema = z.object({
  boot: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
  seq: counter,
  sentAt: z.number().finite(),
});

const lanesSchema = z.object({
  hubEpoch: counter,
  hubSeq: counter,
  logId: z.string().max(64),
  logSeq: counter,
});

/** An Ed25519 signature, base64 (64 bytes). */
const signature = z.string().regex(/^[A-Za-z0-9+/]{86}==$/);

/** core/signed-claims.ts EpochCert: the owning server's signature over (epoch, role, machine id). */
const epochCertSchema = z.object({ e: counter.min(1), s: signature });

/** core/signed-claims.ts AliveToken: a server's signature over (role, id, boot, its clock), once per heartbeat period. */
const aliveTokenSchema = z.object({ b: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/), t: z.number().finite(), s: signature });

/**
 * The core's BeatBody (core/failover/types.ts) plus what the transport adds:
 * id, name, the sender's stamp and the echo of the receiver's (core/freshness.ts)
 * and showFileRevision.
 */
export const heartbeatSchema = z.object({
  /** Sender's machine id (fingerprint of its machine key). */
  id: z.string().regex(/^[0-9a-f]{16}$/),
  role: z.enum(["main", "backup", "client"]),
  state: z.enum(["active", "rejoining", "standby", "isolated", "unpaired", "syncing", "idle", "follow-main", "follow-backup", "follow-none"]),
  /** The highest epoch the sender knows. */
  epoch: counter,
  /** Servers: the epoch they accept Data Hub writes at; clients: the epoch of the server they follow. */
  activeEpoch: counter.nullable(),
  /** This heartbeat: the sender's boot id, sequence within the boot, and clock when sent. */
  stamp: stampSchema,
  /** The stamp of the last heartbeat the sender heard from the receiver: the receiver's proof of freshness. */
  echo: stampSchema.nullable(),
  /** How long the sender held the echoed stamp before sending this: the receiver's round trip is its wait minus this. */
  echoHeldMs: milliseconds.nullable(),
  /** The sender could not count the receiver's last heartbeat (no fresh echo): answer at once. */
  challenge: z.boolean(),
  showFileRevision: counter,
  /** How long ago the sender last heard the main; null when never. The backup's witness check reads it. */
  msSinceHeardMain: milliseconds.nullable(),
  msSinceHeardBackup: milliseconds.nullable(),
  /** Backup only: why it holds back from taking over. */
  condition: z.enum(["main-unreachable-from-backup"]).nullable(),
  /** Backup only, while syncing: 0..1. */
  syncProgress: z.number().min(0).max(1).nullable(),
  /** Servers: the machine id of the server they are paired with. */
  pairedWith: z.string().regex(/^[0-9a-f]{16}$/).nullable(),
  /** Servers: replication lane positions. */
  lanes: lanesSchema.nullable(),
  /** Backup only: whether it holds a first complete copy of the Data Hub state. */
  hubCopied: z.boolean().nullable(),
  /** Local apps connected to the sender's node (the Routing panel); absent from an older sender. */
  localApps: z.number().int().min(0).max(1_000_000).nullable().optional(),
  name: z.string().min(1).max(64),
  /** The sender's network-key fingerprint as it holds the key now: each Machines row shows the key its machine reported (a machine-sealed heartbeat still arrives from a machine whose key changed). Absent from an older sender. */
  keyFp: z.string().regex(/^[0-9a-f]{16}$/).nullable().optional(),
  /** The certificate of `epoch`; absent from an older sender, whose epochs are then not believed. */
  epochCert: epochCertSchema.nullable().optional(),
  /** The certificate of `activeEpoch` when it differs from `epoch`. */
  activeCert: epochCertSchema.nullable().optional(),
  /** The main's latest alive token: its own (main), or relayed (clients) as proof it heard the main. */
  mainToken: aliveTokenSchema.nullable().optional(),
  /** The same for the backup. */
  backupToken: aliveTokenSchema.nullable().optional(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

// Compile-time tie to the failover core: if BeatBody changes, this line stops compiling until the schema follows.
type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const heartbeatCarriesBeatBody: SameShape<Pick<Heartbeat, keyof BeatBody>, BeatBody> = true;
void heartbeatCarriesBeatBody;

const encoder = new TextEncoder();
const tenth = (ms: number | null) => (ms === null ? null : Math.round(ms * 10) / 10);

/** The heartbeat's JSON within `maxBytes`: durations to a tenth of a millisecond, then the name shortened if need be. */
function compactBody(heartbeat: Heartbeat, maxBytes: number): Uint8Array {
  const compact = { ...heartbeat, echoHeldMs: tenth(heartbeat.echoHeldMs), msSinceHeardMain: tenth(heartbeat.msSinceHeardMain), msSinceHeardBackup: tenth(heartbeat.msSinceHeardBackup) };
  let body = encoder.encode(JSON.stringify(compact));
  const excess = body.length - maxBytes;
  if (excess <= 0) return body;
  // The name is only shown on Machines rows: drop characters from its end until they free the excess and the "…" (3 bytes).
  const name = [...compact.name];
  let freed = 0;
  while (name.length > 1 && freed < excess + 3) freed += encoder.encode(JSON.stringify(name.pop())).length - 2;
  return encoder.encode(JSON.stringify({ ...compact, name: `${name.join("")}…` }));
}

/** The sender's Ed25519 public key in a machine-sealed heartbeat's header. */
const SENDER_KEY_BYTES = 32;
const MIN_PEER_DATAGRAM_BYTES = MIN_ENVELOPE_BYTES + SENDER_KEY_BYTES;

/** A machine-sealed heartbeat from a sender whose key this machine may not derive now (too many new senders this second). */
export class HeartbeatSenderBusy extends AppError {
  constructor(from: string) {
    super("HEARTBEAT_BUSY", `${from} sent a heartbeat under a machine key not seen before, over this second's budget for new ones; it is dropped unread.`);
  }
}

/** A machine-sealed heartbeat whose body names another machine than the one whose key sealed it. */
export class HeartbeatNamesAnother extends AppError {
  constructor(from: string, named: string, sealedBy: string) {
    super(
      "HEARTBEAT_INVALID",
      `A heartbeat from ${from} says it comes from machine ${named} but is sealed by machine ${sealedBy}: a machine holding the network key is speaking in another's name. It is dropped.`,
    );
  }
}

/** A heartbeat and the machine whose key sealed it (null: the network key, which every key holder has). */
export type OpenedHeartbeat = { heartbeat: Heartbeat; sealedBy: string | null };

/** A fresh boot id (16 hex digits) for this process start. */
export function newBootId(random: RandomBytes = systemRandom): string {
  return Buffer.from(random(8)).toString("hex");
}

/**
 * Seals and opens heartbeats: under the pair key with the receiver when
 * `keys` knows its machine key, else under the heartbeat key derived once
 * from the network key.
 */
export class HeartbeatCodec {
  private key: Uint8Array;
  private readonly random: RandomBytes;
  private readonly keys: HeartbeatKeys | null;

  constructor(networkKey: Uint8Array, random: RandomBytes = systemRandom, keys: HeartbeatKeys | null = null) {
    this.key = deriveHeartbeatKey(networkKey);
    this.random = random;
    this.keys = keys;
  }

  /** Seals and opens under a new network key from now on (a key saved on a running machine). */
  setNetworkKey(networkKey: Uint8Array): void {
    this.key = deriveHeartbeatKey(networkKey);
  }

  /**
   * The datagram for `heartbeat`, sealed for machine `to` when its key is known. Durations go to a tenth
   * of a millisecond, and a name that would not fit is shortened (a 63-character name beside both
   * certificates and both tokens, under the pair key, came to 1,207 bytes and the throw ended the
   * process). Throws only on our own bugs: a field out of range (ZodError), a datagram too big even so.
   */
  encode(heartbeat: Heartbeat, to: string | null = null): Uint8Array {
    const pairKey = this.keys?.forReceiver(to) ?? null;
    const overhead = pairKey === null ? MIN_ENVELOPE_BYTES : MIN_PEER_DATAGRAM_BYTES;
    const body = compactBody(heartbeatSchema.parse(heartbeat), MAX_HEARTBEAT_BYTES - overhead);
    const datagram =
      pairKey === null ? sealEnvelope(this.key, FrameKind.heartbeat, this.random(NONCE_BYTES), body) : sealForMachine(this.keys!.publicKey, pairKey, this.random(NONCE_BYTES), body);
    if (datagram.length > MAX_HEARTBEAT_BYTES) throw new RangeError(`A heartbeat of ${datagram.length} bytes exceeds ${MAX_HEARTBEAT_BYTES}.`);
    return datagram;
  }

  /** The heartbeat in `datagram` (see `open`). */
  decode(datagram: Uint8Array, from: string): Heartbeat {
    return this.open(datagram, from).heartbeat;
  }

  /**
   * The heartbeat in `datagram` and who sealed it. Throws (each an AppError
   * with a code) MalformedFrame / UnsupportedWireVersion before any crypto,
   * HeartbeatSenderBusy before deriving a new sender's key over budget,
   * UnsealFailed for a foreign or altered datagram, InvalidHeartbeat for a
   * body that does not fit (or names another machine than the key that sealed it).
   */
  open(datagram: Uint8Array, from: string): OpenedHeartbeat {
    const size = datagram.length;
    if (size > MAX_HEARTBEAT_BYTES) throw new MalformedFrame(`${from} sent a ${size}-byte datagram, too big to be a heartbeat.`);
    if (size < MIN_ENVELOPE_BYTES) throw new MalformedFrame(`${from} sent a ${size}-byte datagram, too short to be a heartbeat.`);
    if (frameKind(datagram, from) !== FrameKind.peerHeartbeat) return { heartbeat: this.parse(openEnvelope(this.key, FrameKind.heartbeat, datagram, from), from), sealedBy: null };
    if (size < MIN_PEER_DATAGRAM_BYTES) throw new MalformedFrame(`${from} sent a ${size}-byte datagram, too short to be a machine-sealed heartbeat.`);
    if (this.keys === null) throw new UnsealFailed(from, "A machine-sealed heartbeat");
    const sender = this.keys.forSender(datagram.subarray(HEADER_BYTES, HEADER_BYTES + SENDER_KEY_BYTES));
    if (sender === null) throw new HeartbeatSenderBusy(from);
    const nonceAt = HEADER_BYTES + SENDER_KEY_BYTES;
    const body = nacl.secretbox.open(datagram.subarray(nonceAt + NONCE_BYTES), datagram.subarray(nonceAt, nonceAt + NONCE_BYTES), sender.key);
    if (body === null) throw new UnsealFailed(from, "A machine-sealed heartbeat");
    const heartbeat = this.parse(body, from);
    const sealedBy = sender.id;
    if (heartbeat.id !== sealedBy) throw new HeartbeatNamesAnother(from, heartbeat.id, sealedBy);
    return { heartbeat, sealedBy };
  }

  private parse(body: Uint8Array, from: string): Heartbeat {
    let json: unknown;
    try {
      json = readWireJson(body, { maxBytes: MAX_HEARTBEAT_BYTES });
    } catch (error) {
      throw new InvalidHeartbeat(from, "not JSON", error);
    }
    const parsed = heartbeatSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidHeartbeat(from, issue ? `${issue.path.join(".") || "body"}: ${issue.message}` : "schema", parsed.error);
    }
    return parsed.data;
  }
}

/** version | kind | sender's public key | nonce | box: the envelope with the sender's key after its header. */
function sealForMachine(senderKey: Uint8Array, pairKey: Uint8Array, nonce: Uint8Array, body: Uint8Array): Uint8Array {
  const box = nacl.secretbox(body, nonce, pairKey);
  const out = new Uint8Array(HEADER_BYTES + SENDER_KEY_BYTES + NONCE_BYTES + box.length);
  out[0] = WIRE_VERSION;
  out[1] = FrameKind.peerHeartbeat;
  out.set(senderKey, HEADER_BYTES);
  out.set(nonce, HEADER_BYTES + SENDER_KEY_BYTES);
  out.set(box, HEADER_BYTES + SENDER_KEY_BYTES + NONCE_BYTES);
  return out;
}

/** The core's part of a heartbeat. */
export function beatBody(hb: Heartbeat): BeatBody {
  return {
    role: hb.role,
    state: hb.state,
    epoch: hb.epoch,
    activeEpoch: hb.activeEpoch,
    msSinceHeardMain: hb.msSinceHeardMain,
    msSinceHeardBackup: hb.msSinceHeardBackup,
    condition: hb.condition,
    syncProgress: hb.syncProgress,
    pairedWith: hb.pairedWith,
    lanes: hb.lanes,
    hubCopied: hb.hubCopied,
  };
}
