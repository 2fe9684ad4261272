/**
 * Secure WebSocket connections between machines (and from local apps to their
 * node): the dialer's half of the handshake travels in the upgrade request, the
 * listener's half is the socket's first frame (handshake.ts), then every frame
 * is sealed on the connection's SecureChannel. Broadcast frames (sealed once for many
 * subscribers) pass through as they are and are opened by the receiver.
 * This is the only place that knows both the handshake and Bun's WebSocket API.
 */
import type { ServerWebSocket, WebSocketHandler } from "bun";
import type { Timers } from "../core/clock.ts";
import type { AppError } from "../core/errors.ts";
import { systemTimers } from "./system-time.ts";
import type { SecureChannel, AuthenticatedPeer } from "./channel.ts";
import { FrameKind, frameKind } from "./envelope.ts";
import { z } from "zod";
import { fingerprint } from "../core/keys.ts";
import { HandshakeFailed, NetworkKeyMismatch, PeerRefused } from "./errors.ts";
import { CHALLENGE_WINDOW_MS, upgradeChallengeSchema, type UpgradeChallenge } from "./upgrade-challenge.ts";
import { systemClock } from "./system-time.ts";
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, HandshakeInitiator } from "./handshake.ts";

export type SecureSocketOptions = {
  networkKey: Uint8Array;
  machine: { publicKey: Uint8Array; secretKey: Uint8Array };
  handshakeTimeoutMs?: number;
  /** The handshake deadline runs on these (default: the system's). */
  timers?: Timers;
};

/** One authenticated connection, whichever side opened it. */
export interface SecureConnection {
  readonly peer: AuthenticatedPeer;
  /** Seals `payload` on this connection's channel and sends it. False when the connection is gone. */
  send(payload: Uint8Array): boolean;
  /** Sends bytes already sealed (a broadcast frame). */
  sendSealed(frame: Uint8Array): boolean;
  /** Seals `head` + `payload` (an asset chunk, up to 1 MiB, and its small header) on the AES-GCM bulk lane and sends it. False when the connection is gone. */
  sendBulk(payload: Uint8Array, head?: Uint8Array): boolean;
  close(code?: number, reason?: string): void;
  readonly open: boolean;
  /** Stops reading from the peer (it sees TCP backpressure) until `resumeReading`; frames already read still arrive. Listener sockets only. */
  pauseReading?(): void;
  resumeReading?(): void;
}

/** Publishes already-sealed bytes to every socket subscribed to `topic` (Bun's native `server.publish`). */
export type PublishSealed = (topic: string, frame: Uint8Array) => number;

/** A server-side connection that can join Bun topics: one `publish` then reaches all members without a copy per socket in JS. */
export interface TopicMember extends SecureConnection {
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Publishes `frame` (sealed once) to every subscriber of `topic`; false when this endpoint cannot publish. */
  publishSealed(topic: string, frame: Uint8Array): boolean;
}

export function isTopicMember(connection: SecureConnection): connection is TopicMember {
  return typeof (connection as Partial<TopicMember>).publishSealed === "function";
}

export type ConnectionEvents = {
  /** A channel frame, opened. */
  message(payload: Uint8Array): void;
  /** A broadcast frame, still sealed (the hub's epoch key opens it). */
  broadcast?(frame: Uint8Array): void;
  /** A bulk-lane frame, opened. Without this handler a bulk frame closes the connection as malformed. */
  bulk?(payload: Uint8Array): void;
  /** `code` is the WebSocket close code when one was sent (CLOSE_NETWORK_KEY_CHANGED tells a re-key from a break). */
  close(reason: string, code?: number): void;
};

/** 4xxx close codes: the reason text is what the other side logs and shows. */
export const CLOSE_HANDSHAKE_FAILED = 4001;
export const CLOSE_BAD_FRAME = 4002;
export const CLOSE_GOING_AWAY = 1001;
/**
 * Closed because a network key was saved on one side (docs/design.md §Security): not a broken link. The
 * other side dials again (under its own key, so a real difference shows as a refusal) and leaves the
 * decision about that server to heartbeats.
 */
export const CLOSE_NETWORK_KEY_CHANGED = 4010;
export const NETWORK_KEY_CHANGED_REASON = "The network key changed; reconnect with the new one.";

