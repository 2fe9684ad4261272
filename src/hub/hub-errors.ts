/**
 * Errors of the Data Hub. Each becomes an `error` frame (or the `error` of a
 * call's `reply`) with the same stable code, so apps, the CLI and tests switch
 * on `code` and people read `message`.
 */
import { AppError } from "../core/errors.ts";

/** A frame that is not JSON, not a known type, or breaks a limit. Nothing was changed. */
export class InvalidFrame extends AppError {
  constructor(message: string) {
    super("INVALID_FRAME", message, { status: 400 });
    this.name = "InvalidFrame";
  }
}

/** Every connection says who it is (`hello`) before anything else, so presence and `from` mean something. */
export class NotIntroduced extends AppError {
  constructor(type: string) {
    super("NOT_INTRODUCED", `Send "hello" first: the hub does not take "${type}" from a connection that has not said who it is.`, { status: 400 });
    this.name = "NotIntroduced";
  }
}

export class AlreadyIntroduced extends AppError {
  constructor() {
    super("ALREADY_INTRODUCED", `This connection already said "hello"; connect again to change its id or name.`, { status: 400 });
    this.name = "AlreadyIntroduced";
  }
}

/** A write reached a server that is not the active one (standby, idle backup, or fenced by a higher epoch). */
export class NotActive extends AppError {
  constructor() {
    super("NOT_ACTIVE", "This server is not active; the node will resend to the active one.", { status: 503 });
    this.name = "NotActive";
  }
}

export class NoService extends AppError {
  constructor(service: string) {
    super("NO_SERVICE", `No machine offers the service "${service}" right now.`, { status: 404 });
    this.name = "NoService";
  }
}

export class ServiceTaken extends AppError {
  constructor(service: string, by: string) {
    super("SERVICE_TAKEN", `The service "${service}" is already offered by ${by}; only one machine may offer a service.`, { status: 409 });
    this.name = "ServiceTaken";
  }
}

/** The connection that offered the service went away before replying. The call may or may not have run. */
export class ProviderGone extends AppError {
  constructor(service: string) {
    super("PROVIDER_GONE", `The machine offering "${service}" disconnected before it replied; the call may or may not have run.`, { status: 502 });
    this.name = "ProviderGone";
  }
}

/** A bound that keeps one misbehaving app from exhausting the hub (subscriptions, offers, keys, pending calls). */
export class LimitReached extends AppError {
  constructor(message: string) {
    super("LIMIT_REACHED", message, { status: 429 });
    this.name = "LimitReached";
  }
}

/** Saving a retained value failed (disk full, I/O error): the write was not applied nor acknowledged. */
export class StoreFailed extends AppError {
  constructor(key: string, cause: unknown) {
    super("STORE_FAILED", `The server could not save "${key}" (${(cause as Error)?.message ?? String(cause)}); nothing was changed. Check the server's disk.`, {
      status: 500,
      cause,
    });
    this.name = "StoreFailed";
  }
}

/** A local app published more than the node can hold while it waits for the server: the queue and the waiting line behind it are full. */
export class QueueFull extends AppError {
  readonly queued: number;
  constructor(queued: number, attached: boolean) {
    super(
      "QUEUE_FULL",
      attached
        ? `The server has not acknowledged ${queued} messages and the node's queue is full; the message was not sent.`
        : `The node is switching servers and its queue is full (${queued} messages); the message was not sent.`,
      { status: 503 },
    );
    this.name = "QueueFull";
    this.queued = queued;
  }
}

/** A call was in flight when the node switched servers; it may or may not have run, so it is not resent. */
export class CallInterrupted extends AppError {
  constructor(service: string) {
    super("CALL_INTERRUPTED", `The node switched servers while the call to "${service}" was in flight; it may or may not have run. Call again if that is safe.`, {
      status: 503,
    });
    this.name = "CallInterrupted";
  }
}

/** Calls are not queued across a switch (they are rarely safe to run late). */
export class NotConnected extends AppError {
  constructor(service: string) {
    super("NOT_CONNECTED", `The node is switching servers right now; the call to "${service}" was not sent. Call again in a moment.`, { status: 503 });
    this.name = "NotConnected";
  }
}

/** A write waited its whole time for room in the node's queue (the server acknowledges too slowly, or no server is active). */
export class PublishTimedOut extends AppError {
  constructor(waitedMs: number, queued: number, attached: boolean) {
    super(
      "PUBLISH_TIMEOUT",
      attached
        ? `The message waited ${waitedMs / 1000} s for room in the node's queue (${queued} messages not yet acknowledged by the server) and was not sent; the server is overloaded or unreachable.`
        : `The message waited ${waitedMs / 1000} s for room in the node's queue (${queued} messages) while no server was active, and was not sent.`,
      { status: 503 },
    );
    this.name = "PublishTimedOut";
  }
}
