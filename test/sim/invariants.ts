/**
 * The failover invariants (docs/design.md §Invariants), checked after every simulator step and
 * on every effect, before the runner executes it.
 *
 *  I1 one server per epoch: an epoch is served by one server incarnation, ever.
 *  I2 epochs never go backwards on a server (in memory or on disk, across restarts).
 *  I3 persisted before announced: a heartbeat or startServing never carries an
 *     epoch above the one on disk.
 *  I4 the runner serves exactly when the core says active, at its epoch; a
 *     client's hub follows what its core chose.
 *  I5 no lasting split brain: while main and backup run and can talk, directly
 *     (clean link both ways) or through a client with clean links to both,
 *     both are active for at most one announcement's trip (splitHealMs; twice
 *     that through a client, which relays on its next heartbeat).
 *  I6 convergence: after faults stop, every live client follows the one active
 *     server within failoverTimeout + 2 × heartbeat + allowance (see boundMs).
 *  I7 (blip and witness families) no failover at all.
 *  I8 a server takes over only on grounds: the backup after hearing nothing
 *     from the main for a timeout (or its socket broke); the main after
 *     copying the backup's state, or when the backup never synced, or after
 *     hearing nothing from it for a timeout (or its socket broke), or after
 *     failing for a timeout to copy from an idle backup, or at once with no
 *     pairing at all.
 *  I10 no backup serves unless the main confirmed its pairing and it holds a
 *      first complete copy of the Data Hub state (both on its disk).
 *  I11 a backup enters idle only with every lane at or past the heads of the
 *      last main heartbeat that counted.
 *  I12 a replayed heartbeat counts only if it was sent within a timeout
 *      (then it is just a late datagram); older replays change nothing.
 *  I13 an isolated main stops serving within timeout + 2 heartbeats.
 *  I14 a backup restarted while the main is down serves within timeout + 2
 *      heartbeats (+ ticks and the wire).
 *  I15 saving unchanged settings has no effect on epochs or serving.
 *  I16 (rogue family) a holder of the network key cannot speak for a server:
 *      servers pair only with each other and stay paired.
 *  I17 (rogue family) the backup takes over a dead main within the bound,
 *      whatever the rogue sends (run.ts checks it).
 *  I18 epochs stay where sums are exact (below 2^52), so "the next epoch this
 *      server owns" is always a different number for each server.
 *  I19 main and backup that both run at the end of a run agree on their
 *      pairing: a backup that dropped it is asked to pair again (run.ts).
 *  I21 (readd-backup) a removed backup pairs again only through a new Add
 *      Backup on the main: the main records no pairing with it before one.
 *  I22 (readd-backup) a removed backup does not serve while the main runs,
 *      even when it was down at the removal and never heard the message.
 *  I20 a server persists an epoch it does not own only after the other server
 *      claimed it: nobody, a key holder least of all, moves a server to an
 *      epoch the servers did not sign (core/signed-claims.ts). Where no
 *      failover is allowed (I7), no server's epoch moves at all.
 *  I9 availability: while the only faulty link is the one between main and
 *     backup, and the main runs, once nothing changed for availableAfterMs,
 *     some server is active and every live client follows an active server.
 */
import { stallThresholdMs } from "../../src/core/failure-detector.ts";
import { epochOwner, lanesBehind, type Effect, type Lanes } from "../../src/core/failover/index.ts";
import type { Verdict } from "../../src/core/freshness.ts";
import type { Heartbeat } from "../../src/net/heartbeat.ts";
import type { SimNode, World } from "./world.ts";

/** Below 2^53 every integer is exact; the margin keeps claimEpoch's +1 and +2 exact too. */
const MAX_EXACT_EPOCH = 2 ** 52;

export interface CheckPlan {
  /** When faults stop (heal, resume, restarts); convergence is measured from here. */
  readonly faultsStopAt: number;
  /** From this time on, the main must stay active at one epoch and clients on it. */
  readonly noFailoverFrom: number | null;
}

