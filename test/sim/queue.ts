/**
 * The simulator's event queue: a binary heap ordered by (time, insertion), so
 * events at the same millisecond run in the order they were scheduled and a
 * seed replays exactly.
 */
export interface Queued<E> {
  readonly t: number;
  readonly seq: number;
  readonly ev: E;
}

export class EventQueue<E> {
  readonly #heap: Queued<E>[] = [];
  #seq = 0;

  push(t: number, ev: E): void {
    const h = this.#heap;
    h.push({ t, seq: this.#seq++, ev });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  peek(): Queued<E> | undefined {
    return this.#heap[0];
  }

  pop(): Queued<E> | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) return top;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }

  /** Every queued entry, in no particular order (to mark some cancelled). */
  entries(): readonly Queued<E>[] {
    return this.#heap;
  }
}

function before<E>(a: Queued<E>, b: Queued<E>): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
