/**
 * The render engines' failover on the active server (docs/design.md
 * §Failover: the server that serves is the one that acts): feeds the core
 * decision (core/engine-failover.ts) with the engines' heartbeats, their
 * health and frame counters from the Data Hub and the operator's switches,
 * and carries out its route commands through the router driver. It holds
 * the router connection only while this server is active, so the connection
 * moves with a server failover; on connect the decision adopts the routes
 * the router reports, so a new active server converges rather than re-routes.
 *
 * On activation (first start, takeover, failback) it first reads from the
 * Data Hub what is already there: each engine's retained health and frame
 * counter, the decision the previous active server kept
 * (core/engine-decision-record.ts: a manual switch, the hold time's start)
 * and whom each backup is said to replace. Only then does it open the router
 * and write: the kept decision is not overwritten by a fresh one, and the
 * backup's `replaces` does not blink to null during a server failover.
 */
import type { Clock, Timers } from "../core/clock.ts";
import { engineFramesKey, engineHealthKey, engineReplacesKey, heardAt, initialEngineFailover, transition, type EngineFailoverEvent, type EngineFailoverState, type EngineFailoverTimings, type RouteCommand } from "../core/engine-failover.ts";
import { decisionRecord, engineDecisionKey, parseDecisionRecord, restoredDecision } from "../core/engine-decision-record.ts";
import { engineAlerts, type EngineAlert } from "../core/engine-chip.ts";
import { engineStatuses, parseEngineFrames, parseEngineHealth, routeWarnings, standIns, switchEvent } from "../core/engine-failover-views.ts";
import { ROUTER_SWITCH_TOPIC, type RouterDriver, type RouterEvent } from "../core/router.ts";
import type { EngineBackups } from "../store/backup-groups-file.ts";
import type { Logger } from "../log.ts";
import { AppError } from "../core/errors.ts";

/** How often the decision is ticked (silence and frozen frames are noticed on a tick). */
export const ENGINE_TICK_MS = 200;
/** How long an activating runner waits for the Data Hub's answers before it decides without them. */
export const ENGINE_RESTORE_WAIT_MS = 2_000;

type SignalEvent = Extract<EngineFailoverEvent, { kind: "health" | "frames" }>;

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
  /** The active hub's retained value at `key` (null when none); rejects when the hub does not answer. */
  readRetained: (key: string) => Promise<unknown>;
  log: Logger;
};

export class EngineWatch {
  private state: EngineFailoverState;
  private router: { address: string; driver: RouterDriver; stopListening: () => void } | null = null;
  private ticking: (() => void) | null = null;
  /** The retained values this runner last wrote or read, by key: each is written only when it changes. */
  private written = new Map<string, string>();
  private groupsText = "";
  /** Active and still reading what the Data Hub holds: no router, no writes yet. */
  private restoring = false;
  /** Bumped on every activation, so a late answer of an earlier one is ignored. */
  private activation = 0;
  /** wall − clock, fixed per activation, so the kept times do not jitter between writes. */
  private wallOffset = 0;
  /** The engines' health and frame values as this node last heard them, active or not (replayed on activation). */
  private readonly heardSignals = new Map<string, SignalEvent>();

  constructor(private readonly ports: EngineWatchPorts) {
    this.state = initialEngineFailover([], ports.clock.now(), ports.timings);
  }

  /** This server serves now: read what the Data Hub holds, then take the router and decide. Calling it again is harmless. */
  activate(): void {
    if (this.ticking) return;
    const now = this.ports.clock.now();
    this.state = initialEngineFailover([], now, this.state.timings);
    this.wallOffset = this.ports.wallNow() - now;
    this.groupsText = "";
    this.written.clear();
    this.restoring = true;
    this.step();
    for (const event of this.heardSignals.values()) this.feed(event);
    this.ticking = this.ports.timers.every(ENGINE_TICK_MS, () => this.step());
    void this.readHub(++this.activation);
  }

  /** This server no longer serves: let go of the router (the other server takes it). */
  deactivate(): void {
    this.ticking?.();
    this.ticking = null;
    this.restoring = false;
    this.closeRouter();
  }

  get active(): boolean {
    return this.ticking !== null;
  }

  /** Still reading the Data Hub after activation (the router is not opened yet). */
  get reading(): boolean {
    return this.restoring;
  }

  /** A Data Hub value an engine published (its health or frame counter); kept while inactive, for the next activation. */
  signal(event: SignalEvent): void {
    this.heardSignals.set(`${event.kind}:${event.machineId}`, event);
    if (this.active) this.feed(event);
  }

  /** An engine's value was deleted on the Data Hub: the next activation does not replay it. */
  forget(kind: SignalEvent["kind"], machineId: string): void {
    this.heardSignals.delete(`${kind}:${machineId}`);
  }

