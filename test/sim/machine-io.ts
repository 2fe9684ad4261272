/**
 * A simulated machine's timers and dialler, on the world's event queue, for
 * the production objects the simulator runs (the pairing service and keeper
 * here; sim-hub.ts keeps its own copies of the same two for now).
 */
import type { Timers } from "../../src/core/clock.ts";
import type { PeerDialer, PeerService } from "../../src/net/peer-net.ts";
import type { MemoryPeerNet } from "../../src/net/peer-net-memory.ts";
import type { ConnectionEvents } from "../../src/net/secure-socket.ts";
import type { SimNode, World } from "./world.ts";

/** A machine's timers: held while it is frozen, gone with its incarnation; the promise jobs a timer starts run before the next event. */
export function machineTimers(world: World, n: SimNode): Timers {
  const inc = n.inc;
  return {
    after: (ms, run) => {
      let live = true;
      world.postAt(n.name, world.now() + ms, inc, () => {
        if (!live) return;
        run();
        world.longChainSettled = true;
      });
      return () => void (live = false);
    },
    every: (ms, run) => {
      let live = true;
      const again = () => {
        if (!live) return;
        run();
        world.longChainSettled = true;
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
    close: (reason) => {
      world.longChainSettled = true;
      events.close(reason);
    },
  });
}
