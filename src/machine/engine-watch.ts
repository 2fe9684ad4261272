/**
 * The render engines' failover on the active server (docs/design.md
 * §Failover: the server that serves is the one that acts): feeds the core
 * decision (core/engine-failover.ts) with the engines' heartbeats, their
 * health and frame counters from the Data Hub and the operator's switches,
 * and carries out its route commands through the router driver. It holds
 * the router connection only while this server is active, so the connection
 * moves with a server failover; on connect the decision adopts the routes
 * the router reports, so a new active server converges rather than re-routes.
 */
import type { Clock, Timers } from "../core/clock.ts";
import { engineReplacesKey, heardAt, initialEngineFailover, transition, type EngineFailoverEvent, type EngineFailoverState, type EngineFailoverTimings, type RouteCommand } from "../core/engine-failover.ts";
import { engineAlerts, type EngineAlert } from "../core/engine-chip.ts";
import { engineStatuses, routeWarnings, standIns, switchEvent } from "../core/engine-failover-views.ts";
import { ROUTER_SWITCH_TOPIC, type RouterDriver, type RouterEvent } from "../core/router.ts";
import type { EngineBackups } from "../store/backup-groups-file.ts";
import type { Logger } from "../log.ts";
import { AppError } from "../core/errors.ts";

/** How often the decision is ticked (silence and frozen frames are noticed on a tick). */
export const ENGINE_TICK_MS = 200;

export type EngineWatchPorts = {
  clock: Clock;
  /** Wall-clock milliseconds, for the switch event's `at`. */
  wallNow: () => number;
  timers: Timers;
  /** The decision's timeouts; the defaults unless a test or the bench sets its own. */
  timings?: EngineFailoverTimings;
  /** The groups and the router as this server keeps them (the main's, or the backup's copy). */
  backups: () => EngineBackups;
  /** Machines heard now by the failover runner: id and how long ago. */
  heard: () => readonly { id: string; lastHeardMsAgo: number }[];
  /** A driver for the router at `address` ("host:port"); not connected yet. */
  openRouter: (address: string) => RouterDriver;
  /** Publishes on the Data Hub: an event, or a retained value. */
  publish: (topic: string, data: unknown) => void;
  setRetained: (key: string, value: unknown) => void;
  log: Logger;
};

export class EngineWatch {
  private state: EngineFailoverState;
  private router: { address: string; driver: RouterDriver; stopListening: () => void } | null = null;
  private ticking: (() => void) | null = null;
  private announced: Record<string, string | null> = {};
  private groupsText = "";

  constructor(private readonly ports: EngineWatchPorts) {
    this.state = initialEngineFailover([], ports.clock.now(), ports.timings);
  }

  /** This server serves now: take the router and decide. Calling it again is harmless. */
  activate(): void {
    if (this.ticking) return;
    this.state = initialEngineFailover([], this.ports.clock.now(), this.state.timings);
    this.groupsText = "";
    this.step();
    this.ticking = this.ports.timers.every(ENGINE_TICK_MS, () => this.step());
  }

  /** This server no longer serves: let go of the router (the other server takes it). */
  deactivate(): void {
    this.ticking?.();
    this.ticking = null;
    this.closeRouter();
  }

  get active(): boolean {
    return this.ticking !== null;
  }

  /** A Data Hub value an engine published (its health or frame counter). */
  signal(event: Extract<EngineFailoverEvent, { kind: "health" | "frames" }>): void {
    if (this.active) this.feed(event);
  }

  /** The operator's switch; throws an AppError saying why it was not made. */
  manual(groupId: string, mainId: string, to: "backup" | "main"): void {
    if (!this.active) throw new AppError("NOT_ACTIVE", "Engines are switched by the server that serves the network now.", { status: 409 });
    const refusal = this.feed({ kind: "manual", groupId, mainId, to });
    if (refusal !== undefined) throw new AppError("SWITCH_REFUSED", `Not switched: ${refusal}.`, { status: 409 });
  }

