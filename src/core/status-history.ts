/**
 * What the console shows over time, sampled from the machine's status: the
 * round trip to each peer over the last minute (Delays panel, its SVG and
 * worst value), cumulative round-trip histograms and the failover and
 * failback counts (/metrics), the Data Hub's message rates over the last
 * ten seconds, and the last failover. `record()` is a plain step so tests
 * drive it with their own status and time. The failover counts and records
 * outlive a restart (`durable()`, kept in the data dir by the store).
 */
import { z } from "zod";
import { heardWithin } from "./heard.ts";
import type { MachineStatus } from "./status.ts";

export const HISTORY_SAMPLE_MS = 1000;
export const HISTORY_SAMPLES = 60;
/** Upper bounds (ms) of the round-trip histogram buckets; +Inf is implied. */
export const RTT_BUCKETS_MS = [0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000] as const;

/** Samples the Data Hub's message rates are taken over (10 s at one sample a second). */
export const RATE_WINDOW_SAMPLES = 10;

export type PeerDelayHistory = {
  id: string;
  name: string;
  role: string;
  /** Oldest first; null where the peer was not heard or gave no round trip. */
  samples: (number | null)[];
  worstMs: number | null;
  /** Cumulative counts per RTT_BUCKETS_MS bound, then +Inf; sum in ms. */
  buckets: number[];
  count: number;
  sumMs: number;
};

export const failoverRecordSchema = z.object({ at: z.string(), server: z.enum(["main", "backup"]), tookMs: z.number().nullable(), why: z.string() });
export type FailoverRecord = z.infer<typeof failoverRecordSchema>;

/** Failover records kept across restarts, newest last. */
export const KEPT_FAILOVER_RECORDS = 20;

/** What of the history outlives a restart: a restarted main still tells the last failover (issue 18 finding 10). */
export const durableHistorySchema = z.object({
  failovers: z.number().int().nonnegative(),
  failbacks: z.number().int().nonnegative(),
  records: z.array(failoverRecordSchema).max(KEPT_FAILOVER_RECORDS),
});
export type DurableHistory = z.infer<typeof durableHistorySchema>;

/** Messages (pub and set) a server's Data Hub took, and handed to subscribers, per second over the last RATE_WINDOW_SAMPLES samples. */
export type HubRates = { receivedPerSec: number; deliveredPerSec: number };

export type HistorySnapshot = {
  peers: PeerDelayHistory[];
  /** Null on a machine without a Data Hub, or before two samples. */
  hubRates: HubRates | null;
  failovers: number;
  failbacks: number;
  last: FailoverRecord | null;
  /** The failover timeout: a peer silent this long is "not heard" (core/heard.ts). */
  heardWithinMs: number;
};

/** Who serves the network as this machine sees it: the main, the backup, or not known. */
function servingServer(s: MachineStatus): "main" | "backup" | null {
  const active = s.failover?.activeServer ?? null;
  if (active === "self") return s.role === "backup" ? "backup" : "main";
  return active;
}

export class StatusHistory {
  private readonly peers = new Map<string, PeerDelayHistory>();
  private serving: "main" | "backup" | null = null;
  private failovers = 0;
  private failbacks = 0;
  private records: FailoverRecord[] = [];
  private hubCounts: { at: number; received: number; delivered: number }[] = [];

  constructor(
    private readonly heardWithinMs: number,
    restored: DurableHistory | null = null,
  ) {
    if (restored === null) return;
    this.failovers = restored.failovers;
    this.failbacks = restored.failbacks;
    this.records = restored.records.slice(-KEPT_FAILOVER_RECORDS);
  }

