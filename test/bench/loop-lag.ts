/**
 * How long this process's event loop was held (or the process kept off the CPU) while a workload
 * ran: a 1 ms timer that fires late says by how much. The hub bench's paced phase runs it in the
 * subscribing process, so a late delivery can be told apart from a subscriber that read late.
 */
export type LoopLag = { holds: number; worstMs: number };

/** Starts watching; `stop` gives the holds over `overMs` and the longest. */
export function watchLoopLag(overMs: number): { stop(): LoopLag } {
  let holds = 0;
  let worstMs = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const held = now - last - 1;
    last = now;
    if (held > overMs) holds++;
    worstMs = Math.max(worstMs, held);
  }, 1);
  return {
    stop() {
      clearInterval(timer);
      return { holds, worstMs };
    },
  };
}
