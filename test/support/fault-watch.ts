/**
 * What one fault case did to the people using the network, measured from
 * outside the machines while the case runs (FaultCluster):
 *
 * - Messages: an app on the client publishes (`understudy pub`, batches of
 *   BATCH messages every INTERVAL_MS, each batch its own topic) and an app on
 *   the backup's machine subscribes (`understudy sub`); both are local apps of
 *   their own node, run in its namespace. Lost = messages a publisher had
 *   acknowledged that never reached the subscriber (must be 0).
 * - Servers: the main's and the backup's /api/status, polled every 50 ms in
 *   their namespaces: how long both said `active`, how often the backup took
 *   over, and whether any machine ever went back to a lower epoch.
 *
 *   const watch = await FaultWatch.start(cluster);   // subscribed; messages are flowing
 *   …fault…
 *   const report = await watch.finish();
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { FaultCluster } from "./fault-cluster.ts";
import type { LabProcess } from "./netns.ts";
import { readPolls, type StatusPoll } from "./status-poller.ts";
import { waitFor } from "./wait-for.ts";

const PUBLISHER = "c1";
const SUBSCRIBER = "backup";
const BATCH = 100;
const WARM_UP = "flow/warm-up";
const INTERVAL_MS = 20;
/** A publisher that hears no ack this long fails (and says how many were acknowledged). */
const PUB_WAIT_MS = 20_000;
const POLL_EVERY_MS = 50;
/** Upper bound on a watch's life: pollers and the subscriber stop on their own after it. */
const MAX_WATCH_MS = 15 * 60_000;
/** After the faults, how long acknowledged messages may take to reach the subscriber. */
const DELIVERY_GRACE_MS = 15_000;

export type WatchReport = {
  /** Times the backup's polls went from another state to `active`. */
  takeovers: number;
  /** Time both servers' polls said `active` (the later poll of the two bounds each stretch). */
  twoActiveMs: number;
  /** Per machine, the epochs its polls reported never went down (across restarts too). */
  epochsOnlyGrow: boolean;
  acknowledged: number;
  delivered: number;
  /** Acknowledged, never delivered. */
  lost: number;
  /** The first of those, as `topic#seq`, to say where to look. */
  missing: string[];
  duplicates: number;
  /** What the subscriber was told it missed (`gap` frames, on its stderr). */
  gaps: string[];
  /** Publishers that failed (refused, or no ack for PUB_WAIT_MS), with their message. */
  publishErrors: string[];
};

type Batch = { topic: string; acknowledged: number; error: string | null };
type Received = { topic: string; seq: number };

let watches = 0;