export class Checker {
  readonly violations: string[] = [];
  /** Last time the network was not converged after faults stopped (−1: never). */
  lastUnconvergedAt = -1;
  #holder = new Map<number, string>();
  /** Every epoch a server started serving at (I20). */
  #claimed = new Set<number>();
  #maxEpoch = new Map<string, number>();
  #cleanSince: number | null = null;
  #topology = -1;
  #connected = { clean: false, direct: false };
  #dualSince: number | null = null;
  #frozenEpoch: number | null = null;
  /** For the report, and to show the schedules really exercise failover: */
  maxDualActiveCleanMs = 0;
  takeovers = { main: 0, backup: 0 };
  conditionSeen = false;

  #available = { holds: false, since: 0 };
  /** isolate-main: the cut; outage-restart: when the backup restarted. */
  isolation: { from: number; to: number } | null = null;
  mustServe: number | null = null;
  /** The heads of the last main heartbeat that counted, per backup incarnation. */
  #lastMainHeads = new Map<string, { inc: number; heads: Lanes | null }>();
  #backupPhase = "";
  replaysCounted = 0;
  /** Heartbeats refused for speaking as a server without its key (the rogue family's forgeries). */
  untrustedRefused = 0;
  /** Longest a client went without an active server while I9's premise held (for the report). */
  maxUnavailableMs = 0;

  constructor(
    readonly plan: CheckPlan,
    readonly splitHealMs: number,
    readonly availableAfterMs: number,
  ) {}

  #seen = new Set<string>();

