/**
 * A small seeded world for the engine failover (docs/design.md §Render-engine backups):
 * engines that die, freeze, say they are unhealthy and flap; a router that applies
 * commands late or drops them; an operator switching by hand; server failovers in the
 * middle of it all: the decision moves to the other server, which starts fresh, learns
 * when its failover runner last heard each engine, replays the engines' retained values
 * and restores the decision the previous server kept on the Data Hub (a write may still
 * be in flight and lost), then reads the router. The production `transition` decides.
 * The invariants are checked at every step; a failing seed replays.
 */
import { backupGroupSchema, type BackupGroup } from "../../../src/core/backup-groups.ts";
import {
  engineCondition,
  initialEngineFailover,
  transition,
  wantedRoutes,
  type EngineFailoverEvent,
  type EngineFailoverState,
  type RouteCommand,
} from "../../../src/core/engine-failover.ts";
import { decisionRecord, parseDecisionRecord, restoredDecision, type EngineDecisionRecord } from "../../../src/core/engine-decision-record.ts";
import { Rng } from "../prng.ts";

export const STEP_MS = 100;
const TIMINGS = { silenceMs: 1_000, framesFrozenMs: 600, routeRetryMs: 500 };
const HOLD_MS = 3_000;

type Truth = "running" | "dead" | "frozen" | "unhealthy";

export const SIM_GROUPS: BackupGroup[] = [
  backupGroupSchema.parse({
    id: "studio-a",
    name: "Studio A",
    mains: [
      { machineId: "green", outputs: [{ source: 0, destination: 0 }, { source: 1, destination: 1 }] },
      { machineId: "blue", outputs: [{ source: 2, destination: 2 }, { source: 3, destination: 3 }] },
    ],
    backup: { machineId: "spare-a", sources: [4, 5] },
    failoverMode: "auto",
    switchBack: "auto",
    holdTimeMs: HOLD_MS,
  }),
  backupGroupSchema.parse({
    id: "studio-b",
    name: "Studio B",
    mains: [{ machineId: "red", outputs: [{ source: 6, destination: 6 }] }],
    backup: { machineId: "spare-b", sources: [7] },
    failoverMode: "auto",
    switchBack: "auto",
    holdTimeMs: HOLD_MS,
  }),
];
const ENGINES = ["green", "blue", "spare-a", "red", "spare-b"];

export interface EngineSimResult {
  violations: string[];
  switches: number;
  serverFailovers: number;
  /** Server failovers that found a manual stand-in kept on the hub. */
  manualKept: number;
  convergedAt: number | null;
}

/** Each server's wall clock minus the decision's clock: the kept times cross between them. */
const WALL_OFFSETS = [1_700_000_000_000, 1_700_000_000_250];
/** A command the router has not applied after this long, while wanted, is a violation (retries cover drops). */
const ROUTE_BOUND_MS = TIMINGS.routeRetryMs * 5 + 4 * STEP_MS;

