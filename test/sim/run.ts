/**
 * Runs one seed: builds the world, lays out the seed's fault schedule, stops
 * faults, and checks the invariants (invariants.ts) all along.
 *
 *   bun test test/sim                  # SIM_SEEDS seeds (default 2000)
 *   SEED=1234 bun test test/sim        # replay one seed and print its trace
 */
import { DEFAULT_TIMINGS, FAST_TIMINGS, type Timings } from "../../src/core/failure-detector.ts";
import { tickPeriodMs, type Failback } from "../../src/core/failover/index.ts";
import { Checker, converged, type CheckPlan } from "./invariants.ts";
import { Rng } from "./prng.ts";
import { blips, chaos, CLIENTS, isolateMain, lateClient, newBackup, outageRestart, rejoinSplit, replayer, rogue, witness, writes, type Family, type RogueMode } from "./schedules.ts";
import { MAX_REFUSAL_BACKOFF_MS } from "../../src/net/peer-refusals.ts";
import { ipv6Addresses, moveMain, networkKey, readdBackup, resaveStorm } from "./families-machine.ts";
import { SimHub } from "./sim-hub.ts";
import { SimPairing } from "./sim-pairing.ts";
import { World, type SimConfig } from "./world.ts";

export interface SeedResult {
  readonly seed: number;
  readonly family: Family;
  readonly failback: Failback;
  readonly timings: Timings;
  readonly violations: readonly string[];
  /** How long after faults stopped the network last was not converged (0 if it never was). */
  readonly convergenceMs: number;
  readonly boundMs: number;
  readonly maxDualActiveCleanMs: number;
  /** How many times each server started serving (the first main start counts). */
  readonly takeovers: { readonly main: number; readonly backup: number };
  /** Whether the backup ever said "Main unreachable from backup". */
  readonly conditionSeen: boolean;
  /** Longest a client went without an active server while I9's premise held. */
  readonly maxUnavailableMs: number;
  /** The rogue family's mode, and how many forged heartbeats the machines refused. */
  readonly rogueMode: RogueMode | null;
  readonly untrustedRefused: number;
  /** Data Hub messages the apps published, deliveries to subscribers, and (message, subscriber) pairs DH1 judged or left out. */
  readonly hub: { readonly published: number; readonly delivered: number; readonly judged: number; readonly beyondRetention: number; readonly keyRefusals: number; readonly lanesJudged: number; readonly onlyOnBackup: number; readonly standbyJudged: number; readonly catchUps: { readonly ok: number; readonly failed: number } };
  /** The show-file log lane (Bun only): pushes on the main, those the backup acknowledged, runs whose end LL2 judged. */
  readonly log: { readonly pushes: number; readonly acked: number; readonly judged: number } | null;
  readonly trace: readonly string[] | null;
}

/** One-way latency of the healthy simulated network, ms (a LAN with a busy switch). */
export const LATENCY: readonly [number, number] = [1, 3];

/**
 * I6's bound: failoverTimeout + 2 × heartbeat, plus an allowance for the
 * runner's tick and the wire. A decision made on a deadline (timeout, next
 * heartbeat) waits for the next tick, so each of the two deadline-driven
 * steps on the slowest path (the backup notices the silence; a client's next
 * heartbeat brings the answer) may be one tick late, and that path crosses
 * the wire twice: allowance = 2 × tick + 2 × max latency. With the defaults
 * that is 1000 + 200 + 40 + 6 = 1246 ms.
 */
export function boundMs(t: Timings, tickMs: number): number {
  return t.failoverTimeoutMs + 2 * t.heartbeatMs + 2 * tickMs + 2 * LATENCY[1];
}

/**
 * I9's bound: the same as I6's. The slow path is a main restarting beside an
 * idle backup it hears but cannot copy from: it hears it (≤ h), its copy
 * fails (≤ h/2 here), it gives up after a timeout, on a tick; clients hear
 * the announcement. T + 1.5·h + tick + latency fits within boundMs.
 */
export function availableAfterMs(t: Timings, tickMs: number): number {
  return boundMs(t, tickMs);
}

/**
 * How long a clean main–backup link may still show two actives (I5): one
 * heartbeat, a tick, the wire, and when the link was cut for longer than a
 * timeout one more round trip (a heartbeat echoing a stale stamp is answered
 * with a challenge before it counts: core/freshness.ts).
 */
export function splitHealMs(t: Timings, tickMs: number): number {
  return t.heartbeatMs + tickMs + 3 * LATENCY[1];
}

const FAMILIES: readonly Family[] = [
  "chaos", "chaos", "chaos", "chaos", "chaos", "rogue", "rejoin-split", "blip", "witness", "late-client",
  "new-backup", "replay", "isolate-main", "outage-restart", "ipv6", "resave-storm", "network-key", "readd-backup", "move-main",
];

const ROGUE_MODES: readonly RogueMode[] = ["alone", "crash-main", "chaos"];

/** Which rogue seeds run alone, beside a crash of the main, or beside chaos. */
export function rogueModeOf(seed: number): RogueMode {
  return ROGUE_MODES[Math.floor(seed / FAMILIES.length) % ROGUE_MODES.length]!;
}

