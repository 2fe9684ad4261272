/**
 * A simulated machine's runtime for the production objects it runs (the pairing
 * service and keeper, the Data Hub, the copies and the log lane): its timers and
 * the end of its event loop's turn on the world's queue (held while it is frozen,
 * gone with its incarnation), its log lines in the trace, and dials and
 * connections over the in-memory peer port that tell the world when promise jobs
 * may be waiting.
 */
import type { Timers } from "../../src/core/clock.ts";
import type { Logger } from "../../src/log.ts";
import type { Defer } from "../../src/net/frame-batch.ts";
import type { PeerDialer, PeerService } from "../../src/net/peer-net.ts";
import type { MemoryPeerNet } from "../../src/net/peer-net-memory.ts";
import type { ConnectionEvents } from "../../src/net/secure-socket.ts";
import type { SimNode, World } from "./world.ts";

export const QUIET: Logger = { info() {}, warn() {}, error() {} };

/**
 * A machine's timers: held while it is frozen, gone with its incarnation; with `settles`, the promise jobs a
 * timer starts run before the next event (the pairing keeper's), else at the next frame or dial answer (cheaper:
 * the Data Hub's timers start no promise that a frame does not settle).
 */
export function machineTimers(world: World, n: SimNode, settles = true): Timers {
  const inc = n.inc;
  return {
    after: (ms, run) => {
      let live = true;
      world.postAt(n.name, world.now() + ms, inc, () => {
        if (!live) return;
        run();
        if (settles) world.longChainSettled = true;
      });
      return () => void (live = false);
    },
    every: (ms, run) => {
      let live = true;
      const again = () => {
        if (!live) return;
        run();
        if (settles) world.longChainSettled = true;
        world.postAt(n.name, world.now() + ms, inc, again);
      };
      world.postAt(n.name, world.now() + ms, inc, again);
      return () => void (live = false);
    },
  };
}

/**
 * PeerNet's dial over the twin. A promise settles outside any event, so each callback that can
 * settle one (the dial's answer, a frame, a close) tells the world to run promise jobs before its next event.
 */
export function settlingDialer(world: World, peer: MemoryPeerNet): PeerDialer {
  const settles = settling(world);
  return {
    dial: (to, path, events) =>
      new Promise((resolve, reject) =>
        peer.connect(to, path, (c) => settles(events(c)), (result) => {
          world.longChainSettled = true;
          if (result instanceof Error) reject(result);
          else resolve(result);
        }),
      ),
  };
}

/** A service whose handlers may start promise jobs (the backup's pairing answer): the world runs them after each frame. */
export function settlingService(world: World, service: PeerService): PeerService {
  const settles = settling(world);
  return { path: service.path, accept: (c) => settles(service.accept(c)) };
}

function settling(world: World): (events: ConnectionEvents) => ConnectionEvents {
  return (events) => ({
    ...(events.broadcast ? { broadcast: (frame: Uint8Array) => events.broadcast?.(frame) } : {}),
    ...(events.bulk ? { bulk: (payload: Uint8Array) => events.bulk?.(payload) } : {}),
    message: (payload) => {
      world.longChainSettled = true;
      events.message(payload);
    },
    close: (reason, code) => {
      world.longChainSettled = true;
      events.close(reason, code);
    },
  });
}

/** The end of a machine's event-loop turn (frame batching): a job queued behind what is due now. */
export function machineDefer(w: World, n: SimNode): Defer {
  const inc = n.inc;
  return (run) => {
    let live = true;
    w.postAt(n.name, w.now(), inc, () => live && run());
    return () => void (live = false);
  };
}

/** The machine's log lines go to the trace (when tracing). */
export function machineLogger(w: World, n: SimNode): Logger {
  if (!w.trace) return QUIET;
  const line = (event: string, fields?: Record<string, unknown>) => w.log(`${n.name} log: ${event}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
  return { info: line, warn: line, error: line };
}
