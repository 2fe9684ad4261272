/**
 * Hands the event loop back for one turn. A window of chunks that arrive
 * together resolve as one chain of promises, which never lets a timer in;
 * the node's heartbeats are timers, so a pull yields after every chunk it
 * writes, and listing a folder every few hundred files whose hashes are
 * remembered. (A push needs none: each chunk is an awaited file read, a turn already.)
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