  /** Records a violation once per invariant (its code is the first word), so a report stays short. */
  fail(world: World, what: string): void {
    const code = what.split(" ")[0] ?? what;
    if (this.#seen.has(code)) return;
    this.#seen.add(code);
    this.violations.push(`t=${world.now()}: ${what}`);
  }

  heartbeat(world: World, node: SimNode, hb: Heartbeat, verdict: Verdict | "untrusted", replayed: boolean): void {
    if (verdict === "untrusted") this.untrustedRefused += 1;
    if (verdict === "fresh" && hb.role === "main" && node.role === "backup") this.#lastMainHeads.set(node.name, { inc: node.inc, heads: hb.lanes });
    if (!replayed || verdict !== "fresh") return;
    this.replaysCounted += 1;
    const sent = world.sent.find((x) => x.hb === hb);
    const age = sent ? world.now() - sent.t : Infinity;
    if (age > world.cfg.timings.failoverTimeoutMs) this.fail(world, `I12 ${node.name} counted a heartbeat of ${hb.name} replayed ${age} ms after it was sent`);
  }

  effect(world: World, node: SimNode, fx: Effect): void {
    if (world.resaving === node && (fx.type === "persistEpoch" || fx.type === "startServing" || fx.type === "stopServing")) {
      this.fail(world, `I15 saving ${node.name}'s unchanged settings caused ${fx.type}`);
    }
    switch (fx.type) {
      case "persistEpoch":
        if (node.role !== "client" && epochOwner(fx.epoch) !== node.role && !this.#claimed.has(fx.epoch)) {
          this.fail(world, `I20 ${node.name} moved to epoch ${fx.epoch}, which no server claimed`);
        }
        if (this.plan.noFailoverFrom !== null && world.now() >= this.plan.noFailoverFrom) {
          this.fail(world, `I20 ${node.name}'s epoch moved to ${fx.epoch} where no failover is allowed`);
        }
        if (!(fx.epoch <= MAX_EXACT_EPOCH)) this.fail(world, `I18 ${node.name} persisted epoch ${fx.epoch}, where +1 and +2 are no longer exact`);
        if (fx.epoch < node.disk.epoch) this.fail(world, `I2 ${node.name} persisted epoch ${fx.epoch} below ${node.disk.epoch} on disk`);
        break;
      case "send": {
        if (fx.beat.condition !== null) this.conditionSeen = true;
        const top = Math.max(fx.beat.epoch, fx.beat.activeEpoch ?? 0);
        if (node.role !== "client" && top > node.disk.epoch) {
          this.fail(world, `I3 ${node.name} announced epoch ${top} with ${node.disk.epoch} on disk`);
        }
        break;
      }
      case "persistPairing": {
        // In the simulator only the two servers pair; only the operator removes the backup (readd-backup family).
        const partner = node.role === "main" ? "backup" : "main";
        if (fx.pairing?.peerId !== partner && !(fx.pairing === null && world.backupAdds !== "initial")) {
          this.fail(world, `I16 ${node.name}'s pairing changed to ${fx.pairing?.peerId ?? "none"}: someone else spoke for its partner`);
        }
        // A removed backup pairs again only through a new Add Backup: no keeper, retry or late answer pairs the main with it behind
        // the operator's back (the main's record is the one that counts; a backup that accepted an exchange still running at the
        // removal is told it is removed).
        if (node.role === "main" && fx.pairing?.peerId === partner && node.disk.pairing?.peerId !== partner && world.backupAdds === "removed") {
          this.fail(world, `I21 ${node.name} paired with ${partner} again after the backup was removed, with no new Add Backup`);
        }
        break;
      }
      case "startServing": {
        if (fx.epoch > node.disk.epoch) this.fail(world, `I3 ${node.name} serves epoch ${fx.epoch} with ${node.disk.epoch} on disk`);
        const who = `${node.name}#${node.inc}`;
        const had = this.#holder.get(fx.epoch);
        if (had !== undefined && had !== who) this.fail(world, `I1 epoch ${fx.epoch} served by ${had} and ${who}`);
        this.#holder.set(fx.epoch, who);
        this.#claimed.add(fx.epoch);
        this.#checkGrounds(world, node);
        const p = node.disk.pairing;
        if (node.role === "backup" && !(p?.confirmed && p.hubCopied)) this.fail(world, `I10 the backup serves without a confirmed pairing and a first copy`);
        if (node.role === "backup" && world.backupAdds === "removed" && world.node("main").state) this.fail(world, `I22 the removed backup serves while the main runs`);
        if (node.role === "main" || node.role === "backup") this.takeovers[node.role] += 1;
        break;
      }
      default:
        break;
    }
  }

  #checkGrounds(world: World, n: SimNode): void {
    const silentMs = world.now() - Math.max(n.startedAt, n.lastFromOther);
    // Silence counts only if nothing from the other server sits unread in the inbox, after a
    // stall the core could notice (a shorter one is like a datagram still on the wire).
    const noticeable = n.lastFreezeMs > stallThresholdMs(world.cfg.timings);
    const waiting = noticeable && n.queue.some((m) => m.kind === "beat" && m.hb.role !== "client" && m.hb.role !== n.role);
    const gone = (silentMs >= world.cfg.timings.failoverTimeoutMs || n.brokenSinceHeard) && !waiting;
    const noData = n.lastFromOtherState === "unpaired" || n.lastFromOtherState === "syncing";
    // An idle backup it could not copy from for a timeout: serving without beats nobody serving.
    const T = world.cfg.timings.failoverTimeoutMs;
    const copyFailing = n.lastFromOtherState === "idle" && n.copyFailingSince !== null && world.now() - n.copyFailingSince >= T;
    if (n.role === "backup" && !gone) {
      this.fail(world, `I8 the backup took over having heard the main ${silentMs} ms ago${waiting ? " (and more waiting)" : ""}`);
    }
    // A main with no pairing has no backup to ask: it serves at once.
    const unpaired = n.disk.pairing === null;
    if (n.role === "main" && !gone && !n.caughtUp && !noData && !copyFailing && !unpaired) {
      this.fail(world, `I8 the main took over without copying the backup's state (heard it ${silentMs} ms ago)`);
    }
  }

