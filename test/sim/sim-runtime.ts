/**
 * A simulated machine's runtime for the production objects it runs (sim-hub.ts, sim-lanes.ts):
 * its timers and the end of its event loop's turn on the world's queue (held while it is frozen,
 * gone with its incarnation), its log lines in the trace, and dials and connections over the
 * in-memory peer port that tell the world when promise jobs may be waiting.
 */
import type { Timers } from "../../src/core/clock.ts";
import type { Logger } from "../../src/log.ts";
import type { Defer } from "../../src/net/frame-batch.ts";
import type { PeerDialer, PeerService } from "../../src/net/peer-net.ts";
import type { MemoryPeerNet } from "../../src/net/peer-net-memory.ts";
import type { ConnectionEvents } from "../../src/net/secure-socket.ts";
import type { SimNode, World } from "./world.ts";

export const QUIET: Logger = { info() {}, warn() {}, error() {} };

/** A machine's timers on the world's queue: held while it is frozen, gone with its incarnation. */
export function timersOf(w: World, n: SimNode): Timers {
  const inc = n.inc;
  return {
    after: (ms, run) => {
      let live = true;
      w.postAt(n.name, w.now() + ms, inc, () => live && run());
      return () => void (live = false);
    },
    every: (ms, run) => {
      let live = true;
      const again = () => {
        if (!live) return;
        run();
        w.postAt(n.name, w.now() + ms, inc, again);
      };
      w.postAt(n.name, w.now() + ms, inc, again);
      return () => void (live = false);
    },
  };
}

/** The end of a machine's event-loop turn (frame batching): a job queued behind what is due now. */
export function deferOf(w: World, n: SimNode): Defer {
  const inc = n.inc;
  return (run) => {
    let live = true;
    w.postAt(n.name, w.now(), inc, () => live && run());
    return () => void (live = false);
  };
}

/** The machine's log lines go to the trace (when tracing). */
export function loggerOf(w: World, n: SimNode): Logger {
  if (!w.trace) return QUIET;
  const line = (event: string, fields?: Record<string, unknown>) => w.log(`${n.name} log: ${event}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
  return { info: line, warn: line, error: line };
}

/**
 * PeerNet's dial over the twin. A promise settles outside any event, so each callback that can
 * settle one (the dial's answer, a frame, a close) tells the world to run promise jobs before its next event.
 */
export function dialerOf(w: World, peer: MemoryPeerNet): PeerDialer {
  return {
    dial: (to, path, events) =>
      new Promise((resolve, reject) =>
        peer.connect(to, path, (c) => settlingEvents(w, events(c)), (result) => {
          w.promisesSettled = true;
          if (result instanceof Error) reject(result);
          else resolve(result);
        }),
      ),
  };
}

/** A service whose connections' callbacks may settle promises (a push waiting for the backup's acknowledgement). */
export function settling(w: World, service: PeerService): PeerService {
  return { path: service.path, accept: (c) => settlingEvents(w, service.accept(c)) };
}

function settlingEvents(w: World, events: ConnectionEvents): ConnectionEvents {
  return {
    ...(events.broadcast ? { broadcast: (frame: Uint8Array) => events.broadcast?.(frame) } : {}),
    ...(events.bulk ? { bulk: (payload: Uint8Array) => events.bulk?.(payload) } : {}),
    message: (payload) => {
      w.promisesSettled = true;
      events.message(payload);
    },
    close: (reason) => {
      w.promisesSettled = true;
      events.close(reason);
    },
  };
}
