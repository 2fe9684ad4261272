/**
 * One-shot requests on the peer port (docs/design.md §Ports), over any PeerNet:
 * the short exchanges a machine makes besides its lasting links (who answers
 * at an address, one call and its answer). Dialled through the PeerNet so the
 * same code runs over the secure socket and over the simulator's in-memory twin.
 */
import type { z } from "zod";
import type { Timers } from "../core/clock.ts";
import type { HostPort } from "../core/config.ts";
import type { AuthenticatedPeer } from "./channel.ts";
import type { PeerDialer, PeerPath } from "./peer-net.ts";
import { RpcClient } from "./rpc.ts";
import { systemTimers } from "./system-time.ts";

/** The machine answering at `to` on `path`, as its handshake proves it; nothing is sent. Rejects with the dial's PeerDialError. */
export async function whoAnswers(net: PeerDialer, to: HostPort, path: PeerPath, why: string): Promise<AuthenticatedPeer> {
  const connection = await net.dial(to, path, () => ({ message() {}, close() {} }));
  connection.close(1000, why);
  return connection.peer;
}

/** One RPC call on a connection of its own, closed after the answer (net/rpc.ts). */
export async function callOnce<T>(net: PeerDialer, to: HostPort, path: PeerPath, call: { method: string; params: unknown; schema: z.ZodType<T>; timeoutMs: number }, timers: Timers = systemTimers): Promise<T> {
  const client = new RpcClient(timers);
  client.attach(await net.dial(to, path, () => client.events()));
  try {
    return await client.call(call.method, call.params, call.schema, call.timeoutMs);
  } finally {
    client.close();
  }
}
