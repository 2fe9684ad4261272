/**
 * RPC calls to other machines over one kept connection per address and path
 * (docs/design.md §Ports, "Calls on a kept connection"). Every new connection
 * costs both sides a signed handshake (two Ed25519 signatures and checks, about
 * 10–15 ms of the answering server's event loop with tweetnacl); a client that
 * asks its main its level every 2 s, or a Health panel polling twice a second,
 * made the main pay that for every question. A connection is dialled on the
 * first call, shared by the calls after it, and dropped when it closes, when a
 * call on it times out (the machine may be frozen: the next call dials anew,
 * as a one-shot call would) and after IDLE_MS without a call. A key change
 * closes it with every dialled connection (peer-net.ts closeDialled).
 */
import type { z } from "zod";
import type { Timers } from "../core/clock.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import { AppError } from "../core/errors.ts";
import type { PeerDialer, PeerPath } from "./peer-net.ts";
import { callOnce } from "./peer-requests.ts";
import { RpcClient } from "./rpc.ts";
import { systemTimers } from "./system-time.ts";

export type PeerCall<T> = {
  method: string;
  params: unknown;
  schema: z.ZodType<T>;
  timeoutMs: number;
  /**
   * A question that changes nothing (a level, a view): asked once more, on a new connection, when a kept one
   * closed under it (the server restarted, or closed it idle). An action is never sent twice: whether it was
   * carried out before the close is not known.
   */
  idempotent?: boolean;
};

/** What a service that asks other machines needs: one call and its answer. */
export type PeerCaller = {
  call<T>(to: HostPort, path: PeerPath, call: PeerCall<T>): Promise<T>;
};

/** A connection of its own for every call (tests and one-off tools). */
export function oneShotCaller(net: PeerDialer, timers: Timers = systemTimers): PeerCaller {
  return { call: (to, path, call) => callOnce(net, to, path, call, timers) };
}

/** A connection unused this long is closed: it was for a one-off question. */
export const KEPT_CALLS_IDLE_MS = 30_000;

type Kept = { client: Promise<RpcClient>; idle: () => void };

export class KeptCalls implements PeerCaller {
  private readonly kept = new Map<string, Kept>();
  private stopped = false;

  constructor(
    private readonly net: PeerDialer,
    private readonly timers: Timers = systemTimers,
  ) {}

  async call<T>(to: HostPort, path: PeerPath, call: PeerCall<T>): Promise<T> {
    if (this.stopped) throw new AppError("CONNECTION_LOST", "This machine is stopping.", { status: 503 });
    const key = `${formatHostPort(to)}${path}`;
    const reused = this.kept.has(key);
    let kept = this.kept.get(key) ?? this.dial(key, to, path);
    let client = await kept.client;
    if (!client.open) {
      // Closed from this side (a new network key, a drop) before its close event came: dial anew rather than fail the question.
      this.forget(key, kept);
      kept = this.kept.get(key) ?? this.dial(key, to, path);
      client = await kept.client;
    }
    this.keepAlive(key, kept);
    try {
      return await client.call(call.method, call.params, call.schema, call.timeoutMs);
    } catch (error) {
      if (error instanceof AppError && error.code === "TIMEOUT") this.drop(key, kept);
      if (error instanceof AppError && error.code === "CONNECTION_LOST" && reused && call.idempotent) {
        this.forget(key, kept);
        return this.call(to, path, { ...call, idempotent: false });
      }
      throw error;
    }
  }

  /** Closes every kept connection; calls after this are refused. */
  stop(): void {
    this.stopped = true;
    for (const [key, kept] of this.kept) this.drop(key, kept);
  }

  private dial(key: string, to: HostPort, path: PeerPath): Kept {
    const rpc = new RpcClient(this.timers);
    const kept: Kept = { client: Promise.resolve(rpc), idle: () => {} };
    kept.client = this.net
      .dial(to, path, () => {
        const events = rpc.events();
        return { ...events, close: (reason, code) => (this.forget(key, kept), events.close(reason, code)) };
      })
      .then(
        (connection) => rpc.attach(connection),
        (error) => {
          this.forget(key, kept);
          throw error;
        },
      );
    this.kept.set(key, kept);
    return kept;
  }

  private keepAlive(key: string, kept: Kept): void {
    kept.idle();
    kept.idle = this.timers.after(KEPT_CALLS_IDLE_MS, () => this.drop(key, kept));
  }

  private forget(key: string, kept: Kept): void {
    kept.idle();
    if (this.kept.get(key) === kept) this.kept.delete(key);
  }

  private drop(key: string, kept: Kept): void {
    this.forget(key, kept);
    kept.client.then((client) => client.close(), () => {});
  }
}
