/**
 * The Data Hub's ledger in the simulator: what every app published and what
 * every subscriber got, judged against the Data Hub's promise (docs/design.md
 * §Data Hub, §Invariants):
 *  DH1 no acknowledged message is lost: a publisher alive to the end whose
 *      node acknowledged a message; a subscriber alive to the end, whose
 *      subscription a hub had taken before the message was sent, and that
 *      never went without a hub link for the acked-writes retention after
 *      the ack (a publisher keeps a message that long: acked-writes.ts; a link
 *      the network cut counts as none: its frames wait, then go with it),
 *      both not stopped within that time (a publisher's stop counts as time
 *      kept; a stopped subscriber reads nothing), and not during a split
 *      (both servers serving, cut apart) that outlasted it: the subscriber gets it;
 *  DH2 no subscriber gets a message twice;
 *  DH3 none out of order per origin.
 * It only watches: the machines run the production objects (sim-hub.ts).
 */
import type { FromHubFrame } from "../../src/hub/frames.ts";
import type { SimNode, World } from "./world.ts";

/** A subscriber app, per machine incarnation. */
export type Subscriber = {
  readonly node: string;
  readonly inc: number;
  /** Its machine's stalls: stopped, it reads nothing, whatever its link says. */
  readonly stalls: [number, number][];
  /** When a hub first took this subscription from its node; null until then. */
  established: number | null;
  /** Which machine's hub its node was linked to, from when (null: none): with the world's cuts, when it was away. */
  readonly links: [number, string | null][];
  readonly last: Map<string, number>;
  readonly got: Set<string>;
};

type Published = {
  readonly origin: string;
  readonly seq: number;
  readonly node: string;
  readonly inc: number;
  readonly sentAt: number;
  ackedAt: number | null;
  /** Its publisher's stalls. */
  readonly stalls: readonly [number, number][];
};

export class HubLedger {
  readonly #published = new Map<string, Published>();
  readonly #subscribers: Subscriber[] = [];
  /** The subscriber of each running machine. */
  readonly #current = new Map<string, Subscriber>();
  readonly violations: string[] = [];
  published = 0;
  delivered = 0;
  /** (message, subscriber) pairs DH1 did not judge: the subscriber had no hub for longer than the retention. */
  beyondRetention = 0;
  /** (message, subscriber) pairs DH1 judged. */
  judged = 0;

  constructor(
    readonly world: World,
    /** How long a publisher keeps an acknowledged write for a resend (acked-writes.ts ackedRetentionMs). */
    readonly retentionMs: number,
  ) {}

  /** A machine's new incarnation: its subscriber app, unlinked until its gateway attaches. */
  started(n: SimNode): Subscriber {
    const sub: Subscriber = { node: n.name, inc: n.inc, stalls: [], established: null, links: [[this.world.now(), null]], last: new Map(), got: new Set() };
    this.#subscribers.push(sub);
    this.#current.set(n.name, sub);
    return sub;
  }

  crashed(n: SimNode): void {
    this.#current.delete(n.name);
  }

  /** A machine's gateway got a hub link to machine `server`'s hub, or lost it (null). */
  linkChanged(n: SimNode, server: string | null): void {
    const sub = this.#current.get(n.name);
    if (!sub || sub.inc !== n.inc) return;
    const last = sub.links[sub.links.length - 1]!;
    if (last[1] !== server) sub.links.push([this.world.now(), server]);
  }

  /** A hub took a subscription from machine `node`. */
  subscribed(node: string): void {
    const sub = this.#current.get(node);
    if (sub && sub.established === null) sub.established = this.world.now();
  }

  publishing(n: SimNode, origin: string, seq: number, stalls: readonly [number, number][]): void {
    this.#published.set(`${origin}#${seq}`, { origin, seq, node: n.name, inc: n.inc, sentAt: this.world.now(), ackedAt: null, stalls });
    this.published += 1;
  }

  acked(origin: string, seq: number): void {
    const p = this.#published.get(`${origin}#${seq}`);
    if (p && p.ackedAt === null) p.ackedAt = this.world.now();
  }

