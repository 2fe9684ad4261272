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
  /** Connected (after a dial resolved and the session is built). */
  up?: (to: HostPort, session: S) => void;
};

/** The error `ready()` rejects with while there is no server to connect to. */
export type NoTarget = () => Error;

type Open<S> = { to: HostPort; address: string; connection: SecureConnection; session: S; live: boolean };

export class ServerLink<S extends ConnectionEvents> {
  private open: Open<S> | null = null;
  private dialing: { address: string; done: Promise<Open<S>> } | null = null;
  private cancelRetry: (() => void) | null = null;
  private stopped = false;

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
    if (!this.stopped) this.align(this.options.target());
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
    const open = this.open;
    this.open = null;
    if (open) {
      this.end(open, reason);
      open.connection.close(1000, reason);
    }
  }

  private dial(to: HostPort, address: string): Promise<Open<S>> {
    const { net, path, refusals, event = `${path} link failed` } = this.options;
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
