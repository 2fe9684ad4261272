/**
 * The Data Hub's request/reply routing (docs/design.md §Data Hub): which connection offers
 * each service, and the calls waiting for their provider's reply. Kept beside
 * HubCore, which owns the connections and hands these frames over.
 */
import type { AppError } from "../core/errors.ts";
import type { FromHubFrame, Member, ToHubFrameOf } from "./frames.ts";
import { LimitReached, NoService, ProviderGone, ServiceTaken } from "./hub-errors.ts";

/** What the routing needs of a hub connection. */
export type CallingConnection = {
  readonly id: string;
  readonly member: { id: string; name: string; kind: Member["kind"] } | null;
  readonly services: Set<string>;
};

type PendingCall = { readonly caller: string; readonly callerId: string; readonly provider: string; readonly service: string };

export type ServiceCallsOptions = {
  readonly maxServicesPerConnection: number;
  readonly maxPendingCalls: number;
  /** The attached connection with this id, if any. */
  connection(id: string): CallingConnection | undefined;
  /** Sends to an attached connection (a closing socket is ignored). */
  send(id: string, frame: FromHubFrame): void;
};

export class ServiceCalls {
  private readonly providers = new Map<string, string>();
  private readonly pending = new Map<string, PendingCall>();
  private nextCallId = 1;

  constructor(private readonly options: ServiceCallsOptions) {}

  /** The connection left: its services go, calls it provides fail, its own calls are forgotten. */
  detach(conn: CallingConnection): void {
    for (const service of conn.services) if (this.providers.get(service) === conn.id) this.providers.delete(service);
    for (const [callId, call] of this.pending) {
      if (call.provider === conn.id) {
        this.pending.delete(callId);
        this.options.send(call.caller, replyError(call.callerId, new ProviderGone(call.service)));
      } else if (call.caller === conn.id) {
        // Its reply will have no one to go to; the provider's late reply is ignored.
        this.pending.delete(callId);
      }
    }
  }

  /** Null when taken; else the refusal for the sender. */
  offer(conn: CallingConnection, frame: ToHubFrameOf<"offer">): AppError | null {
    const owner = this.providers.get(frame.service);
    if (owner === conn.id) return null;
    const ownerConn = owner === undefined ? undefined : this.options.connection(owner);
    // The same member offering again is a reconnect whose old socket has not closed yet: the new one wins.
    if (ownerConn && ownerConn.member?.id !== conn.member?.id) return new ServiceTaken(frame.service, describe(ownerConn));
    if (conn.services.size >= this.options.maxServicesPerConnection) {
      return new LimitReached(`A connection may offer at most ${this.options.maxServicesPerConnection} services.`);
    }
    ownerConn?.services.delete(frame.service);
    conn.services.add(frame.service);
    this.providers.set(frame.service, conn.id);
    return null;
  }

  unoffer(conn: CallingConnection, frame: ToHubFrameOf<"unoffer">): void {
    if (this.providers.get(frame.service) === conn.id) this.providers.delete(frame.service);
    conn.services.delete(frame.service);
  }

  call(conn: CallingConnection, frame: ToHubFrameOf<"call">): void {
    const provider = this.options.connection(this.providers.get(frame.service) ?? "");
    if (!provider) return this.options.send(conn.id, replyError(frame.id, new NoService(frame.service)));
    if (this.pending.size >= this.options.maxPendingCalls) {
      return this.options.send(conn.id, replyError(frame.id, new LimitReached(`The hub has ${this.options.maxPendingCalls} calls waiting for replies; try again shortly.`)));
    }
    // The hub's own id: callers pick theirs freely, so two callers' "1" must not collide at the provider.
    const callId = `c${this.nextCallId++}`;
    this.pending.set(callId, { caller: conn.id, callerId: frame.id, provider: provider.id, service: frame.service });
    this.options.send(provider.id, { type: "call", service: frame.service, id: callId, data: frame.data, from: conn.member!.id });
  }

  reply(conn: CallingConnection, frame: ToHubFrameOf<"reply">): void {
    const call = this.pending.get(frame.id);
    // A late reply (the caller left) or one from a connection the call was not sent to: nothing to do.
    if (!call || call.provider !== conn.id) return;
    this.pending.delete(frame.id);
    const reply: FromHubFrame = { type: "reply", id: call.callerId };
    if (frame.data !== undefined) reply.data = frame.data;
    if (frame.error !== undefined) reply.error = frame.error;
    this.options.send(call.caller, reply);
  }
}

function replyError(id: string, error: AppError): FromHubFrame {
  return { type: "reply", id, error: { code: error.code, message: error.message } };
}

function describe(conn: CallingConnection): string {
  return conn.member ? `${conn.member.name} (${conn.member.id})` : "another connection";
}
