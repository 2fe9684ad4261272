/**
 * One connection at one path to whichever server is current (docs/design.md
 * §Lanes and replication): the app gateway's uplink, the backup's two copy
 * loops and the forwarders of show-file and asset calls all keep theirs here.
 *
 * - The server is a function read on every step (`target`), so a changed
 *   address or a changed partner takes effect at the next step; null means
 *   "none now" and closes the link.
 * - Each connection gets its own session (`session(connection)`), so state
 *   kept per connection starts fresh with the next one whatever closed the
 *   last. A session's `close` runs exactly once, at once when the link drops
 *   the connection itself, and no frame reaches a session after that.
 * - A link that `keep`s retries by itself after a failed dial or a close, no
 *   sooner than `retryMs` and, after a refusal, no sooner than the refusal
 *   table says (PeerRefusals). A close the link did not ask for is "broken",
 *   except one with CLOSE_NETWORK_KEY_CHANGED: a key saved on either side is
 *   not a server gone (docs/design.md §Security), so the link only dials again.
 * - A link given a `spare` keeps a second connection, idle, to the server that
 *   may be the target next (a client's node: the server it does not follow).
 *   When the target becomes that server, the spare becomes the link's connection
 *   at once: a failover costs no dial and no handshake (docs/design.md §Data Hub).
 *   The spare's session is built only then; nothing it receives before reaches
 *   anyone, and its closing is nobody's news: it is dialled again, quietly.
 */
import type { Timers } from "../core/clock.ts";
import { formatHostPort, type HostPort } from "../core/config.ts";
import type { PeerDialer } from "./peer-net.ts";
import type { PeerPath } from "./peer-endpoint.ts";
import { isRefusal, type PeerRefusals } from "./peer-refusals.ts";
import { CLOSE_NETWORK_KEY_CHANGED, type ConnectionEvents, type SecureConnection } from "./secure-socket.ts";

export type ServerLinkOptions<S extends ConnectionEvents> = {
  net: PeerDialer;
  path: PeerPath;
  /** The server to be connected to now, or null for none. */
  target: () => HostPort | null;
  /** The handlers of one connection, built once it is authenticated. */
  session: (connection: SecureConnection, to: HostPort) => S;
  /** Keep the link up by itself (retry after failures and closes); otherwise it dials only when asked (`ready`). */
  keep: boolean;
  retryMs: number;
  timers: Timers;
  /** Failed dials are logged under `event` (repeats once a minute) and refusals back off; without, the caller of `ready` sees every error. */
  refusals?: PeerRefusals;
  event?: string;
  /** Log only refusals (a server that does not answer is the failover's to report, not this link's). */
  quietWhenUnreachable?: boolean;
  /** The connection closed without this link asking (not for a key change: see `rekeyed`). */
  broken?: (to: HostPort, reason: string) => void;
  /** The connection closed because a network key was saved on either side; the link dials again. */
  rekeyed?: (to: HostPort, reason: string) => void;
  /** Connected (after a dial resolved and the session is built, or a spare was taken over). */
  up?: (to: HostPort, session: S) => void;
  /** The server to keep an idle connection to, ready to take over as the link's (never the target itself), or null. */
  spare?: () => HostPort | null;
  /** How soon a spare that failed or closed is dialled again. */
  spareRetryMs?: number;
};

/** The error `ready()` rejects with while there is no server to connect to. */
export type NoTarget = () => Error;

type Open<S> = { to: HostPort; address: string; connection: SecureConnection; session: S; live: boolean };
/** An idle connection to the spare server; `open` once it became the link's. */
type Spare<S> = { to: HostPort; address: string; connection: SecureConnection; live: boolean; open: Open<S> | null };

/** A spare that failed or closed is dialled again no sooner than this by default: it is idle, and its server may be down for long. */
export const SPARE_RETRY_MS = 1_000;

export class ServerLink<S extends ConnectionEvents> {
  private open: Open<S> | null = null;
  private dialing: { address: string; done: Promise<Open<S>> } | null = null;
  private cancelRetry: (() => void) | null = null;
  private stopped = false;
  private spareOpen: Spare<S> | null = null;
  private spareDialing: string | null = null;
  /** Raised when the spare is redialled for a new key: a dial begun before is not wanted when it answers. */
  private spareGeneration = 0;
  private cancelSpareRetry: (() => void) | null = null;

  constructor(private readonly options: ServerLinkOptions<S>) {}

  /** The session of the open connection, or null. */
  get session(): S | null {
    return this.open?.live ? this.open.session : null;
  }

  get connection(): SecureConnection | null {
    return this.open?.live ? this.open.connection : null;
  }

