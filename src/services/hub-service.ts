/**
 * The Data Hub on a server's peer port: `/hub` takes node uplinks, each an
 * authenticated connection attached to the HubCore; `/replicate` lets the
 * other server copy the retained state ("give me what changed since V").
 * A fan-out frame is encoded and sealed once (under the epoch's broadcast
 * key) and published once to its subscribers through a Bun topic (fanOut).
 */
import { encodeFrame, versionSchema, type FromHubFrame, type ToHubFrame } from "../hub/frames.ts";
import { HubCore, type Fanout, type HubStateChanges, type RetainedUseReport } from "../hub/hub-core.ts";
import { hubStateChangesSchema } from "../hub/retained-state.ts";
import type { Logger } from "../log.ts";
import { fanOut } from "../net/broadcast.ts";
import { FanoutGroups } from "../net/fanout-groups.ts";
import { BroadcastBatch } from "../net/broadcast-batch.ts";
import { FrameBatcher, nextTurn, splitFrames, type Defer } from "../net/frame-batch.ts";
import { deriveBroadcastKey, type BroadcastKey } from "../net/crypto.ts";
import { CLOSE_NETWORK_KEY_CHANGED, NETWORK_KEY_CHANGED_REASON, type ConnectionEvents, type SecureConnection } from "../net/secure-socket.ts";
import { z } from "zod";
import { MAX_RPC_FRAME_BYTES } from "../net/rpc.ts";
import { decodeWireJson } from "../core/wire-json.ts";

const text = new TextEncoder();
const decoder = new TextDecoder();

/** What the standby asks on /replicate, and the answer. */
export const replicateRequestSchema = z.object({ type: z.literal("since"), version: versionSchema });
export const replicateAnswerSchema = z.object({ type: z.literal("changes"), changes: hubStateChangesSchema });

export class HubService {
  readonly core: HubCore;
  private networkKey: Uint8Array;
  private readonly log: Logger;
  private readonly connections = new Map<string, SecureConnection>();
  /** This machine's own app gateway, attached in process (a machine does not handshake with itself). */
  private readonly local = new Map<string, (frame: FromHubFrame) => void>();
  private broadcastKey: BroadcastKey;
  private readonly groups = new FanoutGroups();
  /** Per connection: small frames sent together (frame-batch.ts). */
  private readonly batches = new Map<string, FrameBatcher>();
  private readonly broadcasts: BroadcastBatch;
  /** When gathered frames go out: the end of the event loop's turn (a simulator passes its own). */
  private readonly defer: Defer;
  private nextId = 0;
  /** Messages and values handed to subscribers since start, one per subscriber (a fan-out to N counts N); presence is not counted. */
  private deliveries = 0;

  constructor(core: HubCore, networkKey: Uint8Array, log: Logger, options: { defer?: Defer } = {}) {
    this.core = core;
    this.defer = options.defer ?? nextTurn;
    this.broadcasts = new BroadcastBatch(undefined, this.defer);
    this.networkKey = networkKey;
    this.log = log;
    this.broadcastKey = deriveBroadcastKey(networkKey, core.epoch);
  }

  /** Accept writes at `epoch` (failover `startServing`). */
  startServing(epoch: number): void {
    if (epoch > this.core.epoch) this.core.setEpoch(epoch);
    this.broadcastKey = deriveBroadcastKey(this.networkKey, this.core.epoch);
    this.core.setWritable(true);
  }

  /** Refuse writes and close hub sessions so every node moves to the active server. */
  stopServing(): void {
    this.core.setWritable(false);
    // What was taken before the stop (an ack, a delivery) still goes out, before the close.
    this.flushAll();
    for (const connection of this.connections.values()) connection.close(1001, "This server is no longer active.");
    for (const id of [...this.local.keys()]) {
      this.local.delete(id);
      this.fanout(this.core.detach(id));
    }
  }

  /**
   * A new network key: broadcasts are sealed under it from now on, so every hub session (opened under
   * the old key, unable to open them) is closed and reconnects under the new one. The hub keeps serving
   * and keeps its state. The close says "key changed", not "gone": a node must not drop this server for
   * it (docs/design.md §Security).
   */
  setNetworkKey(networkKey: Uint8Array): void {
    this.networkKey = networkKey;
    this.flushAll();
    this.broadcastKey = deriveBroadcastKey(networkKey, this.core.epoch);
    for (const connection of this.connections.values()) connection.close(CLOSE_NETWORK_KEY_CHANGED, NETWORK_KEY_CHANGED_REASON);
  }

