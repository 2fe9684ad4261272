/**
 * The show-file log lane in the simulator, with the objects a server runs
 * (docs/design.md §Lanes and replication): each server's stores over its own
 * SQLite database (in memory, kept across crashes as its disk), the main's
 * production LogReplicationSource on `/replicate-log` and the backup's
 * production LogReplicationSink on a ServerLink, over the in-memory peer port,
 * wired as machine/server-copy.ts and peer-runtime.ts wire them. Each
 * server's log lane (its heartbeats' heads) is its log's real position.
 *
 * It keeps the ledger for these invariants:
 *  LL1 nothing acknowledged is lost across a failover: when the backup starts
 *      serving, it holds every push the main acknowledged as applied on the
 *      backup (its log and its show file's head);
 *  LL2 the lane converges: a paired backup idle beside the active main at
 *      the end of a run holds the main's log (same history, same last entry)
 *      and the same show-file head.
 *
 * bun:sqlite only: under Deno (test/sim/deno-run.ts) sim-hub.ts runs without it.
 */
import { Database } from "bun:sqlite";
import type { Clock, Timers } from "../../src/core/clock.ts";
import type { HostPort } from "../../src/core/config.ts";
import type { Logger } from "../../src/log.ts";
import type { PeerDialer, PeerService } from "../../src/net/peer-net.ts";
import { LogReplicationSink, LogReplicationSource } from "../../src/services/show-file-log-replication.ts";
import { openDatabase } from "../../src/store/database.ts";
import { createStores, type Stores } from "../../src/store/stores.ts";
import type { SimNode, World } from "./world.ts";

/** A new server's empty database, migrated once per process and copied (migrating each would cost more than a seed). */
let template: Uint8Array | null = null;

function freshDatabase(name: string): Database {
  template ??= openDatabase(":memory:").serialize();
  const db = Database.deserialize(template, { strict: true } as never);
  // The pragmas a connection holds (database.ts openDatabase); an in-memory database has no WAL or fsync to set.
  db.run("PRAGMA foreign_keys = ON");
  db.run("PRAGMA temp_store = MEMORY");
  // A history named after its machine (a random one on a real machine) keeps a seed's trace the same on every replay.
  db.run("UPDATE replication_state SET log_id = ?", [`log-${name}`]);
  keepStatements(db);
  return db;
}

/**
 * A restart reopens the same database and builds its stores anew (new objects, nothing held in
 * memory from before), as a real one does; only the compiled statements are kept with the disk,
 * as `db.query` documents it caches them: compiling ~40 statements at every simulated process
 * start cost more than the restart it simulates.
 */
function keepStatements(db: Database): void {
  const compiled = new Map<string, ReturnType<Database["query"]>>();
  const compile = db.query.bind(db);
  db.query = ((sql: string) => {
    let statement = compiled.get(sql);
    if (!statement) compiled.set(sql, (statement = compile(sql)));
    return statement;
  }) as Database["query"];
}

/** What a server's log lane needs from the machine it runs on. */
export type LaneMachine = {
  readonly node: SimNode;
  readonly serve: (service: PeerService) => void;
  readonly net: PeerDialer;
  readonly timers: Timers;
  readonly clock: Clock;
  readonly log: Logger;
  /** The main the backup copies from now (core/routing.ts replicationSource, at the address heartbeats go to). */
  readonly source: () => HostPort | null;
  /** The machine's seeded randomness (refusal back-off jitter). */
  readonly random: () => number;
};

type Running = { readonly inc: number; readonly stores: Stores; readonly feed: LogReplicationSource | null; readonly sink: LogReplicationSink | null };

export class LogLanes {
  /** Each server's database: its disk, across crashes. */
  readonly #disks = new Map<string, Database>();
  readonly #running = new Map<string, Running>();
  /** Pushes the main acknowledged as applied on the backup: revision and log entry. */
  readonly #acked: { rev: number; seq: number }[] = [];
  readonly violations: string[] = [];
  /** Pushes written on the main, and acknowledged by the backup; runs whose end LL2 judged. */
  pushes = 0;
  ackedPushes = 0;
  lanesJudged = 0;

  constructor(
    readonly world: World,
    /** How long a push waits for the backup's acknowledgement before it is answered "behind" (--sync-timeout-ms). */
    readonly syncTimeoutMs: number,
  ) {}