export class FaultWatch {
  private readonly batches: Batch[] = [];
  private stopping = false;
  private publishing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly cluster: FaultCluster,
    private readonly dir: string,
    private readonly subscriber: LabProcess,
    private readonly pollers: LabProcess[],
  ) {}

  /** Starts the pollers and the subscriber, and once a warm-up message reached it, the publisher. */
  static async start(cluster: FaultCluster): Promise<FaultWatch> {
    const dir = join(cluster.dir, `watch-${++watches}`);
    mkdirSync(dir, { recursive: true });
    const pollers = (["main", "backup"] as const).map((node) => cluster.poll(node, join(dir, `${node}.polls.jsonl`), POLL_EVERY_MS, MAX_WATCH_MS));
    const subscriber = cluster.app(SUBSCRIBER, ["sub", "flow/#", "--timeout-ms", String(MAX_WATCH_MS)], join(dir, "sub.jsonl"), join(dir, "sub.err"));
    const watch = new FaultWatch(cluster, dir, subscriber, pollers);
    // Only once the subscription is in place does a message owe it anything: warm up on a topic left out of the count.
    await cluster
      .explained(() =>
      waitFor(
        "a warm-up message at the subscriber",
        async () => {
          await cluster.app(PUBLISHER, ["pub", WARM_UP, "0"], join(dir, "warm.out"), join(dir, "warm.err")).exited;
          await Bun.sleep(200);
          return watch.received(true).length > 0;
        },
        20_000,
        0,
      ),
      )
      .catch(async (error) => {
        await Promise.all([subscriber, ...pollers].map((p) => p.stop("SIGKILL", 2_000)));
        throw error;
      });
    watch.publishing = watch.publish();
    return watch;
  }

  /** Stops publishing, waits for what was acknowledged to arrive (bounded), stops the helpers and sums up. */
  async finish(): Promise<WatchReport> {
    this.stopping = true;
    await this.publishing;
    // Bounded: what has not arrived by then is counted as lost below.
    await waitFor("every acknowledged message at the subscriber", () => missingMessages(this.batches, this.received()).length === 0, DELIVERY_GRACE_MS, 200).catch(() => null);
    await Promise.all([this.subscriber, ...this.pollers].map((p) => p.stop("SIGKILL", 2_000)));
    const received = this.received();
    const missing = missingMessages(this.batches, received);
    const [main, backup] = (["main", "backup"] as const).map((node) => readPolls(join(this.dir, `${node}.polls.jsonl`)));
    return {
      takeovers: takeovers(backup!),
      twoActiveMs: bothActiveMs(main!, backup!),
      epochsOnlyGrow: epochsOnlyGrow(main!) && epochsOnlyGrow(backup!),
      acknowledged: this.batches.reduce((sum, b) => sum + b.acknowledged, 0),
      delivered: received.length,
      lost: missing.length,
      missing: missing.slice(0, 20),
      duplicates: received.length - new Set(received.map((r) => `${r.topic}#${r.seq}`)).size,
      gaps: this.text("sub.err").split("\n").filter((line) => line.trim() !== ""),
      publishErrors: this.batches.flatMap((b) => (b.error ? [`${b.topic}: ${b.error}`] : [])),
    };
  }

  /** One `pub` after another until finish(): each is short, so a case of any length is covered, and each is accounted alone. */
  private async publish(): Promise<void> {
    for (let n = 1; !this.stopping; n++) {
      const topic = `flow/${n}`;
      const [out, err] = [join(this.dir, `pub-${n}.out`), join(this.dir, `pub-${n}.err`)];
      const pub = this.cluster.app(PUBLISHER, ["pub", topic, `{"batch":${n}}`, "--count", String(BATCH), "--interval-ms", String(INTERVAL_MS), "--wait-ms", String(PUB_WAIT_MS)], out, err);
      const code = await pub.exited;
      const said = this.text(`pub-${n}.err`).trim();
      const acknowledged = code === 0 ? BATCH : acknowledgedIn(said);
      this.batches.push({ topic, acknowledged, error: code === 0 ? null : said || `exit ${code}` });
      if (code !== 0) await Bun.sleep(200); // a node that refuses at once must not make this spin
    }
  }

  /** What the subscriber printed: the counted flow, or the warm-up messages. */
  private received(warmUp = false): Received[] {
    const lines: Received[] = [];
    for (const line of this.text("sub.jsonl").split("\n")) {
      try {
        const message = line.trim() ? (JSON.parse(line) as Received) : null;
        if (message && (message.topic === WARM_UP) === warmUp) lines.push(message);
      } catch {
        // the line being written right now
      }
    }
    return lines;
  }

  private text(name: string): string {
    try {
      return readFileSync(join(this.dir, name), "utf8");
    } catch {
      return "";
    }
  }
}

/** Acknowledged count in a failed `pub`'s message ("… 12 of 100 messages …"); 0 when it names none (refused before any ack). */
export function acknowledgedIn(message: string): number {
  return Number(/(\d+) of \d+ messages/.exec(message)?.[1] ?? 0);
}

/** Messages 1..acknowledged of each batch that the subscriber never printed, as `topic#seq`. */
export function missingMessages(batches: readonly { topic: string; acknowledged: number }[], received: readonly Received[]): string[] {
  const got = new Set(received.map((r) => `${r.topic}#${r.seq}`));
  const missing: string[] = [];
  for (const b of batches) for (let seq = 1; seq <= b.acknowledged; seq++) if (!got.has(`${b.topic}#${seq}`)) missing.push(`${b.topic}#${seq}`);
  return missing;
}

const isActive = (poll: StatusPoll | undefined) => poll?.status?.failover?.state === "active";

/**
 * Time both servers said `active`: on the merged timeline of both machines' polls, each stretch
 * between two consecutive polls during which the latest poll of each said `active`. A poll that
 * failed (a frozen or dead machine) counts as not active: it accepts no write then.
 */
export function bothActiveMs(main: readonly StatusPoll[], backup: readonly StatusPoll[]): number {
  const events = [...main.map((p) => ({ p, main: true })), ...backup.map((p) => ({ p, main: false }))].sort((a, b) => a.p.t - b.p.t);
  let mainActive = false;
  let backupActive = false;
  let total = 0;
  events.forEach((event, i) => {
    if (event.main) mainActive = isActive(event.p);
    else backupActive = isActive(event.p);
    const next = events[i + 1];
    if (next && mainActive && backupActive) total += next.p.t - event.p.t;
  });
  return total;
}

/** Times a machine's polls went from any other state (or no answer) to `active`. */
export function takeovers(polls: readonly StatusPoll[]): number {
  return polls.filter((p, i) => isActive(p) && i > 0 && !isActive(polls[i - 1])).length;
}

/** The epochs in a machine's polls, in order, never go down. */
export function epochsOnlyGrow(polls: readonly StatusPoll[]): boolean {
  const epochs = polls.flatMap((p) => (typeof p.status?.failover?.epoch === "number" ? [p.status.failover.epoch] : []));
  return epochs.every((e, i) => i === 0 || e >= epochs[i - 1]!);
}
