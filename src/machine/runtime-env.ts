/**
 * What a machine's runtime (peer-runtime.ts) takes from the world around it,
 * in one place so a test or the simulator can pass its own: the clock, the
 * wall clock, timers, and the peer port it listens on (docs/design.md
 * §Layout). Production passes SYSTEM_RUNTIME_ENV. Still taken from the system
 * directly: the heartbeat socket, the data dir's database and files, DNS and
 * the MQTT front door.
 */
import type { Clock, Timers } from "../core/clock.ts";
import { RealPeerNet, type PeerNet, type RealPeerNetOptions } from "../net/peer-net.ts";
import { systemClock, systemTimers, wallClock } from "../net/system-time.ts";

/** A PeerNet listening: the port and address it is bound to ("host:port"). */
export type ListeningPeerNet = PeerNet & { readonly port: number; readonly address: string };

export type RuntimeEnv = {
  /** Monotonic time, for every timeout and freshness judgement. */
  clock: Clock;
  /** Wall-clock time, for license expiry and what pages show. */
  wall: Clock;
  timers: Timers;
  /** Opens the peer port; throws a ListenError when the address cannot be taken. */
  listen: (options: RealPeerNetOptions) => ListeningPeerNet;
};

export const SYSTEM_RUNTIME_ENV: RuntimeEnv = { clock: systemClock, wall: wallClock, timers: systemTimers, listen: (options) => RealPeerNet.listen(options) };