  /** A server's new incarnation opens its database and runs its side of the lane. */
  started(m: LaneMachine): void {
    const n = m.node;
    let db = this.#disks.get(n.name);
    if (!db) this.#disks.set(n.name, (db = freshDatabase(n.name)));
    const stores = createStores(db, m.clock);
    this.#tapApplies(n, stores);
    let feed: LogReplicationSource | null = null;
    let sink: LogReplicationSink | null = null;
    if (n.role === "main") {
      feed = new LogReplicationSource(stores, () => n.disk.pairing !== null, m.log, m.timers);
      m.serve(feed);
    } else {
      sink = new LogReplicationSink({ net: m.net, source: m.source, stores, retryMs: this.world.cfg.timings.heartbeatMs, log: m.log, clock: m.clock, timers: m.timers, random: m.random });
    }
    this.#running.set(n.name, { inc: n.inc, stores, feed, sink });
    this.#syncLane(n, stores);
  }

  crashed(n: SimNode): void {
    this.#running.delete(n.name);
  }

  /** A new network key: the copy starts afresh under it (peer-runtime.ts setNetworkKey). */
  keyChanged(n: SimNode): void {
    this.#running.get(n.name)?.sink?.restart();
  }

  /** A push on the active main, acknowledged as FilesService acknowledges it (once the backup applied it, or "behind"). */
  write(main: SimNode): void {
    const r = this.#running.get(main.name);
    if (!r?.feed) return;
    const head = r.stores.showFile.head();
    const result = r.stores.showFile.push({
      base: head, changes: [{ path: `cues/${head % 4}.json`, content: new TextEncoder().encode(`{"cue":${head + 1}}`) }], message: "sim", author: main.name,
    });
    this.pushes += 1;
    this.#syncLane(main, r.stores);
    const inc = main.inc;
    void r.feed.waitApplied(result.seq, this.syncTimeoutMs).then((how) => {
      if (how !== "backup" || main.inc !== inc) return;
      this.ackedPushes += 1;
      this.#acked.push({ rev: result.rev, seq: result.seq });
      this.world.log(`main: push rev ${result.rev} (seq ${result.seq}) acknowledged as applied on the backup`);
    });
  }

  /** LL1, when a server starts serving: the backup holds every push acknowledged as applied on it. */
  startedServing(n: SimNode): void {
    const r = this.#running.get(n.name);
    if (n.role !== "backup" || !r || this.#acked.length === 0) return;
    const position = r.stores.log.position();
    const head = r.stores.showFile.head();
    const missing = this.#acked.filter((a) => position.logId !== "log-main" || a.seq > position.lastSeq || a.rev > head);
    if (missing.length > 0) {
      this.fail(`LL1 the backup serves without ${missing.length} pushes the main acknowledged as applied on it (first: rev ${missing[0]!.rev}, seq ${missing[0]!.seq}; it holds ${position.logId} through ${position.lastSeq}, head ${head})`);
    }
  }

  /** LL2 at the end, when a paired backup is idle beside the active main. */
  check(): void {
    const [mn, bn] = [this.world.node("main"), this.world.node("backup")];
    const [m, b] = [this.#running.get("main"), this.#running.get("backup")];
    if (!m || !b || mn.serving === null || bn.serving !== null || bn.disk.pairing?.peerId !== "main" || mn.disk.pairing?.peerId !== "backup") return;
    this.lanesJudged += 1;
    const [want, have] = [m.stores.log.position(), b.stores.log.position()];
    const [wantHead, haveHead] = [m.stores.showFile.head(), b.stores.showFile.head()];
    if (want.logId !== have.logId || want.lastSeq !== have.lastSeq || wantHead !== haveHead) {
      this.fail(`LL2 the backup's show-file log differs from the main's after faults stopped (main ${want.logId} through ${want.lastSeq}, head ${wantHead}; backup ${have.logId} through ${have.lastSeq}, head ${haveHead})`);
    }
  }

  fail(what: string): void {
    this.world.log(`VIOLATION ${what}`);
    this.violations.push(`t=${this.world.now()}: ${what}`);
  }

  /** The server's log lane is its log's position (machine/server-data.ts serverLanes). */
  #syncLane(n: SimNode, stores: Stores): void {
    const p = stores.log.position();
    const l = n.disk.lanes;
    if (l.logId !== p.logId || l.logSeq !== p.lastSeq) n.disk.lanes = { ...l, logId: p.logId, logSeq: p.lastSeq };
  }

  /** Whatever the sink applies moves the backup's lane at once, as its next heartbeat reads it. */
  #tapApplies(n: SimNode, stores: Stores): void {
    const log = stores.log;
    const sync = () => this.#syncLane(n, stores);
    const applyEntry = log.applyEntry.bind(log);
    const applySnapshotPage = log.applySnapshotPage.bind(log);
    const beginSnapshot = log.beginSnapshot.bind(log);
    log.applyEntry = (entry) => {
      const applied = applyEntry(entry);
      sync();
      return applied;
    };
    log.applySnapshotPage = (page) => {
      const progress = applySnapshotPage(page);
      sync();
      return progress;
    };
    log.beginSnapshot = (start) => {
      beginSnapshot(start);
      sync();
    };
  }
}
