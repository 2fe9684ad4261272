/**
 * A small seeded world for the engine failover (docs/design.md §Render-engine backups):
 * engines that die, freeze, say they are unhealthy and flap; a router that applies
 * commands late or drops them; server failovers (a fresh decision that reads the
 * router); the production `transition` deciding. The
 * invariants are checked at every step; a failing seed replays.
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
  convergedAt: number | null;
}

/** Runs `faultMs` of random faults, then all engines recover; checks the invariants at every step. */
export function runEngineWorld(seed: number, faultMs = 40_000, calmMs = 20_000): EngineSimResult {
  const rng = new Rng(seed);
  const truth = new Map<string, Truth>(ENGINES.map((id) => [id, "running"]));
  const frames = new Map<string, number>(ENGINES.map((id) => [id, 0]));
  const routes: (number | null)[] = [0, 1, 2, 3, 4, 5, 6, 7];
  const inFlight: { at: number; command: RouteCommand }[] = [];
  const fitSince = new Map<string, number | null>();
  const violations: string[] = [];
  let state: EngineFailoverState = initialEngineFailover(SIM_GROUPS, 0, TIMINGS);
  let switches = 0;
  let serverFailovers = 0;
  let convergedAt: number | null = null;
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
    // A server failover: the new active server starts a fresh decision and reads the router;
    // commands the old one sent may still land.
    if (now < faultMs && rng.chance(0.005)) {
      state = initialEngineFailover(SIM_GROUPS, now, TIMINGS);
      fitSince.clear();
      serverFailovers++;
    }
    for (const id of ENGINES) {
      const t = truth.get(id)!;
      if (t === "dead") continue;
      if (!rng.chance(0.05)) feed({ kind: "heard", machineId: id }, now);
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
    for (const id of ENGINES) {
      const fit = engineCondition(state, id, now) === "ok";
      fitSince.set(id, fit ? (fitSince.get(id) ?? now) : null);
    }
    checkStep(state, truth, now, violations);
    const home = [0, 1, 2, 3, 6].every((dest) => routes[dest] === dest);
    if (now > faultMs) convergedAt = home ? (convergedAt ?? now) : null;
  }
  const bound = faultMs + TIMINGS.silenceMs + HOLD_MS + TIMINGS.routeRetryMs * 4 + 1_000;
  if (convergedAt === null || convergedAt > bound) {
    violations.push(`C1 routes did not converge to the mains by ${bound} ms after faults stopped (converged at ${convergedAt})`);
  }
  return { violations, switches, serverFailovers, convergedAt };
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
      if (!fit && onAir && backupFit && !standInUnfit) {
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