type ServerSocketData = {
  address: string;
  path: string;
  /** The channel of this authenticated connection and the listener's proof, its first frame (handshake.ts answerUpgrade). */
  channel: SecureChannel;
  reply: Uint8Array;
  connection: ServerConnection | null;
  events: ConnectionEvents | null;
  publish: PublishSealed | null;
};

class ServerConnection implements TopicMember {
  constructor(
    private readonly ws: ServerWebSocket<ServerSocketData>,
    readonly channel: SecureChannel,
  ) {}
  get peer() {
    return this.channel.peer;
  }
  get open() {
    return this.ws.readyState === 1;
  }
  send(payload: Uint8Array): boolean {
    if (!this.open) return false;
    return this.ws.sendBinary(this.channel.seal(payload)) >= 0;
  }
  sendSealed(frame: Uint8Array): boolean {
    if (!this.open) return false;
    return this.ws.sendBinary(frame) >= 0;
  }
  sendBulk(payload: Uint8Array, head?: Uint8Array): boolean {
    if (!this.open) return false;
    return this.ws.sendBinary(this.channel.bulk.seal(payload, head)) >= 0;
  }
  /** Bun's native topic publish: one publish reaches every socket subscribed, without N copies in JS. */
  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }
  unsubscribe(topic: string): void {
    this.ws.unsubscribe(topic);
  }
  publishSealed(topic: string, frame: Uint8Array): boolean {
    const publish = this.ws.data.publish;
    if (!publish) return false;
    publish(topic, frame);
    return true;
  }
  pauseReading(): void {
    if (this.open) this.ws.pause();
  }
  resumeReading(): void {
    if (this.open) this.ws.resume();
  }
  close(code = CLOSE_GOING_AWAY, reason = "closing"): void {
    this.ws.close(code, reason);
  }
}
export type { ServerConnection };

/**
 * Bun WebSocket handlers for the listener side. Every socket is authenticated
 * before it exists (the upgrade carried the dialer's proof): `open` sends the
 * listener's proof and hands the connection to `accept`, which returns the
 * handlers for its frames.
 */
export function secureServerHandlers(
  accept: (connection: ServerConnection, path: string) => ConnectionEvents,
  onRefused: (address: string, error: AppError) => void,
): WebSocketHandler<ServerSocketData> {
  return {
    // A frame Bun drops at its buffer limit would break the channel's counter; close instead, and the peer
    // reconnects and resumes (the hub replays what it missed).
    closeOnBackpressureLimit: true,
    open(ws) {
      const data = ws.data;
      ws.sendBinary(data.reply);
      data.connection = new ServerConnection(ws, data.channel);
      data.events = accept(data.connection, data.path);
    },
    message(ws, raw) {
      const data = ws.data;
      // A view, not a copy: a bulk frame is a megabyte, and it is opened (into new bytes) before this returns.
      const bytes = typeof raw === "string" ? new TextEncoder().encode(raw) : new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
      deliver(bytes, data.connection!, data.events!, (error) => {
        onRefused(data.address, error);
        ws.close(CLOSE_BAD_FRAME, error.message.slice(0, 120));
      });
    },
    close(ws, code, reason) {
      ws.data.events?.close(reason || `closed (${code})`, code);
    },
  };
}

/** Data for `server.upgrade(request, { data })` once `answerUpgrade` accepted the dialer. `publish` is the server's topic publish, for hub fan-out. */
export function newServerSocketData(accepted: { channel: SecureChannel; reply: Uint8Array }, address: string, path: string, publish: PublishSealed | null = null): ServerSocketData {
  return { address, path, channel: accepted.channel, reply: accepted.reply, connection: null, events: null, publish };
}

/**
 * Routes one frame by its kind byte: broadcasts go on sealed, bulk frames are opened on the
 * bulk lane (when the events take them), channel frames are opened; anything else closes the connection.
 */
function deliver(bytes: Uint8Array, connection: { peer: AuthenticatedPeer; channel: SecureChannel }, events: ConnectionEvents, fail: (e: AppError) => void): void {
  let payload: Uint8Array;
  let bulk = false;
  try {
    const kind = frameKind(bytes, connection.peer.address);
    if (kind === FrameKind.broadcast && events.broadcast) {
      events.broadcast(bytes);
      return;
    }
    bulk = kind === FrameKind.bulk && events.bulk !== undefined;
    payload = bulk ? connection.channel.bulk.open(bytes) : connection.channel.open(bytes);
  } catch (error) {
    fail(error as AppError);
    return;
  }
  if (bulk) events.bulk!(payload);
  else events.message(payload);
}