  /** Takes one sample; true when the durable part changed (a failover or failback was seen) and should be saved. */
  record(s: MachineStatus, wallNow: number): boolean {
    const before = this.records.length === 0 ? null : this.records.at(-1)!;
    const seen = new Set<string>();
    for (const p of s.failover?.peers ?? []) {
      seen.add(p.id);
      const h = this.peers.get(p.id) ?? this.fresh(p.id);
      h.name = p.name;
      h.role = p.role;
      const rtt = heardWithin(p.lastHeardMsAgo, this.heardWithinMs) ? p.delayMs : null;
      this.push(h, rtt);
    }
    for (const [id, h] of this.peers) {
      if (seen.has(id)) continue;
      this.push(h, null);
      if (h.samples.every((x) => x === null)) this.peers.delete(id);
    }
    this.noteServing(s, wallNow);
    this.noteHubCounts(s, wallNow);
    return (this.records.at(-1) ?? null) !== before;
  }

  durable(): DurableHistory {
    return { failovers: this.failovers, failbacks: this.failbacks, records: [...this.records] };
  }

  snapshot(): HistorySnapshot {
    return {
      peers: [...this.peers.values()].map((p) => ({ ...p, samples: [...p.samples], buckets: [...p.buckets] })),
      hubRates: this.hubRates(),
      failovers: this.failovers,
      failbacks: this.failbacks,
      last: this.records.at(-1) ?? null,
      heardWithinMs: this.heardWithinMs,
    };
  }

  private fresh(id: string): PeerDelayHistory {
    const h: PeerDelayHistory = { id, name: "", role: "", samples: [], worstMs: null, buckets: new Array(RTT_BUCKETS_MS.length + 1).fill(0), count: 0, sumMs: 0 };
    this.peers.set(id, h);
    return h;
  }

  private push(h: PeerDelayHistory, rtt: number | null): void {
    h.samples.push(rtt);
    if (h.samples.length > HISTORY_SAMPLES) h.samples.shift();
    const heard = h.samples.filter((x): x is number => x !== null);
    h.worstMs = heard.length ? Math.max(...heard) : null;
    if (rtt === null) return;
    h.count++;
    h.sumMs += rtt;
    RTT_BUCKETS_MS.forEach((bound, i) => {
      if (rtt <= bound) h.buckets[i]!++;
    });
    h.buckets[RTT_BUCKETS_MS.length]!++;
  }

  private noteHubCounts(s: MachineStatus, wallNow: number): void {
    const hub = s.hub;
    const previous = this.hubCounts.at(-1);
    if (!hub) return void (this.hubCounts = []);
    const sample = { at: wallNow, received: (hub.received.pub ?? 0) + (hub.received.set ?? 0), delivered: hub.deliveries };
    // Counters start again with a restarted hub, and a wall clock set back would give negative rates: start a new window.
    if (previous && (sample.received < previous.received || sample.delivered < previous.delivered || sample.at <= previous.at)) this.hubCounts = [];
    this.hubCounts.push(sample);
    if (this.hubCounts.length > RATE_WINDOW_SAMPLES + 1) this.hubCounts.shift();
  }

  private hubRates(): HubRates | null {
    const first = this.hubCounts[0];
    const last = this.hubCounts.at(-1);
    if (!first || !last || last === first) return null;
    const seconds = (last.at - first.at) / 1000;
    return { receivedPerSec: (last.received - first.received) / seconds, deliveredPerSec: (last.delivered - first.delivered) / seconds };
  }

  private noteServing(s: MachineStatus, wallNow: number): void {
    const now = servingServer(s);
    if (now === null || now === this.serving) return;
    const before = this.serving;
    this.serving = now;
    if (before === null) return;
    const main = s.failover?.peers.find((p) => p.role === "main");
    if (now === "backup") {
      this.failovers++;
      const silent = main ? Math.round(main.lastHeardMsAgo) : null;
      this.keep({
        at: new Date(wallNow).toISOString(),
        server: "backup",
        tookMs: silent,
        why: silent === null ? "The main server stopped answering." : `The main server stopped answering; it was last heard ${silent} ms before.`,
      });
    } else {
      this.failbacks++;
      this.keep({ at: new Date(wallNow).toISOString(), server: "main", tookMs: null, why: "The main server came back and took the network back." });
    }
  }

  private keep(record: FailoverRecord): void {
    this.records.push(record);
    if (this.records.length > KEPT_FAILOVER_RECORDS) this.records.shift();
  }
}