  /** Where the open connection goes ("host:port"), or null. */
  get address(): string | null {
    return this.open?.live ? this.open.address : null;
  }

  /**
   * Brings the link in line with the target, synchronously: a connection to
   * another server (or to none) is dropped, and a missing one is dialled unless
   * one is on its way or the refusal table says wait.
   */
  step(): void {
    if (this.stopped) return;
    this.align(this.options.target());
    this.alignSpare();
  }

  /** The session of an open connection to the current server, dialling it if needed; rejects with the dial's error, or `noTarget()`. */
  async ready(noTarget: NoTarget): Promise<S> {
    if (this.stopped) throw noTarget();
    const to = this.options.target();
    this.align(to);
    if (this.open) return this.open.session;
    if (to === null || !this.dialing) throw noTarget();
    const open = await this.dialing.done;
    if (!open.live) throw noTarget();
    return open.session;
  }

  private align(to: HostPort | null): void {
    const address = to === null ? null : formatHostPort(to);
    const open = this.open;
    if (open && !open.connection.open) this.closed(open, "The connection was lost.");
    else if (open && open.address !== address) this.drop("Following another server now.");
    if (this.open || to === null || address === null) return;
    if (this.takeSpare(address)) return;
    if (this.dialing?.address === address) return;
    if (this.options.keep && (this.options.refusals?.waitMs(address) ?? 0) > 0) return this.retryLater();
    this.dial(to, address).catch(() => {});
  }

  /** Closes the open connection now (its session's `close` runs now); a keeping link dials again after `retryMs`. */
  drop(reason: string): void {
    const open = this.open;
    if (!open) return;
    this.open = null;
    this.end(open, reason);
    open.connection.close(1001, reason);
    if (this.options.keep) this.retryLater();
  }

  stop(reason = "stopping"): void {
    this.stopped = true;
    this.cancelRetry?.();
    this.cancelRetry = null;
    this.cancelSpareRetry?.();
    this.cancelSpareRetry = null;
    this.dropSpare(reason);
    const open = this.open;
    this.open = null;
    if (open) {
      this.end(open, reason);
      open.connection.close(1000, reason);
    }
  }

  private dial(to: HostPort, address: string): Promise<Open<S>> {
    const { net, path, refusals } = this.options;
    const event = this.event;
    let entry: Open<S> | null = null;
    const done = net
      .dial(to, path, (connection) => {
        entry = { to, address, connection, session: this.options.session(connection, to), live: true };
        const me = entry;
        return {
          message: (payload) => me.live && me.session.message(payload),
          broadcast: me.session.broadcast ? (frame) => me.live && me.session.broadcast!(frame) : undefined,
          bulk: me.session.bulk ? (payload) => me.live && me.session.bulk!(payload) : undefined,
          close: (reason, code) => this.closed(me, reason, code),
        };
      })
      .then(
        () => {
          const me = entry!;
          if (this.dialing?.done === done) this.dialing = null;
          refusals?.succeeded(address, event);
          // A keeping link checks the server is still wanted; a link dialled on demand was just asked for it.
          const still = this.options.keep ? this.options.target() : to;
          if (this.stopped || this.open || still === null || formatHostPort(still) !== address) {
            // Asked for while the server was another: not wanted any more.
            this.end(me, "Following another server now.");
            me.connection.close(1001, "Following another server now.");
            this.step();
            return me;
          }
          if (!me.live) {
            // Closed before the dial's answer was read: closed() could not see it as this link's.
            if (this.options.keep) this.retryLater();
            return me;
          }
          this.open = me;
          this.options.up?.(to, me.session);
          return me;
        },
        (error) => {
          if (this.dialing?.done === done) this.dialing = null;
          if (!this.options.quietWhenUnreachable || isRefusal(error)) refusals?.failed(address, error, event);
          if (this.options.keep) this.retryLater();
          throw error;
        },
      );
    this.dialing = { address, done };
    return done;
  }

  /** The connection closed by itself (the other side, the network): the session ends and a keeping link tries again. */
  private closed(me: Open<S>, reason: string, code?: number): void {
    if (!me.live) return;
    this.end(me, reason);
    if (this.open !== me) return;
    this.open = null;
    if (code === CLOSE_NETWORK_KEY_CHANGED) this.options.rekeyed?.(me.to, reason);
    else this.options.broken?.(me.to, reason);
    if (this.options.keep) this.retryLater();
  }

  private end(me: Open<S>, reason: string): void {
    if (!me.live) return;
    me.live = false;
    me.session.close(reason);
  }