class ClientConnection implements SecureConnection {
  constructor(
    private readonly ws: WebSocket,
    readonly channel: SecureChannel,
  ) {}
  get peer() {
    return this.channel.peer;
  }
  get open() {
    return this.ws.readyState === WebSocket.OPEN;
  }
  send(payload: Uint8Array): boolean {
    if (!this.open) return false;
    this.ws.send(this.channel.seal(payload));
    return true;
  }
  sendSealed(frame: Uint8Array): boolean {
    if (!this.open) return false;
    this.ws.send(frame);
    return true;
  }
  sendBulk(payload: Uint8Array, head?: Uint8Array): boolean {
    if (!this.open) return false;
    this.ws.send(this.channel.bulk.seal(payload, head));
    return true;
  }
  close(code = CLOSE_GOING_AWAY, reason = "closing"): void {
    this.ws.close(code, reason);
  }
}

/**
 * Opens a secure connection to `address` ("host:port") at `path`. Resolves once
 * authenticated; rejects with the handshake's error (NetworkKeyMismatch names
 * both fingerprints) or when the socket cannot be opened. The proof in the
 * upgrade is made from the listener's challenge (its GET /identity, kept a while
 * per address); a challenge the listener no longer takes (it restarted) is
 * asked again once.
 */
export async function connectSecure(address: string, path: string, options: SecureSocketOptions, events: (connection: SecureConnection) => ConnectionEvents): Promise<SecureConnection> {
  // The challenge is the first step of the handshake: it gets the handshake's time, not a shorter one of its own,
  // or a loaded machine or one lost SYN (retried after 1 s) fails a connection the handshake would have made.
  const askMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const first = await challengeFor(address, options.networkKey, false, askMs);
  try {
    return await dial(address, path, options, events, first);
  } catch (error) {
    if (!(error instanceof StaleChallenge)) throw error;
    return dial(address, path, options, events, await challengeFor(address, options.networkKey, true, askMs));
  }
}

/** The listener no longer takes the challenge the proof was made from; internal, answered by asking again. */
class StaleChallenge extends HandshakeFailed {}

/** Challenges by listener address, reused for a third of a window: a proof made from one is taken for at least two more thirds. */
const CHALLENGE_REUSE_MS = CHALLENGE_WINDOW_MS / 3;
const MAX_KEPT_CHALLENGES = 1024;
const challenges = new Map<string, { challenge: UpgradeChallenge; at: number }>();

async function challengeFor(address: string, networkKey: Uint8Array, fresh: boolean, timeoutMs: number): Promise<UpgradeChallenge> {
  const kept = challenges.get(address);
  if (!fresh && kept && systemClock.now() - kept.at < CHALLENGE_REUSE_MS) return kept.challenge;
  const identity = await fetchIdentity(address, timeoutMs);
  if (!identity?.challenge) {
    // On another key the dial still goes ahead when it can, so the listener's log names both keys too.
    const theirs = identity?.networkKeyFingerprint ?? null;
    throw theirs !== null && theirs !== fingerprint(networkKey) ? new NetworkKeyMismatch(address, theirs, fingerprint(networkKey)) : unreachable(address);
  }
  keepChallenge(address, identity.challenge);
  return identity.challenge;
}

function keepChallenge(address: string, challenge: UpgradeChallenge): void {
  challenges.delete(address);
  if (challenges.size >= MAX_KEPT_CHALLENGES) challenges.delete(challenges.keys().next().value!);
  challenges.set(address, { challenge, at: systemClock.now() });
}

