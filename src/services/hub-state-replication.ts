/**
 * The backup's copy of the main's Data Hub state (docs/design.md §Lanes and replication),
 * on `/replicate`: every heartbeat period it asks "what changed since my
 * last version" on one held-open connection, while it is paired and not
 * serving. The first answer is its first complete copy (the core's syncDone);
 * that connection breaking is an immediate "main is down" signal. The main,
 * back after the backup served, asks once the same way (catch-up).
 */
import { formatHostPort, type HostPort } from "../core/config.ts";
import type { Version } from "../hub/frames.ts";
import { connectSecure, type SecureConnection, type SecureSocketOptions } from "../net/secure-socket.ts";
import { replicateAnswerSchema, safeJson, type HubService } from "./hub-service.ts";

const text = new TextEncoder();
const decoder = new TextDecoder();

/** One request on /replicate: what changed since `version`. */
export async function fetchHubStateChanges(at: HostPort, secure: SecureSocketOptions, version: Version) {
  let answer: (value: unknown) => void = () => {};
  const got = new Promise<unknown>((resolve) => (answer = resolve));
  const connection = await connectSecure(`${at.host}:${at.port}`, "/replicate", secure, () => ({
    message: (payload) => answer(safeJson(decoder.decode(payload))),
    close: () => answer(null),
  }));
  connection.send(text.encode(JSON.stringify({ type: "since", version })));
  const parsed = replicateAnswerSchema.safeParse(await Promise.race([got, Bun.sleep(5000).then(() => null)]));
  connection.close(1000, "done");
  if (!parsed.success) throw new Error(`${at.host}:${at.port} did not send its Data Hub state.`);
  return parsed.data.changes;
}

export class HubStateReplication {
  private connection: SecureConnection | null = null;
  private timer: ReturnType<typeof setInterval>;
  private waiting = false;
  private syncedOnce = false;
  private stopped = false;

  constructor(
    private readonly main: () => HostPort | null,
    private readonly secure: SecureSocketOptions,
    private readonly hub: HubService,
    periodMs: number,
    /** Only while paired and not serving: an unpaired backup copies nothing. */
    private readonly following: () => boolean,
    private readonly signals: { synced: () => void; broken: () => void },
  ) {
    this.timer = setInterval(() => this.step(), periodMs);
  }

  private step(): void {
    if (this.stopped) return;
    const main = this.main();
    if (!this.following() || main === null) {
      this.connection?.close(1000, "not following");
      this.connection = null;
      return;
    }
    if (this.connection === null) {
      if (this.waiting) return;
      this.waiting = true;
      connectSecure(formatHostPort(main), "/replicate", this.secure, (connection) => ({
        message: (payload) => {
          this.waiting = false;
          const parsed = replicateAnswerSchema.safeParse(safeJson(decoder.decode(payload)));
          if (!parsed.success) return;
          this.hub.importChanges(parsed.data.changes);
          if (!this.syncedOnce) {
            this.syncedOnce = true;
            this.signals.synced();
          }
        },
        close: () => {
          if (this.connection !== connection) return;
          this.connection = null;
          this.waiting = false;
          this.syncedOnce = false;
          if (!this.stopped) this.signals.broken();
        },
      })).then(
        (connection) => {
          this.connection = connection;
          this.waiting = false;
        },
        () => {
          this.waiting = false;
        },
      );
      return;
    }
    if (this.waiting) return;
    this.waiting = true;
    this.connection.send(text.encode(JSON.stringify({ type: "since", version: this.hub.core.lastVersion })));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.connection?.close(1000, "stopping");
  }
}
