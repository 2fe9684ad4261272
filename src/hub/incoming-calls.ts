/**
 * Calls the hub forwarded to a node's apps (services they offer). The app sees
 * an id the node picked, so its reply finds the hub's call, and a reply meant
 * for the server the node has since left is never sent to the next one
 * (`server` counts attaches, hub-uplink.ts).
 */
import type { AppError } from "../core/errors.ts";

type IncomingCall<A> = { app: A; hubId: string; service: string; server: number };

export class IncomingCalls<A> {
  private readonly calls = new Map<string, IncomingCall<A>>();
  private next = 1;

  /** A call for `app` from the server attached as `server`: the id the app answers to. */
  open(app: A, hubId: string, service: string, server: number): string {
    const id = `i${this.next++}`;
    this.calls.set(id, { app, hubId, service, server });
    return id;
  }

  /** `app` replied to `id`: the hub's id to answer, or null when it is not that app's call or the server changed since. */
  answer(app: A, id: string, server: number): string | null {
    const call = this.calls.get(id);
    if (!call || call.app !== app) return null;
    this.calls.delete(id);
    return call.server === server ? call.hubId : null;
  }

  /** `app` left: its calls from the current server, which are answered PROVIDER_GONE. */
  dropApp(app: A, server: number): { hubId: string; service: string }[] {
    const owed: { hubId: string; service: string }[] = [];
    for (const [id, call] of [...this.calls]) {
      if (call.app !== app) continue;
      this.calls.delete(id);
      if (call.server === server) owed.push(call);
    }
    return owed;
  }

  /** The server is gone: the apps' replies belong to it and are dropped. */
  clear(): void {
    this.calls.clear();
  }
}

/** A failed call's answer; the same shape either way (to an app, or to the hub for a call an app cannot take). */
export function replyError(id: string, error: AppError) {
  return { type: "reply" as const, id, error: { code: error.code, message: error.message } };
}