function dial(address: string, path: string, options: SecureSocketOptions, events: (connection: SecureConnection) => ConnectionEvents, challenge: UpgradeChallenge): Promise<SecureConnection> {
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const timers = options.timers ?? systemTimers;
  if (challenge.id === fingerprint(options.machine.publicKey)) {
    return Promise.reject(new HandshakeFailed(address, `${address} is this machine itself (same machine key); connect to another machine.`));
  }
  return new Promise((resolve, reject) => {
    const initiator = new HandshakeInitiator({ networkKey: options.networkKey, machine: options.machine, peerAddress: address, path, challenge });
    // Bun's WebSocket takes headers: the proof in the upgrade authenticates this machine before any socket exists (handshake.ts).
    const ws = new WebSocket(`ws://${address}${path}`, { headers: initiator.headers } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    let opened = false;
    let probing = false;
    /** The upgrade was refused or nothing answers: another network key is told by the peer's /identity. */
    const failedBeforeOpen = () => {
      if (settled || probing) return;
      probing = true;
      void whyUnreachable(address, options.networkKey, challenge).then(settle);
    };
    let connection: ClientConnection | null = null;
    let handlers: ConnectionEvents | null = null;
    let settled = false;
    const settle = (error: AppError | null) => {
      if (settled) return;
      settled = true;
      cancelDeadline();
      if (error) {
        reject(error);
        ws.close(CLOSE_HANDSHAKE_FAILED, error.message.slice(0, 120));
      } else resolve(connection!);
    };
    const cancelDeadline = timers.after(timeoutMs, () => settle(new HandshakeFailed(address, `${address} did not finish the handshake in ${timeoutMs} ms.`)));
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (event) => {
      const bytes = new Uint8Array(event.data as ArrayBuffer);
      if (connection === null) {
        // The listener's proof: nothing else is read before it checked.
        const step = initiator.receive(bytes);
        if (step.status === "failed") settle(step.error);
        else {
          connection = new ClientConnection(ws, step.channel);
          handlers = events(connection);
          settle(null);
        }
        return;
      }
      deliver(bytes, connection, handlers!, (error) => ws.close(CLOSE_BAD_FRAME, error.message.slice(0, 120)));
    };
    ws.onerror = () => {
      if (!opened) failedBeforeOpen();
    };
    ws.onclose = (event) => {
      if (!opened) failedBeforeOpen();
      else if (!settled) {
        // The listener took the upgrade, so it accepted this machine; a close before its proof is a failure, not a refusal.
        settle(new HandshakeFailed(address, `${address} closed the connection during the handshake${event.reason ? `: ${event.reason}` : ""}.`));
      }
      else handlers?.close(event.reason || `closed (${event.code})`, event.code);
    };
  });
}

const identitySchema = z.object({ networkKeyFingerprint: z.string().nullable(), challenge: upgradeChallengeSchema.optional() });
/** How long the /identity question may take after a refused upgrade (only to say why). */
const IDENTITY_TIMEOUT_MS = 1000;

async function fetchIdentity(address: string, timeoutMs = IDENTITY_TIMEOUT_MS): Promise<z.infer<typeof identitySchema> | null> {
  try {
    const response = await fetch(`http://${address}/identity`, { signal: AbortSignal.timeout(timeoutMs) });
    const identity = identitySchema.safeParse(await response.json());
    return identity.success ? identity.data : null;
  } catch {
    return null; // Nothing answers there, or not with an identity.
  }
}

function unreachable(address: string): HandshakeFailed {
  return new HandshakeFailed(address, `Could not connect to ${address}: nothing answers there, or it is not an understudy peer port.`);
}

/** Why a connection never opened: another network key (from the peer's public /identity), a challenge it no longer takes, or a refusal. */
async function whyUnreachable(address: string, networkKey: Uint8Array, used: UpgradeChallenge): Promise<HandshakeFailed | NetworkKeyMismatch> {
  const ours = fingerprint(networkKey);
  const identity = await fetchIdentity(address);
  const theirs = identity?.networkKeyFingerprint ?? null;
  if (theirs !== null && theirs !== ours) return new NetworkKeyMismatch(address, theirs, ours);
  // Same key and a new challenge: the listener restarted (or the kept one aged out); the caller asks again once.
  if (identity?.challenge && identity.challenge.nonce !== used.nonce) {
    keepChallenge(address, identity.challenge);
    return new StaleChallenge(address, `${address} no longer takes the upgrade proof made for it; asking again.`);
  }
  if (identity?.challenge) {
    // It answers on the same key and challenge and said no (busy, most likely): retried after a back-off (peer-refusals.ts).
    return new PeerRefused(address, `${address} answers on this network key but refused the connection (busy, or it did not take this machine's proof); its log says why.`);
  }
  // The peer port was not up yet, or is something else.
  return unreachable(address);
}