  /** Handlers for one authenticated `/hub` connection. */
  acceptHub(connection: SecureConnection): ConnectionEvents {
    const id = `c${++this.nextId}`;
    this.connections.set(id, connection);
    const batch = new FrameBatcher((payload) => connection.send(payload), undefined, this.defer);
    this.batches.set(id, batch);
    this.core.attach(
      id,
      (frame) => {
        // A broadcast pending for this connection goes first: it was sent first.
        this.broadcasts.flushFor(id);
        batch.push(encodeFrame(frame));
      },
      connection.peer.machineId,
    );
    return {
      message: (payload) => {
        for (const frame of splitFrames(payload)) this.fanout(this.core.receive(id, frame));
      },
      close: () => {
        this.connections.delete(id);
        this.batches.get(id)?.clear();
        this.batches.delete(id);
        this.groups.forget(id);
        this.fanout(this.core.detach(id));
      },
    };
  }

  /** Attaches this machine's own uplink without a socket; frames pass as objects. */
  attachLocal(deliver: (frame: FromHubFrame) => void): { send(frame: ToHubFrame): void; close(): void } {
    const id = `local${++this.nextId}`;
    this.local.set(id, deliver);
    this.core.attach(id, deliver);
    return {
      send: (frame) => {
        if (this.local.has(id)) this.fanout(this.core.receive(id, frame));
      },
      close: () => {
        if (!this.local.delete(id)) return;
        this.fanout(this.core.detach(id));
      },
    };
  }

  /** Handlers for the other server's `/replicate` connection. */
  acceptReplication(connection: SecureConnection): ConnectionEvents {
    return {
      message: (payload) => {
        const request = replicateRequestSchema.safeParse(safeJson(decoder.decode(payload)));
        if (!request.success) {
          connection.close(4002, "Not a replication request.");
          return;
        }
        const changes = this.core.exportStateSince(request.data.version);
        connection.send(text.encode(JSON.stringify({ type: "changes", changes })));
      },
      close: () => {},
    };
  }

  /** Sends who is connected, with their delays, to every member (the Delays panel stays fresh). */
  announcePresence(): void {
    if (this.core.writable) this.fanout(this.core.presence());
  }

  /** Imports what the other server changed (catch-up, or the standby's copy). */
  importChanges(changes: HubStateChanges): void {
    this.fanout(this.core.importState(changes));
  }

  /** Sends every gathered frame now: a pending broadcast never holds a frame that one connection's batch has after it (broadcast.ts). */
  private flushAll(): void {
    this.broadcasts.flush();
    for (const batch of this.batches.values()) batch.flush();
  }

  private fanout(fanouts: Fanout[]): void {
    for (const { frame, to, text } of fanouts) this.deliver(frame, to, text);
  }

  private deliver(frame: FromHubFrame, to: readonly string[], text?: string): void {
    // Local deliveries first: they are function calls; the remote ones are sealed once.
    if (to.length === 0) return;
    if (frame.type === "msg" || frame.type === "value") this.deliveries += to.length;
    if (this.local.size > 0) for (const id of to) this.local.get(id)?.(frame);
    if (this.connections.size === 0) return;
    fanOut(text ?? encodeFrame(frame), to, this.connections, this.broadcastKey, this.groups, this.batches, this.broadcasts);
  }

  /** For the status and /metrics: connections now, frames taken by type and deliveries sent since start. */
  counters(): { clients: number; received: Record<string, number>; deliveries: number; retained: RetainedUseReport } {
    return { clients: this.core.connectionCount, received: { ...this.core.received }, deliveries: this.deliveries, retained: this.core.retainedUse() };
  }

  closeAll(): void {
    for (const connection of this.connections.values()) connection.close(1001, "Shutting down.");
  }
}

/** A /replicate frame (a request, or an answer carrying changed state), through the one outside-JSON decoder. */
export function safeJson(textValue: string): unknown {
  return decodeWireJson(textValue, { maxBytes: MAX_RPC_FRAME_BYTES });
}