/** Runs `faultMs` of random faults, then all engines recover; checks the invariants at every step. */
export function runEngineWorld(seed: number, faultMs = 40_000, calmMs = 20_000): EngineSimResult {
  const rng = new Rng(seed);
  const truth = new Map<string, Truth>(ENGINES.map((id) => [id, "running"]));
  const frames = new Map<string, number>(ENGINES.map((id) => [id, 0]));
  const lastBeat = new Map<string, number>(ENGINES.map((id) => [id, 0]));
  const routes: (number | null)[] = [0, 1, 2, 3, 4, 5, 6, 7];
  const inFlight: { at: number; command: RouteCommand }[] = [];
  /** The Data Hub's retained decisions, and writes on their way to it (lost if the server dies first). */
  const hub = new Map<string, EngineDecisionRecord>();
  let hubWrites: { at: number; groupId: string; record: EngineDecisionRecord }[] = [];
  const fitSince = new Map<string, number | null>();
  const mismatch = new Map<number, { source: number; since: number }>();
  const backupOnAirUnfit = new Map<number, number>();
  const violations: string[] = [];
  let server = 0;
  let state: EngineFailoverState = initialEngineFailover(SIM_GROUPS, 0, TIMINGS);
  let switches = 0;
  let serverFailovers = 0;
  let manualKept = 0;
  let convergedAt: number | null = null;
  const keep = (now: number) => {
    for (const group of SIM_GROUPS) {
      const record = decisionRecord(state, group.id, WALL_OFFSETS[server]!);
      const last = hubWrites.filter((w) => w.groupId === group.id).at(-1)?.record ?? hub.get(group.id);
      if (record && JSON.stringify(record) !== JSON.stringify(last)) hubWrites.push({ at: now + rng.int(0, 2) * STEP_MS, groupId: group.id, record });
    }
  };
  const feed = (event: EngineFailoverEvent, now: number) => {
    const before = state;
    const result = transition(state, event, now);
    state = result.state;
    for (const command of result.commands) {
      // A router answers late, or NAKs (dropped); the decision's retry must cover it.
      if (!rng.chance(0.1)) inFlight.push({ at: now + rng.int(0, 3) * STEP_MS, command });
    }
    checkSwitchBack(before, state, now, fitSince, violations);
  };
  const end = faultMs + calmMs;
  for (let now = 0; now <= end; now += STEP_MS) {
    if (now < faultMs && rng.chance(0.02)) {
      const id = rng.pick(ENGINES);
      truth.set(id, rng.pick(["running", "running", "dead", "frozen", "unhealthy"] as const));
    }
    if (now === faultMs) for (const id of ENGINES) truth.set(id, "running");
    for (const write of hubWrites.filter((w) => w.at <= now)) hub.set(write.groupId, write.record);
    hubWrites = hubWrites.filter((w) => w.at > now);
    // A server failover: the runner moves to the other server, with what the Data Hub kept;
    // writes not yet on the hub are lost, and commands the old server sent may still land.
    if (now < faultMs && rng.chance(0.005)) {
      hubWrites = [];
      server = 1 - server;
      state = takeOver(now, server, hub, lastBeat, truth, frames);
      serverFailovers++;
      manualKept += checkManualKept(state, hub, now, violations);
    }
    // The operator, now and then: the backup on air by hand, or a main back.
    if (now < faultMs && rng.chance(0.004)) {
      const group = rng.pick(SIM_GROUPS);
      feed({ kind: "manual", groupId: group.id, mainId: rng.pick(group.mains).machineId, to: rng.pick(["backup", "main"] as const) }, now);
    }
    // Faults end: the operator brings every main back (a manual stand-in stays until then).
    if (now === faultMs) {
      for (const group of SIM_GROUPS) {
        const standIn = state.decisions[group.id]?.standIn;
        if (standIn?.manual) feed({ kind: "manual", groupId: group.id, mainId: standIn.mainId, to: "main" }, now);
      }
    }
    for (const id of ENGINES) {
      const t = truth.get(id)!;
      if (t === "dead") continue;
      if (!rng.chance(0.05)) {
        lastBeat.set(id, now);
        feed({ kind: "heard", machineId: id }, now);
      }
      if (t !== "frozen") frames.set(id, frames.get(id)! + 1);
      feed({ kind: "frames", machineId: id, frames: frames.get(id)! }, now);
      feed({ kind: "health", machineId: id, healthy: t !== "unhealthy" }, now);
    }
    for (const sent of inFlight.filter((f) => f.at <= now)) {
      routes[sent.command.destination] = sent.command.source;
      switches++;
    }
    inFlight.splice(0, inFlight.length, ...inFlight.filter((f) => f.at > now));
    feed({ kind: "router", connected: true, routes: [...routes], locks: routes.map(() => "U" as const) }, now);
    feed({ kind: "tick" }, now);
    // The runner writes the decision when it changes; once a step is as often as a write lands here.
    keep(now);
    for (const id of ENGINES) {
      const fit = engineCondition(state, id, now) === "ok";
      fitSince.set(id, fit ? (fitSince.get(id) ?? now) : null);
    }
    checkStep(state, truth, now, violations);
    checkRouter(state, routes, now, mismatch, backupOnAirUnfit, violations);
    const home = [0, 1, 2, 3, 6].every((dest) => routes[dest] === dest);
    if (now > faultMs) convergedAt = home ? (convergedAt ?? now) : null;
  }
  const bound = faultMs + TIMINGS.silenceMs + HOLD_MS + TIMINGS.routeRetryMs * 4 + 1_000;
  if (convergedAt === null || convergedAt > bound) {
    violations.push(`C1 routes did not converge to the mains by ${bound} ms after faults stopped (converged at ${convergedAt})`);
  }
  return { violations, switches, serverFailovers, manualKept, convergedAt };
}

/**
 * The other server's runner takes over, as engine-watch.ts activates: a fresh decision; each
 * engine heard when this server's failover runner last heard it; the engines' retained health
 * and frames replayed; the kept decisions restored; then it reads the router (the next step).
 */
function takeOver(
  now: number,
  server: number,
  hub: ReadonlyMap<string, EngineDecisionRecord>,
  lastBeat: ReadonlyMap<string, number>,
  truth: ReadonlyMap<string, Truth>,
  frames: ReadonlyMap<string, number>,
): EngineFailoverState {
  let state = initialEngineFailover(SIM_GROUPS, now, TIMINGS);
  const apply = (event: EngineFailoverEvent) => (state = transition(state, event, now).state);
  for (const id of ENGINES) {
    apply({ kind: "heard", machineId: id, at: lastBeat.get(id)! });
    apply({ kind: "frames", machineId: id, frames: frames.get(id)! });
    apply({ kind: "health", machineId: id, healthy: truth.get(id) !== "unhealthy" });
  }
  for (const group of SIM_GROUPS) {
    const record = parseDecisionRecord(hub.get(group.id));
    if (record) apply({ kind: "restore", groupId: group.id, decision: restoredDecision(record, WALL_OFFSETS[server]!) });
  }
  return state;
}

