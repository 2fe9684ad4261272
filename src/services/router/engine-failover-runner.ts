/**
 * The thin runner around the engine failover decision (docs/design.md §Render-engine backups):
 * it feeds `transition` what the active server hears and what the router
 * reports, sends the commands through a RouterDriver, and hands each
 * confirmed switch to `onSwitch` (the wiring publishes it on the Data Hub,
 * MQTT and /api). It owns the one tick timer; every rule lives in core.
 */
import type { BackupGroup } from "../../core/backup-groups.ts";
import type { Clock, Timers } from "../../core/clock.ts";
import {
  DEFAULT_ENGINE_TIMINGS,
  initialEngineFailover,
  transition,
  type EngineFailoverEvent,
  type EngineFailoverState,
  type EngineFailoverTimings,
  type RouteCommand,
} from "../../core/engine-failover.ts";
import { switchEvent } from "../../core/engine-failover-views.ts";
import type { RouterDriver, RouterError, RouterSnapshot, RouterSwitchEvent } from "../../core/router.ts";

export const DEFAULT_ENGINE_TICK_MS = 100;

export interface EngineFailoverRunnerOptions {
  driver: RouterDriver;
  groups: readonly BackupGroup[];
  clock: Clock;
  /** Wall-clock time for the switch events people read. */
  wallClock: Clock;
  timers: Timers;
  timings?: EngineFailoverTimings;
  tickMs?: number;
  /** A switch the router confirmed. */
  onSwitch?: (event: RouterSwitchEvent) => void;
  /** A switch the router refused or did not confirm (the decision retries). */
  onSwitchFailed?: (command: RouteCommand, error: RouterError) => void;
  /** After every change of the decision's state (for the Health panel and the retained values). */
  onChange?: (state: EngineFailoverState) => void;
  /** A manual switch refused, with the reason for the operator. */
  onRefusal?: (reason: string) => void;
}

export class EngineFailoverRunner {
  readonly #options: EngineFailoverRunnerOptions;
  #state: EngineFailoverState;
  #stops: (() => void)[] = [];

  constructor(options: EngineFailoverRunnerOptions) {
    this.#options = options;
    this.#state = initialEngineFailover(options.groups, options.clock.now(), options.timings ?? DEFAULT_ENGINE_TIMINGS);
  }

  get state(): EngineFailoverState {
    return this.#state;
  }

  /** Listens to the router and starts the tick; the router connection itself is the caller's (connect/close). */
  start(): void {
    const { driver, timers } = this.#options;
    const current = driver.state();
    if (current) this.#router(current);
    this.#stops.push(
      driver.onEvent((event) => {
        if (event.kind === "disconnected") this.feed({ kind: "router", connected: false, routes: [], locks: [] });
        else if (event.kind !== "error") this.#router(event.snapshot);
      }),
      timers.every(this.#options.tickMs ?? DEFAULT_ENGINE_TICK_MS, () => this.feed({ kind: "tick" })),
    );
  }

  stop(): void {
    for (const stop of this.#stops.splice(0)) stop();
  }

  /** One event into the decision; sends what it asks for. Synchronous (a loop you can step). */
  feed(event: EngineFailoverEvent): void {
    const result = transition(this.#state, event, this.#options.clock.now());
    const changed = result.state !== this.#state;
    this.#state = result.state;
    if (result.refusal !== undefined) this.#options.onRefusal?.(result.refusal);
    for (const command of result.commands) this.#send(command);
    if (changed) this.#options.onChange?.(this.#state);
  }

  #router(snapshot: RouterSnapshot): void {
    this.feed({ kind: "router", connected: true, routes: snapshot.routes, locks: snapshot.locks });
  }

  #send(command: RouteCommand): void {
    this.#options.driver.route(command.destination, command.source).then(
      () => this.#options.onSwitch?.(switchEvent(command, this.#options.wallClock.now())),
      (error: RouterError) => this.#options.onSwitchFailed?.(command, error),
    );
  }
}