  afterStep(world: World, touched: SimNode | null): void {
    const now = world.now();
    if (touched) this.#checkNode(world, touched);
    else for (const n of world.nodes.values()) this.#checkNode(world, n);
    const actives: SimNode[] = [];
    for (const name of ["main", "backup"]) {
      const n = world.nodes.get(name);
      if (n?.state && n.serving !== null) actives.push(n);
    }
    this.#checkSplit(world, actives);
    this.#checkReadiness(world);
    this.#checkIsolation(world);
    // What follows depends only on who serves and whom clients follow: recompute when that changed.
    if (this.#version !== world.stateVersion) {
      this.#version = world.stateVersion;
      this.#availableNow = available(world, actives);
      this.#convergedNow = converged(world, actives);
      if (this.plan.noFailoverFrom !== null && now >= this.plan.noFailoverFrom) this.#checkNoFailover(world);
    }
    this.#checkAvailable(world);
    if (now >= this.plan.faultsStopAt && !this.#convergedNow) this.lastUnconvergedAt = now;
  }

  #version = -1;
  #availableNow = false;
  #convergedNow = false;

  /** I2, I3, I4 for one machine. */
  #checkNode(world: World, n: SimNode): void {
    const s = n.state;
    if (!s) return;
    if (s.role === "client") {
      if (s.following !== n.following.server || s.followingEpoch !== n.following.epoch) {
        this.fail(world, `I4 ${n.name} core follows ${s.following}@${s.followingEpoch}, runner ${n.following.server}@${n.following.epoch}`);
      }
      return;
    }
    const max = this.#maxEpoch.get(n.name) ?? 0;
    if (s.epoch < max) this.fail(world, `I2 ${n.name} epoch went back from ${max} to ${s.epoch}`);
    if (s.epoch > max) this.#maxEpoch.set(n.name, s.epoch);
    if (s.epoch > n.disk.epoch) this.fail(world, `I3 ${n.name} holds epoch ${s.epoch} with ${n.disk.epoch} on disk`);
    const active = s.phase.kind === "active" ? s.phase.epoch : null;
    if (active !== n.serving) this.fail(world, `I4 ${n.name} core active at ${active}, runner serving ${n.serving}`);
  }

  #checkSplit(world: World, actives: SimNode[]): void {
    const now = world.now();
    const m = world.nodes.get("main");
    const b = world.nodes.get("backup");
    // Connectivity changes only with links or processes (world.topology); recompute it then.
    if (this.#topology !== world.topology) {
      this.#topology = world.topology;
      const up = (n: SimNode | undefined): boolean => !!n?.state && !n.frozen;
      const direct = isClean(world, "main", "backup") && isClean(world, "backup", "main");
      const bridged = [...world.nodes.values()].some(
        (c) => c.role === "client" && up(c) && ["main", "backup"].every((s) => isClean(world, c.name, s) && isClean(world, s, c.name)),
      );
      this.#connected = { clean: up(m) && up(b) && (direct || bridged), direct };
      this.#available = { holds: this.#premiseOfI9(world), since: now };
    }
    const { clean, direct } = this.#connected;
    const limit = direct ? this.splitHealMs : 2 * this.splitHealMs;
    if (!clean) this.#cleanSince = null;
    else if (this.#cleanSince === null) this.#cleanSince = now;
    if (actives.length < 2) this.#dualSince = null;
    else if (this.#dualSince === null) this.#dualSince = now;
    if (this.#cleanSince !== null && this.#dualSince !== null) {
      // A failback hands over by announcement, so both are active for one message's trip.
      const ms = now - Math.max(this.#cleanSince, this.#dualSince);
      this.maxDualActiveCleanMs = Math.max(this.maxDualActiveCleanMs, ms);
      if (ms > limit) this.fail(world, `I5 main and backup both active for ${ms} ms while connected ${direct ? "directly" : "through a client"}`);
    }
  }

  #premiseOfI9(world: World): boolean {
    const up = (n: SimNode | undefined): boolean => !!n?.state && !n.frozen;
    const m = world.nodes.get("main");
    const b = world.nodes.get("backup");
    if (!up(m)) return false;
    // A machine whose setup still names where the main was (move-main) cannot reach it: not a fault to ride out.
    const staleSetup = [...world.nodes.values()].some((n) => {
      const at = n.state && n.role !== "main" ? n.runner?.serverAddress("main") : null;
      return !!at && at.host !== world.addressOf("main");
    });
    if (staleSetup) return false;
    // A main that hears nobody fences itself (I13): availability needs someone it can hear.
    const hearsSomeone = [...world.nodes.values()].some((n) => n !== m && up(n) && isClean(world, n.name, "main") && isClean(world, "main", n.name));
    if (!hearsSomeone) return false;
    for (const c of world.nodes.values()) {
      if (c.role !== "client" || !c.state) continue;
      if (c.frozen) return false;
      for (const s of up(b) ? ["main", "backup"] : ["main"]) {
        if (!isClean(world, c.name, s) || !isClean(world, s, c.name)) return false;
      }
    }
    return true;
  }

  #checkAvailable(world: World): void {
    if (!this.#available.holds) return;
    if (this.#availableNow) {
      this.#available.since = world.now(); // only unbroken unavailability counts
      return;
    }
    const waited = world.now() - this.#available.since;
    this.maxUnavailableMs = Math.max(this.maxUnavailableMs, waited);
    if (waited > this.availableAfterMs) this.fail(world, `I9 no server for every client ${waited} ms into a steady partition between main and backup`);
  }

  #checkReadiness(world: World): void {
    const b = world.nodes.get("backup");
    const phase = b?.state?.role === "backup" ? `${b.inc}:${b.state.phase.kind}` : "";
    if (phase === this.#backupPhase) return;
    const sameIncarnation = this.#backupPhase.split(":")[0] === phase.split(":")[0];
    this.#backupPhase = phase;
    // A restarted backup with a full copy on disk starts idle by design; it is judged from its next change.
    if (!phase.endsWith(":idle") || !b || !sameIncarnation) return;
    const heard = this.#lastMainHeads.get(b.name);
    const heads = heard?.inc === b.inc ? heard.heads : null;
    if (heads && lanesBehind(b.disk.lanes, heads).length > 0) this.fail(world, `I11 the backup went idle behind the main's heads`);
  }

  #checkIsolation(world: World): void {
    const { heartbeatMs: h, failoverTimeoutMs: T } = world.cfg.timings;
    const now = world.now();
    const slack = 2 * world.cfg.tickMs + world.cfg.latency[1];
    const cut = this.isolation;
    if (cut && now >= cut.from + T + 2 * h + slack && now < cut.to && world.node("main").serving !== null) {
      this.fail(world, `I13 the main still serves ${now - cut.from} ms into its isolation`);
    }
    if (this.mustServe !== null && now >= this.mustServe + T + 2 * h + slack) {
      const b = world.node("backup");
      if (!world.faultsStopped && b.state && !b.frozen && b.serving === null) {
        this.fail(world, `I14 the backup restarted during the outage does not serve ${now - this.mustServe} ms later`);
      }
      this.mustServe = null;
    }
  }