/** I6: a manual stand-in kept on the hub is in force on the new server (unless its backup is unfit there). */
function checkManualKept(state: EngineFailoverState, hub: ReadonlyMap<string, EngineDecisionRecord>, now: number, violations: string[]): number {
  let kept = 0;
  for (const group of SIM_GROUPS) {
    const kept_ = hub.get(group.id)?.standIn;
    if (!kept_?.manual) continue;
    kept++;
    const standIn = state.decisions[group.id]?.standIn;
    const backupFit = engineCondition(state, group.backup.machineId, now) === "ok";
    if (backupFit && (standIn?.mainId !== kept_.mainId || !standIn.manual)) {
      violations.push(`I6 ${now}: the manual stand-in for ${kept_.mainId} in ${group.id} was lost in the server failover (now ${JSON.stringify(standIn)})`);
    }
  }
  return kept;
}

/**
 * On the router's own routes: I4, a backup engine the decision knows unfit is not left on air
 * (beyond the time a command takes); I5, every destination carries the decision's route within
 * the bound after it last changed, whichever server decided it (so after a server failover too).
 */
function checkRouter(
  state: EngineFailoverState,
  routes: readonly (number | null)[],
  now: number,
  mismatch: Map<number, { source: number; since: number }>,
  backupOnAirUnfit: Map<number, number>,
  violations: string[],
) {
  for (const want of wantedRoutes(state)) {
    const d = want.destination;
    if (routes[d] === want.source) mismatch.delete(d);
    else if (mismatch.get(d)?.source !== want.source) mismatch.set(d, { source: want.source, since: now });
    const m = mismatch.get(d);
    if (m && now - m.since > ROUTE_BOUND_MS) {
      violations.push(`I5 ${now}: destination ${d} shows ${routes[d]}, the decision wants ${want.source} since ${m.since}`);
      mismatch.delete(d);
    }
  }
  for (const group of state.groups) {
    const unfit = engineCondition(state, group.backup.machineId, now) !== "ok";
    for (const main of group.mains) {
      main.outputs.forEach((output, i) => {
        const d = output.destination;
        if (!unfit || routes[d] !== group.backup.sources[i]) return void backupOnAirUnfit.delete(d);
        const since = backupOnAirUnfit.get(d) ?? now;
        backupOnAirUnfit.set(d, since);
        if (now - since > ROUTE_BOUND_MS) {
          violations.push(`I4 ${now}: unfit backup ${group.backup.machineId} on air on destination ${d} since ${since}`);
          backupOnAirUnfit.delete(d);
        }
      });
    }
  }
}

/** I1: never an unfit engine wanted on air while a fit one is free; I2: a true fault is seen in time. */
function checkStep(state: EngineFailoverState, truth: ReadonlyMap<string, Truth>, now: number, violations: string[]) {
  const wanted = wantedRoutes(state);
  for (const group of state.groups) {
    const backupFit = engineCondition(state, group.backup.machineId, now) === "ok";
    const standIn = state.decisions[group.id]?.standIn;
    if (standIn && !backupFit) violations.push(`I1 ${now}: unfit backup ${group.backup.machineId} wanted on air`);
    for (const main of group.mains) {
      const fit = engineCondition(state, main.machineId, now) === "ok";
      const onAir = wanted.some((w) => w.engine === main.machineId);
      const standInUnfit = standIn && engineCondition(state, standIn.mainId, now) !== "ok";
      // A main the operator sent back to air while unfit stays there: the operator's choice.
      const declined = state.decisions[group.id]?.declined.includes(main.machineId) ?? false;
      // In manual failover the backup is put on air by hand only.
      if (!fit && onAir && backupFit && !standInUnfit && !declined && group.failoverMode === "auto" && !standIn?.manual) {
        violations.push(`I1 ${now}: unfit ${main.machineId} on air while backup ${group.backup.machineId} is free`);
      }
    }
  }
  for (const [id, t] of truth) {
    if (t !== "running" && engineCondition(state, id, now) === "ok" && now > 0) {
      // Allowed only until the detector's bound has passed since the fault began.
      const lag = t === "dead" ? state.timings.silenceMs : t === "frozen" ? state.timings.framesFrozenMs : 0;
      const signals = state.engines[id];
      const since = t === "dead" ? (signals?.lastHeardAt ?? state.startedAt) : t === "frozen" ? (signals?.framesChangedAt ?? state.startedAt) : now;
      if (now - since > lag + 2 * STEP_MS) violations.push(`I2 ${now}: ${id} is ${t} but still judged fit`);
    }
  }
}

/** I3: a switch back happens only after the main has been fit for the hold time (no flapping). */
function checkSwitchBack(
  before: EngineFailoverState,
  after: EngineFailoverState,
  now: number,
  fitSince: ReadonlyMap<string, number | null>,
  violations: string[],
) {
  for (const group of after.groups) {
    const was = before.decisions[group.id]?.standIn;
    const is = after.decisions[group.id]?.standIn;
    if (!was || is?.mainId === was.mainId || after.decisions[group.id]?.lastChange !== "switch-back") continue;
    const since = fitSince.get(was.mainId);
    if (since === null || since === undefined || now - since < group.holdTimeMs - STEP_MS) {
      violations.push(`I3 ${now}: ${was.mainId} switched back after being fit since ${since} (hold ${group.holdTimeMs} ms)`);
    }
  }
}