  /**
   * Reads the engines' health and frames, the kept decisions and the backups' `replaces`
   * from the active hub (each answer bounded by ENGINE_RESTORE_WAIT_MS), then lets the runner
   * open the router and write.
   */
  private async readHub(activation: number): Promise<void> {
    const { groups } = this.ports.backups();
    const engines = [...new Set(groups.flatMap((g) => [...g.mains.map((m) => m.machineId), g.backup.machineId]))];
    const read = (key: string) =>
      new Promise<unknown>((resolve) => {
        const cancel = this.ports.timers.after(ENGINE_RESTORE_WAIT_MS, () => resolve(undefined));
        this.ports.readRetained(key).then(
          (value) => (cancel(), resolve(value)),
          () => (cancel(), resolve(undefined)),
        );
      });
    const [health, frames, decisions, replaces] = await Promise.all([
      Promise.all(engines.map((id) => read(engineHealthKey(id)))),
      Promise.all(engines.map((id) => read(engineFramesKey(id)))),
      Promise.all(groups.map((g) => read(engineDecisionKey(g.id)))),
      Promise.all(groups.map((g) => read(engineReplacesKey(g.backup.machineId)))),
    ]);
    if (activation !== this.activation || !this.active) return;
    engines.forEach((machineId, i) => {
      const quietly = (feed: () => void) => {
        try {
          feed();
        } catch {
          // Not a value an engine publishes (or none): it changes nothing.
        }
      };
      if (health[i] != null) quietly(() => this.signal({ kind: "health", machineId, healthy: parseEngineHealth(health[i]) }));
      if (frames[i] != null) quietly(() => this.signal({ kind: "frames", machineId, frames: parseEngineFrames(frames[i]) }));
    });
    groups.forEach((group, i) => {
      const record = parseDecisionRecord(decisions[i]);
      if (record) {
        this.written.set(engineDecisionKey(group.id), JSON.stringify(record));
        this.feed({ kind: "restore", groupId: group.id, decision: restoredDecision(record, this.wallOffset) });
      }
      if (replaces[i] !== undefined) this.written.set(engineReplacesKey(group.backup.machineId), JSON.stringify(replaces[i]));
    });
    this.restoring = false;
    this.step();
  }

  /** The operator's switch; throws an AppError saying why it was not made. */
  manual(groupId: string, mainId: string, to: "backup" | "main"): void {
    if (!this.active) throw new AppError("NOT_ACTIVE", "Engines are switched by the server that serves the network now.", { status: 409 });
    // The decision the previous server kept is not read yet: a switch now would be overwritten by it.
    if (this.restoring) throw new AppError("ENGINES_LOADING", "This server has just started serving and is reading the engines' state: try again in a moment.", { status: 409 });
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
    // Every heartbeat first, at its own time (a new active server learns at once how long ago an engine that died
    // meanwhile was heard) and with no decision, then one decision: a group just created meets its engines as heard,
    // and the order the peers are listed in never puts the backup on air for a moment.
    for (const peer of this.ports.heard()) if (engines.has(peer.id)) this.state = heardAt(this.state, peer.id, now - peer.lastHeardMsAgo);
    const text = JSON.stringify(backups.groups);
    if (text !== this.groupsText) {
      this.groupsText = text;
      this.feed({ kind: "groups", groups: backups.groups });
    }
    if (!this.restoring) this.followRouter(backups.router);
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
      // What the router says now: blocks read in the same chunk as the dump (a lock, a route) came after its snapshot.
      (snapshot) => this.router?.driver === driver && this.routerEvent({ kind: "connected", snapshot: driver.state() ?? snapshot }),
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

  /** One event into the decision; its commands go to the router, the stand-ins and the decision to the Data Hub. */
  private feed(event: EngineFailoverEvent): string | undefined {
    const result = transition(this.state, event, this.ports.clock.now());
    this.state = result.state;
    for (const command of result.commands) this.send(command);
    if (!this.restoring) this.keepOnHub();
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

  /** The retained "whom the backup engine replaces" and each group's decision, written when they change. */
  private keepOnHub(): void {
    for (const [backupId, mainId] of Object.entries(standIns(this.state))) this.keep(engineReplacesKey(backupId), mainId);
    for (const group of this.state.groups) {
      const record = decisionRecord(this.state, group.id, this.wallOffset);
      if (record) this.keep(engineDecisionKey(group.id), record);
    }
  }

  private keep(key: string, value: unknown): void {
    const text = JSON.stringify(value);
    if (this.written.get(key) === text) return;
    this.written.set(key, text);
    this.ports.setRetained(key, value);
  }
}