  #checkNoFailover(world: World): void {
    const main = world.node("main").state;
    const backup = world.node("backup").state;
    if (main?.role !== "main" || main.phase.kind !== "active") {
      this.fail(world, `I7 the main left active where no failover is allowed`);
      return;
    }
    this.#frozenEpoch ??= main.phase.epoch;
    if (main.phase.epoch !== this.#frozenEpoch) this.fail(world, `I7 the main's epoch changed where no failover is allowed`);
    if (backup?.role === "backup" && backup.phase.kind === "active") this.fail(world, `I7 the backup took over where no failover is allowed`);
    for (const n of world.nodes.values()) {
      if (n.role === "client" && n.state && n.following.server !== "main") {
        this.fail(world, `I7 ${n.name} left the main where no failover is allowed (follows ${n.following.server})`);
      }
    }
  }
}

function isClean(world: World, a: string, b: string): boolean {
  const l = world.linkState(a, b);
  return !l.cut && l.loss === 0 && l.extraDelay === 0;
}

/** Some server active, and every live client's hub on an active server at its epoch. */
function available(world: World, actives: SimNode[]): boolean {
  if (actives.length === 0) return false;
  for (const c of world.nodes.values()) {
    if (c.role !== "client" || !c.state) continue;
    const s = c.following.server === null ? null : world.nodes.get(c.following.server)?.state;
    if (!s || s.role === "client" || s.phase.kind !== "active" || s.phase.epoch !== c.following.epoch) return false;
  }
  return true;
}

/** One active server, and every live client's hub on it at its epoch. */
export function converged(world: World, actives?: SimNode[]): boolean {
  const act = actives ?? [...world.nodes.values()].filter((n) => n.state && n.role !== "client" && n.serving !== null);
  if (act.length !== 1) return false;
  const a = act[0]!;
  const s = a.state;
  if (!s || s.role === "client" || s.phase.kind !== "active") return false;
  for (const n of world.nodes.values()) {
    if (n.role !== "client" || !n.state) continue;
    if (n.following.server !== a.role || n.following.epoch !== s.phase.epoch) return false;
  }
  return true;
}