export function familyOf(seed: number): { family: Family; failback: Failback; timings: Timings } {
  const r = seed % FAMILIES.length;
  const family = FAMILIES[r]!;
  const failback: Failback = r === 4 || r === 5 ? "manual" : "auto";
  // Most seeds use the fast preset (cheaper to simulate); every 11th runs production timings.
  const timings = seed % 11 === 4 ? DEFAULT_TIMINGS : FAST_TIMINGS;
  return { family, failback, timings };
}

export interface WorldOptions {
  readonly seed: number;
  readonly timings: Timings;
  readonly failback: Failback;
  readonly plan: CheckPlan;
  readonly tracing?: boolean;
  /** The backup starts with an empty data dir, and neither server with a pairing (the new-backup family pairs them later). */
  readonly freshBackup?: boolean;
  /** Every machine on an IPv6 address. */
  readonly ipv6?: boolean;
}

/** A world of main, backup and clients c1..c3, started at t=0, with the checker plugged in. */
export function newWorld(o: WorldOptions): { world: World; checker: Checker; hub: SimHub } {
  const tickMs = tickPeriodMs(o.timings.heartbeatMs);
  const cfg: SimConfig = { timings: o.timings, failback: o.failback, tickMs, latency: LATENCY };
  const checker = new Checker(o.plan, splitHealMs(o.timings, tickMs), availableAfterMs(o.timings, tickMs));
  const world = new World(cfg, new Rng(o.seed ^ 0x9e3779b9), checker, o.tracing ?? false);
  const hub = new SimHub(world, o.seed);
  world.machinery = hub;
  if (o.ipv6) ipv6Addresses(world);
  // The main's setup names the backup unless the backup is new (the family adds it later).
  world.pairing = new SimPairing(world, hub, new Rng(o.seed ^ 0x2545f491), !o.freshBackup);
  // A new backup: neither server has a pairing yet (the family pairs them later).
  world.spawn("main", "main", undefined, o.freshBackup ? {} : { pairing: { peerId: "backup", confirmed: true, hubCopied: false } });
  world.spawn("backup", "backup", undefined, o.freshBackup ? {} : { pairing: { peerId: "main", confirmed: true, hubCopied: true } });
  for (const c of CLIENTS) world.spawn(c, "client");
  return { world, checker, hub };
}