  /** What the Health panel shows. */
  view() {
    const now = this.ports.clock.now();
    return {
      active: this.active,
      router: { address: this.router?.address ?? null, ...this.state.router, snapshot: this.router?.driver.state() ?? null },
      engines: engineStatuses(this.state, now),
      signals: this.state.engines,
      warnings: routeWarnings(this.state),
      groups: this.state.groups,
    };
  }

  /** The engines the status chip names (on their backup, or failed with none free). */
  alerts(): EngineAlert[] {
    return engineAlerts({ active: this.active, engines: engineStatuses(this.state, this.ports.clock.now()) });
  }

  private step(): void {
    const backups = this.ports.backups();
    const now = this.ports.clock.now();
    const engines = new Set(backups.groups.flatMap((g) => [...g.mains.map((m) => m.machineId), g.backup.machineId]));
    // Every heartbeat first, at its own time and with no decision, then one decision: a group just created meets its
    // engines as heard, and the order the peers are listed in never puts the backup on air for a moment.
    for (const peer of this.ports.heard()) if (engines.has(peer.id)) this.state = heardAt(this.state, peer.id, now - peer.lastHeardMsAgo);
    const text = JSON.stringify(backups.groups);
    if (text !== this.groupsText) {
      this.groupsText = text;
      this.feed({ kind: "groups", groups: backups.groups });
    }
    this.followRouter(backups.router);
    this.feed({ kind: "tick" });
  }

  /** Connects to the router the setup names (and enables), once; a changed address reconnects. */
  private followRouter(setting: EngineBackups["router"]): void {
    const wanted = setting?.enabled ? setting.address : null;
    if (this.router?.address === wanted) return;
    this.closeRouter();
    if (wanted === null) return;
    const driver = this.ports.openRouter(wanted);
    const stopListening = driver.onEvent((event) => this.routerEvent(event));
    this.router = { address: wanted, driver, stopListening };
    driver.connect().then(
      (snapshot) => this.routerEvent({ kind: "connected", snapshot }),
      (error: unknown) => this.ports.log.warn("router not reached", { router: wanted, message: (error as Error).message }),
    );
  }

  private closeRouter(): void {
    if (!this.router) return;
    this.router.stopListening();
    this.router.driver.close();
    this.router = null;
    this.state = { ...this.state, router: { connected: false, routes: [], locks: [] } };
  }

  private routerEvent(event: RouterEvent): void {
    if (!this.active) return;
    if (event.kind === "error") return this.ports.log.warn("router error", { message: event.error.message });
    if (event.kind === "disconnected") this.feed({ kind: "router", connected: false, routes: this.state.router.routes, locks: this.state.router.locks });
    else this.feed({ kind: "router", connected: true, routes: event.snapshot.routes, locks: event.snapshot.locks });
  }

  /** One event into the decision; its commands go to the router, the stand-ins to the Data Hub. */
  private feed(event: EngineFailoverEvent, at = this.ports.clock.now()): string | undefined {
    const result = transition(this.state, event, at);
    this.state = result.state;
    for (const command of result.commands) this.send(command);
    this.announceStandIns();
    return result.refusal;
  }

  private send(command: RouteCommand): void {
    const router = this.router;
    if (!router) return;
    router.driver.route(command.destination, command.source).then(
      () => {
        this.ports.publish(ROUTER_SWITCH_TOPIC, switchEvent(command, this.ports.wallNow()));
        this.ports.log.info("router switched", { group: command.groupId, destination: command.destination, source: command.source, from: command.from, to: command.to, reason: command.reason });
      },
      (error: unknown) => this.ports.log.warn("router switch failed", { destination: command.destination, source: command.source, message: (error as Error).message }),
    );
  }

  /** The retained "whom the backup engine replaces", published when it changes. */
  private announceStandIns(): void {
    for (const [backupId, mainId] of Object.entries(standIns(this.state))) {
      if (this.announced[backupId] === mainId) continue;
      this.announced[backupId] = mainId;
      this.ports.setRetained(engineReplacesKey(backupId), mainId);
    }
  }
}
