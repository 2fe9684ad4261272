/**
 * Open connections per source address and in total, for a listener that must not let one
 * machine (or everyone together) hold more sockets than it can afford: each open socket may
 * buffer a frame up to the listener's payload limit. Used by the peer port and the MQTT door.
 */
export type ConnectionLimits = { perSource: number; total: number };

export class ConnectionCaps {
  private readonly bySource = new Map<string, number>();
  private open = 0;

  constructor(private readonly limits: ConnectionLimits) {}

  /** Whether `source` may open one more now (without taking it: a check before costly work). */
  room(source: string): boolean {
    return (this.bySource.get(source) ?? 0) < this.limits.perSource && this.open < this.limits.total;
  }

  /** True takes a slot, given back by `release(source)` when the socket closes. */
  take(source: string): boolean {
    if (!this.room(source)) return false;
    this.bySource.set(source, (this.bySource.get(source) ?? 0) + 1);
    this.open += 1;
    return true;
  }

  release(source: string): void {
    const mine = this.bySource.get(source) ?? 0;
    if (mine <= 0) return;
    if (mine === 1) this.bySource.delete(source);
    else this.bySource.set(source, mine - 1);
    this.open -= 1;
  }

  get connections(): number {
    return this.open;
  }
}