export async function runSeed(seed: number, tracing = false): Promise<SeedResult> {
  const { family, failback, timings } = familyOf(seed);
  const { heartbeatMs: h, failoverTimeoutMs: T } = timings;
  const tickMs = tickPeriodMs(h);
  const sched = new Rng(seed);
  const warmup = 2 * T;
  const stopAt = warmup + (family === "late-client" ? 4 * T : 8 * T);
  const bound = boundMs(timings, tickMs);
  const rogueMode = family === "rogue" ? rogueModeOf(seed) : null;
  const quiet = family === "blip" || family === "witness" || family === "replay" || family === "network-key" || family === "resave-storm" || rogueMode === "alone";
  // The replay family restarts everything first, then replays: no failover once the network is back.
  const plan: CheckPlan = { faultsStopAt: stopAt, noFailoverFrom: quiet ? (family === "replay" ? warmup + 2 * T : warmup) : null };
  const { world, checker, hub } = newWorld({ seed, timings, failback, plan, tracing, freshBackup: family === "new-backup", ipv6: family === "ipv6" });
  world.log(`seed ${seed}: ${family}${rogueMode ? ` (${rogueMode})` : ""}, failback ${failback}, heartbeat ${h} ms, timeout ${T} ms, tick ${tickMs} ms`);
  await world.runUntil(warmup - 1);
  // The warm network must be on the main, or nothing below would mean much.
  const m = world.node("main").state;
  if (!converged(world) || m?.role !== "main" || m.phase.kind !== "active") checker.fail(world, "not converged on the main after warm-up");
  const b = world.node("backup").state;
  if (family !== "new-backup" && (b?.role !== "backup" || b.phase.kind !== "idle")) checker.fail(world, "the backup is not idle after warm-up");

  const window = { from: warmup, stopAt };
  hub.publishing = { from: warmup, to: stopAt };
  let joinAt: number | null = null;
  let mainCrashAt: number | null = null;
  let mustReportUnreachable = false;
  writes(world, sched, window);
  if (family === "chaos" || family === "ipv6") chaos(world, sched, window, failback === "manual");
  else if (family === "resave-storm") {
    blips(world, sched, window);
    resaveStorm(world, sched, window);
  } else if (family === "network-key") networkKey(world, hub, sched, window);
  else if (family === "readd-backup") readdBackup(world, sched, window);
  else if (family === "move-main") moveMain(world, sched, window);
  else if (family === "blip") blips(world, sched, window);
  else if (family === "witness") mustReportUnreachable = witness(world, sched, window);
  else if (family === "rejoin-split") rejoinSplit(world, sched, window);
  else if (family === "new-backup") newBackup(world, sched, window);
  else if (family === "replay") replayer(world, sched, window);
  else if (family === "isolate-main") checker.isolation = isolateMain(world, sched, window);
  else if (family === "outage-restart") checker.mustServe = outageRestart(world, sched, window);
  else if (rogueMode !== null) mainCrashAt = rogue(world, sched, window, rogueMode, failback === "manual");
  else joinAt = lateClient(world, sched, window);

  // Faults stop: the network heals, frozen processes resume, crashed ones restart
  // (now and then one server or one client stays dead: the rest must cope).
  const keepDead = sched.chance(0.15) ? sched.pick(["main", "backup"]) : sched.chance(0.1) ? sched.pick(CLIENTS) : null;
  world.at(stopAt, "FAULTS STOP", () => {
    world.faultsStopped = true;
    world.healNetwork();
    for (const n of world.nodes.values()) {
      world.resume(n.name);
      if (n.name === keepDead) world.log(`${n.name} stays ${n.state ? "up" : "dead"}`);
      else world.restart(n.name);
    }
  });

  if (joinAt !== null) {
    // The late client must be on the active backup once it could be: the backup has taken
    // over (≤ bound after the crash) and the client has had a heartbeat round trip.
    const checkAt = Math.max(warmup + bound, joinAt + 2 * h);
    world.at(checkAt, "check c4 follows the backup", () => {
      const c4 = world.node("c4");
      const b = world.node("backup").state;
      const mainDown = !world.node("main").state;
      if (mainDown && b?.role === "backup" && b.phase.kind === "active" && c4.following.server !== "backup") {
        checker.fail(world, `late client c4 follows ${c4.following.server}, not the active backup`);
      }
      if (mainDown && b?.role === "backup" && b.phase.kind !== "active") checker.fail(world, "the backup did not take over");
    });
  }

  if (mainCrashAt !== null) {
    // Forged heartbeats "from the main" must not keep the backup from taking over a dead main.
    world.at(mainCrashAt + bound, "check the backup took over the dead main", () => {
      const b = world.node("backup");
      if (!world.node("main").state && b.state?.role === "backup" && b.serving === null) {
        checker.fail(world, `I17 the backup does not serve ${bound} ms after the main died (a rogue key holder forges the main's heartbeats)`);
      }
    });
  }

  // A backup refused for another network key waits out the refusal back-off before it copies again.
  const end = stopAt + bound + 2 * T + (family === "network-key" ? MAX_REFUSAL_BACKOFF_MS + 2 * h : 0);
  await world.runUntil(end);
  if (mustReportUnreachable && !checker.conditionSeen) checker.fail(world, "I7 the backup never said \"Main unreachable from backup\"");
  const convergenceMs = checker.lastUnconvergedAt < 0 ? 0 : checker.lastUnconvergedAt - stopAt;
  // I19: a main and a backup that both run at the end agree on their pairing (the main asks again when the backup dropped it).
  const [mainAtEnd, backupAtEnd] = [world.node("main"), world.node("backup")];
  if (mainAtEnd.state && backupAtEnd.state && rogueMode === null) {
    const [mp, bp] = [mainAtEnd.disk.pairing, backupAtEnd.disk.pairing];
    if (!(mp?.peerId === "backup" && bp?.peerId === "main" && bp.confirmed)) {
      checker.fail(world, `I19 main and backup disagree on their pairing at the end (main: ${mp?.peerId ?? "none"}, backup: ${bp?.peerId ?? "none"}${bp && !bp.confirmed ? ", unconfirmed" : ""})`);
    }
  }
  // A main that died before it had recorded a pairing leaves a backup that may not serve (I10): nobody can.
  const nobodyMayServe = !mainAtEnd.state && !(backupAtEnd.disk.pairing?.confirmed && backupAtEnd.disk.pairing.hubCopied);
  if (nobodyMayServe) world.log("the main stays dead and the backup was never confirmed: no server may serve");
  else if (!converged(world)) checker.fail(world, `I6 not converged at the end of the run`);
  else if (convergenceMs > bound) checker.fail(world, `I6 converged ${convergenceMs} ms after faults stopped (bound ${bound})`);
  const violations = [...checker.violations, ...hub.check()];
  return {
    seed, family, failback, timings, violations, convergenceMs, boundMs: bound,
    maxDualActiveCleanMs: checker.maxDualActiveCleanMs, takeovers: checker.takeovers, conditionSeen: checker.conditionSeen,
    maxUnavailableMs: checker.maxUnavailableMs,
    rogueMode, untrustedRefused: checker.untrustedRefused, hub: { published: hub.published, delivered: hub.delivered, judged: hub.judged, beyondRetention: hub.beyondRetention, keyRefusals: hub.net.keyRefusals, lanesJudged: hub.lanesJudged, onlyOnBackup: hub.onlyOnBackup, standbyJudged: hub.standbyCopy.judged, catchUps: { ...hub.catchUps } },
    log: hub.lanes ? { pushes: hub.lanes.pushes, acked: hub.lanes.ackedPushes, judged: hub.lanes.lanesJudged } : null,
    trace: world.trace,
  };
}