  /**
   * Closes the spare and dials it again now, whatever the back-off says: it was proven under a
   * network key that is no longer this machine's, and a refusal under the old key says nothing.
   */
  redialSpare(reason: string): void {
    this.dropSpare(reason);
    this.cancelSpareRetry?.();
    this.cancelSpareRetry = null;
    this.spareGeneration++;
    this.spareDialing = null;
    if (!this.stopped) this.alignSpare(true);
  }

  private get event(): string {
    return this.options.event ?? `${this.options.path} link failed`;
  }

  /** The spare, if it goes to `address` and is still open, becomes the link's connection now. */
  private takeSpare(address: string): boolean {
    const spare = this.spareOpen;
    if (!spare || spare.address !== address) return false;
    this.spareOpen = null;
    if (!spare.live || !spare.connection.open) return false;
    const open: Open<S> = { to: spare.to, address, connection: spare.connection, session: this.options.session(spare.connection, spare.to), live: true };
    spare.open = open;
    this.open = open;
    this.options.up?.(spare.to, open.session);
    return true;
  }

  /** Keeps the spare in line with `spare()`: another one (or the target itself, or none) is closed, a missing one dialled (`now`: whatever the back-off says). */
  private alignSpare(now = false): void {
    const want = this.options.spare?.() ?? null;
    const address = want === null ? null : formatHostPort(want);
    const target = this.options.target();
    const wanted = address !== null && (target === null || formatHostPort(target) !== address) ? address : null;
    if (this.spareOpen && (this.spareOpen.address !== wanted || !this.spareOpen.connection.open)) this.dropSpare("Not the spare server any more.");
    if (want === null || wanted === null || this.spareOpen || this.spareDialing === wanted || this.cancelSpareRetry) return;
    if (!now && (this.options.refusals?.waitMs(wanted) ?? 0) > 0) return this.spareLater();
    this.dialSpare(want, wanted);
  }

  private dialSpare(to: HostPort, address: string): void {
    let spare: Spare<S> | null = null;
    const generation = this.spareGeneration;
    const mine = () => generation === this.spareGeneration;
    this.spareDialing = address;
    this.options.net
      .dial(to, this.options.path, (connection) => {
        const me: Spare<S> = (spare = { to, address, connection, live: true, open: null });
        // Until taken over, what arrives is dropped (a hub sends nothing before the node's hello).
        return {
          message: (payload) => me.open?.live && me.open.session.message(payload),
          broadcast: (frame) => me.open?.live && me.open.session.broadcast?.(frame),
          bulk: (payload) => me.open?.live && me.open.session.bulk?.(payload),
          close: (reason, code) => (me.open ? this.closed(me.open, reason, code) : this.spareClosed(me)),
        };
      })
      .then(
        () => {
          const me = spare!;
          if (!mine()) return void me.connection.close(1000, "Dialled under a network key no longer in use.");
          this.spareDialing = null;
          this.options.refusals?.succeeded(address, this.event);
          if (!me.live) return this.spareLater();
          if (this.stopped || this.spareOpen) return void me.connection.close(1000, "Not the spare server any more.");
          this.spareOpen = me;
          this.alignSpare();
        },
        (error) => {
          if (!mine()) return;
          this.spareDialing = null;
          // A server that refuses (another key, too busy) is said and backed off from as for the link itself;
          // one that does not answer is quietly tried again: it may be down for long.
          if (isRefusal(error)) this.options.refusals?.failed(address, error, this.event);
          this.spareLater();
        },
      );
  }

  private spareClosed(me: Spare<S>): void {
    if (!me.live) return;
    me.live = false;
    if (this.spareOpen === me) this.spareOpen = null;
    this.spareLater();
  }

  private dropSpare(reason: string): void {
    const spare = this.spareOpen;
    if (!spare) return;
    this.spareOpen = null;
    spare.live = false;
    spare.connection.close(1000, reason);
  }

  private spareLater(): void {
    if (this.stopped || this.cancelSpareRetry || !this.options.spare) return;
    const spare = this.options.spare();
    const wait = spare === null ? 0 : (this.options.refusals?.waitMs(formatHostPort(spare)) ?? 0);
    this.cancelSpareRetry = this.options.timers.after(Math.max(this.options.spareRetryMs ?? SPARE_RETRY_MS, wait), () => {
      this.cancelSpareRetry = null;
      if (!this.stopped) this.alignSpare();
    });
  }

  private retryLater(): void {
    if (this.stopped || this.cancelRetry) return;
    const to = this.options.target();
    const wait = to === null ? 0 : (this.options.refusals?.waitMs(formatHostPort(to)) ?? 0);
    this.cancelRetry = this.options.timers.after(Math.max(this.options.retryMs, wait), () => {
      this.cancelRetry = null;
      this.step();
    });
  }
}
