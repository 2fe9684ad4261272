/**
 * The backup's copy of the main's Data Hub state (docs/design.md §Lanes and replication),
 * on `/replicate`: every heartbeat period it asks "what changed
 * since my last version" on one held-open connection, while it follows a main
 * (core/routing.ts replicationSource). The first answer on each connection
 * is a complete copy (the core's syncDone); that connection breaking is an
 * immediate "main is down" signal. A main waiting to be switched back runs
 * the same loop on the backup; back after the backup served, it asks once
 * the same way before it serves (catchUpFrom).
 */
import type { Timers } from "../core/clock.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import type { Version } from "../hub/frames.ts";
import type { PeerDialer } from "../net/peer-net.ts";
import type { PeerRefusals } from "../net/peer-refusals.ts";
import type { ConnectionEvents, SecureConnection } from "../net/secure-socket.ts";
import { ServerLink } from "../net/server-link.ts";
import { systemTimers } from "../net/system-time.ts";
import { ZERO_VERSION, type HubStateChanges } from "../hub/retained-state.ts";
import { replicateAnswerSchema, safeJson, type HubService } from "./hub-service.ts";

const text = new TextEncoder();
const decoder = new TextDecoder();
/** How long the one catch-up question may take. */
export const CATCH_UP_ANSWER_MS = 5000;

/** Pages one copy may take (each up to HUB_COPY_PAGE_BYTES): far more than the largest state allowed, so only a peer that never ends is cut off. */
export const MAX_COPY_PAGES = 10_000;

/**
 * What changed on the server at `at` since `version`, on one /replicate connection: each page handed to
 * `take` as it arrives (exportSince pages a large state), until the last. Resolves with the last `through`.
 */
export async function fetchHubStateChanges(net: PeerDialer, at: HostPort, version: Version, take: (changes: HubStateChanges) => void, timers: Timers = systemTimers): Promise<Version> {
  let closed = false;
  let answer: (value: unknown) => void = () => {};
  const connection = await net.dial(at, "/replicate", () => ({
    message: (payload) => answer(safeJson(decoder.decode(payload))),
    close: () => {
      closed = true;
      answer(null);
    },
  }));
  try {
    let since = version;
    for (let page = 0; page < MAX_COPY_PAGES; page++) {
      const got = closed ? Promise.resolve(null) : new Promise<unknown>((resolve) => (answer = resolve));
      connection.send(text.encode(JSON.stringify({ type: "since", version: since })));
      const cancel = timers.after(CATCH_UP_ANSWER_MS, () => answer(null));
      const parsed = replicateAnswerSchema.safeParse(await got);
      cancel();
      if (!parsed.success) throw new Error(`${formatHostPort(at)} did not send its Data Hub state.`);
      take(parsed.data.changes);
      if (!parsed.data.changes.more) return parsed.data.changes.through;
      since = parsed.data.changes.through;
    }
    throw new Error(`${formatHostPort(at)} sent more than ${MAX_COPY_PAGES} pages of Data Hub state.`);
  } finally {
    connection.close(1000, "done");
  }
}

/** How far this server has copied the other's state (store/copy-mark-file.ts): null means from the start. */
export type CopyMark = { read(): Version | null; write(through: Version): void };

/**
 * The main's catch-up (before it serves again, or while serving after it took over without the
 * backup's latest writes): what changed on the backup since the copy mark (the `through` its last
 * copy from this backup imported, or where it stood when it began serving without them:
 * DataHubParts), else since its own last version, imported, then the mark moved on. Importing an
 * answer twice changes nothing (newer versions win, set marks are deduplicated), so an answer of
 * the standby copy arriving late loses and doubles nothing.
 */
export async function catchUpFrom(net: PeerDialer, at: HostPort, hub: Pick<HubService, "importChanges" | "core">, mark: CopyMark, timers: Timers = systemTimers): Promise<void> {
  // Each page imported and marked as it comes: a copy cut short resumes after the last page, not from the start.
  await fetchHubStateChanges(
    net,
    at,
    mark.read() ?? hub.core.lastVersion,
    (changes) => {
      hub.importChanges(changes);
      mark.write(changes.through);
    },
    timers,
  );
}

/** One connection's state: a question out, and whether it has brought its first complete copy. */
type CopySession = ConnectionEvents & { connection: SecureConnection; waiting: boolean };

export class HubStateReplication {
  private readonly link: ServerLink<CopySession>;
  private readonly stopTimer: () => void;
  private readonly hub: Pick<HubService, "importChanges">;
  private readonly mark: CopyMark;

  constructor(options: {
    net: PeerDialer;
    /** The server to copy from now, or null while this one copies nothing (core/routing.ts replicationSource). */
    source: () => HostPort | null;
    hub: Pick<HubService, "importChanges">;
    periodMs: number;
    refusals: PeerRefusals;
    signals: { synced: () => void; broken: () => void };
    /** Where the last answer's `through` is kept; without it, kept in memory only. */
    mark?: CopyMark;
    timers?: Timers;
  }) {
    const { hub, signals } = options;
    this.hub = hub;
    this.mark = options.mark ?? memoryMark();
    const timers = options.timers ?? systemTimers;
    this.link = new ServerLink({
      net: options.net,
      path: "/replicate",
      target: options.source,
      // Per connection: a connection dropped for any reason (not following any more, the main moved)
      // leaves nothing behind, and the next one reports its first copy again.
      session: (connection) => {
        let syncedOnce = false;
        const session: CopySession = {
          connection,
          waiting: false,
          message: (payload) => {
            session.waiting = false;
            const parsed = replicateAnswerSchema.safeParse(safeJson(decoder.decode(payload)));
            if (!parsed.success) return;
            hub.importChanges(parsed.data.changes);
            this.mark.write(parsed.data.changes.through);
            // A page of more: ask for the next at once; the first complete copy is the one that ends without more.
            if (parsed.data.changes.more) return this.ask(session);
            if (!syncedOnce) {
              syncedOnce = true;
              signals.synced();
            }
          },
          close: () => {},
        };
        return session;
      },
      keep: true,
      retryMs: options.periodMs,
      timers,
      refusals: options.refusals,
      event: "hub-state replication link failed",
      quietWhenUnreachable: true,
      broken: () => signals.broken(),
      // A new connection asks at once, not a period later: a copy that just started (a main that began to
      // wait, a backup that paired) holds nothing until its first answer.
      up: (_to, session) => this.ask(session),
    });
    this.stopTimer = timers.every(options.periodMs, () => this.tick());
  }

  /** One period: follow the current source, and ask what changed unless a question is still out. */
  tick(): void {
    this.link.step();
    const session = this.link.session;
    if (session) this.ask(session);
  }

  private ask(session: CopySession): void {
    if (session.waiting) return;
    session.waiting = true;
    // Since the other server's `through` last imported, never since this one's own last version: after the
    // backup served, its own writes are newer than those the main took while cut off, and those would never be asked for.
    session.connection.send(text.encode(JSON.stringify({ type: "since", version: this.mark.read() ?? ZERO_VERSION })));
  }

  /** Drops the connection, so the next one starts afresh and reports its first complete copy again (a new pairing, a new key). */
  restart(): void {
    this.link.drop("Starting the copy afresh.");
  }

  stop(): void {
    this.stopTimer();
    this.link.stop();
  }
}

function memoryMark(): CopyMark {
  let through: Version | null = null;
  return { read: () => through, write: (v) => void (through = v) };
}
