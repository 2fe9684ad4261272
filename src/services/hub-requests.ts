/**
 * Data Hub requests as promises, for the node's HTTP API: one local app of
 * the node's uplink that publishes, sets and gets on behalf of HTTP
 * requests, and answers each when the hub acknowledged (or refused) it. A
 * request not answered within `waitMs` fails with a message that says why;
 * the node itself refuses a write that waited that long for room.
 */
import { AppError } from "../core/errors.ts";
import type { FromHubFrame, Version } from "../hub/frames.ts";
import type { InProcessApp } from "./app-gateway.ts";
import type { Timers } from "../core/clock.ts";
import { systemTimers } from "../net/system-time.ts";

export const DEFAULT_REQUEST_WAIT_MS = 30_000;

export class HubRequestTimedOut extends AppError {
  constructor(what: string, waitMs: number) {
    super("HUB_TIMEOUT", `The hub did not answer the ${what} within ${waitMs / 1000} s: no server is active, or it is overloaded. Nothing is known about its outcome; retry if that is safe.`, {
      status: 504,
    });
    this.name = "HubRequestTimedOut";
  }
}

export type StateValue = { key: string; value: unknown; version: Version };
type Waiter = { resolve(frame: FromHubFrame): void; reject(error: Error): void };

export class HubRequests {
  private readonly app: InProcessApp;
  private readonly waitMs: number;
  private readonly origin = `http-${crypto.randomUUID().slice(0, 12)}`;
  private seq = 0;
  private nextId = 0;
  private readonly waiters = new Map<string, Waiter>();

  constructor(attach: (deliver: (frame: FromHubFrame) => void) => InProcessApp, waitMs = DEFAULT_REQUEST_WAIT_MS, private readonly timers: Timers = systemTimers) {
    this.app = attach((frame) => this.onFrame(frame));
    this.waitMs = waitMs;
  }

  /** Resolves once the active hub acknowledged the message. */
  async publish(topic: string, data: unknown): Promise<void> {
    const seq = ++this.seq;
    await this.request(`w${seq}`, "publish", () => this.app.send({ type: "pub", topic, data, origin: this.origin, seq }));
  }

  /** Resolves once the active hub acknowledged the retained write (`null` deletes the key). */
  async set(key: string, value: unknown): Promise<void> {
    const seq = ++this.seq;
    await this.request(`w${seq}`, "state change", () => this.app.send({ type: "set", key, value, origin: this.origin, seq }));
  }

  /** The hub's current value (null at version 0.0 for a key never set). */
  async get(key: string): Promise<StateValue> {
    const id = `g${++this.nextId}`;
    const frame = await this.request(id, "read", () => this.app.send({ type: "get", key, id }));
    if (frame.type !== "value") throw new AppError("UNEXPECTED", `The node answered a read with a ${frame.type} frame.`);
    return { key: frame.key, value: frame.value, version: frame.version };
  }

  close(): void {
    this.app.close();
    for (const waiter of this.waiters.values()) waiter.reject(new AppError("NODE_STOPPING", "The node is stopping.", { status: 503 }));
    this.waiters.clear();
  }

  private request(key: string, what: string, send: () => void): Promise<FromHubFrame> {
    return new Promise<FromHubFrame>((resolve, reject) => {
      const cancel = this.timers.after(this.waitMs, () => {
        this.waiters.delete(key);
        reject(new HubRequestTimedOut(what, this.waitMs));
      });
      const done = <T>(settle: (value: T) => void) => (value: T) => {
        cancel();
        this.waiters.delete(key);
        settle(value);
      };
      this.waiters.set(key, { resolve: done(resolve), reject: done(reject) });
      send();
    });
  }

  private onFrame(frame: FromHubFrame): void {
    if (frame.type === "ack" && frame.origin === this.origin) return this.waiters.get(`w${frame.seq}`)?.resolve(frame);
    if (frame.type === "value" && frame.id !== undefined) return this.waiters.get(frame.id)?.resolve(frame);
    if (frame.type === "error") {
      const ref = frame.ref;
      const key = ref?.origin === this.origin && ref.seq !== undefined ? `w${ref.seq}` : ref?.id;
      if (key !== undefined) this.waiters.get(key)?.reject(new AppError(frame.code, frame.message, { status: statusOfHubRefusal(frame.code) }));
    }
  }
}

/** The HTTP status a hub refusal answers with: the sender's fault (400), its share used up (429), or the hub's state (503). */
function statusOfHubRefusal(code: string): number {
  if (code === "INVALID_FRAME") return 400;
  if (code === "LIMIT_REACHED") return 429;
  return 503;
}