  /** A message reached machine `n`'s subscriber app: DH2 and DH3 at once. */
  got(n: SimNode, frame: FromHubFrame): void {
    const sub = this.#current.get(n.name);
    if (!sub || frame.type !== "msg") return;
    const key = `${frame.from}#${frame.seq}`;
    this.delivered += 1;
    if (sub.got.has(key)) this.fail(`DH2 ${n.name}'s subscriber got ${key} twice`);
    const last = sub.last.get(frame.from) ?? 0;
    if (frame.seq <= last) this.fail(`DH3 ${n.name}'s subscriber got ${key} after seq ${last} of that origin`);
    sub.last.set(frame.from, Math.max(last, frame.seq));
    sub.got.add(key);
  }

  fail(what: string): void {
    this.world.log(`VIOLATION ${what}`);
    this.violations.push(`t=${this.world.now()}: ${what}`);
  }

  /**
   * The stretches, as long as a publisher keeps what was acknowledged or longer, in which the subscriber's
   * node had no hub link or one the network cut (either way): away from every hub, whatever its link says.
   */
  #longAway(sub: Subscriber, end: number): [number, number][] {
    const cuts = this.world.cutLog.filter((c) => c.from === sub.node || c.to === sub.node);
    const changes = [...sub.links.map(([t, server]) => ({ t, server })), ...cuts.map((c) => ({ t: c.t, cut: c }))].sort((a, b) => a.t - b.t);
    const cutNow = new Set<string>();
    let server: string | null = null;
    let awaySince: number | null = null;
    const away: [number, number][] = [];
    // A heal shorter than the network's wait before it sends held frames again delivers nothing (peer-net-memory.ts: ten one-way trips).
    const brief = 10 * this.world.cfg.latency[1];
    let back: number | null = null;
    const note = (t: number) => {
      const isAway = server === null || (server !== sub.node && (cutNow.has(`${sub.node}>${server}`) || cutNow.has(`${server}>${sub.node}`)));
      if (isAway) {
        if (back !== null && t - back > brief) {
          if (back - awaySince! >= this.retentionMs) away.push([awaySince!, back]);
          awaySince = null;
        }
        back = null;
        awaySince ??= t;
      } else if (awaySince !== null) back ??= t;
    };
    for (const c of changes) {
      if (c.t < sub.links[0]![0]) continue;
      if ("cut" in c && c.cut) {
        const key = `${c.cut.from}>${c.cut.to}`;
        if (c.cut.cut) cutNow.add(key);
        else cutNow.delete(key);
      } else if ("server" in c) server = c.server ?? null;
      note(c.t);
    }
    if (awaySince !== null) {
      const until = back ?? end;
      if (until - awaySince >= this.retentionMs) away.push([awaySince, until]);
    }
    return away;
  }

  /** At the end of a run: DH1 over every acknowledged message; `splits` are the stretches both servers served. */
  check(splits: readonly [number, number][]): void {
    const alive = (node: string, inc: number) => {
      const n = this.world.nodes.get(node);
      return !!n?.state && n.inc === inc;
    };
    const lost: string[] = [];
    const retention = this.retentionMs;
    const end = this.world.now();
    const longAway = new Map(this.#subscribers.map((s) => [s, this.#longAway(s, end)]));
    for (const p of this.#published.values()) {
      const acked = p.ackedAt;
      if (acked === null || !alive(p.node, p.inc)) continue;
      for (const s of this.#subscribers) {
        if (s.established === null || s.established >= p.sentAt || !alive(s.node, s.inc)) continue;
        // Away from every hub for longer than the publisher keeps a message after its ack: beyond the promise (§Data Hub).
        // So is a publisher or subscriber stopped (SIGSTOP) within the retention after the ack: the stop counts as time kept,
        // and a stopped subscriber reads nothing while its link still stands (frames held, then lost with it).
        const stopped = (stalls: readonly [number, number][]) => stalls.some(([from, to]) => to > acked && from < acked + retention);
        // Or published during a split that outlasted the retention: the other side's subscribers are on another hub meanwhile.
        const longSplit = splits.some(([from, to]) => to - Math.max(from, acked) >= retention);
        if (longSplit || stopped(p.stalls) || stopped(s.stalls) || longAway.get(s)!.some(([from, to]) => to - Math.max(from, acked) >= retention)) {
          this.beyondRetention += 1;
          continue;
        }
        this.judged += 1;
        if (!s.got.has(`${p.origin}#${p.seq}`)) lost.push(`${p.origin}#${p.seq} (acked at ${acked}) to ${s.node}`);
      }
    }
    if (lost.length > 0) this.fail(`DH1 ${lost.length} acknowledged messages never reached a subscriber: ${lost.slice(0, 4).join(", ")}`);
  }
}
