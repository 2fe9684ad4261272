/**
 * Seeded fault schedules. Each family says what it injects, between `from`
 * and `stopAt` (when faults stop); run.ts then heals everything and checks.
 *
 *  chaos        crashes, freezes (of a process, or of its event loop alone),
 *               full / one-way / main-backup partitions,
 *               loss, delay, overlapping at random; failback auto or manual
 *               (manual adds random switch-back clicks).
 *  blip         only faults shorter than the failure detector can see (an
 *               event loop alone may stall longer, as long as the heartbeats
 *               handed over ahead cover): must cause no failover at all.
 *  rejoin-split the main crashes and restarts while it and the backup are cut
 *               from each other (one or both ways); clients see both.
 *  witness      main and backup cut from each other (one or both ways) for
 *               many timeouts while clients see both: must cause no failover.
 *  late-client  the main dies; a client set up while it is down (knowing the
 *               backup's address) joins, then the main may come back.
 *  new-backup   the backup starts with an empty data dir and unpaired; it is
 *               paired at some point and the main may die while it copies.
 *  replay       the whole network restarts once; then an adversary replays
 *               heartbeats recorded at any earlier time to every machine:
 *               must cause no failover at all.
 *  isolate-main the main is cut from everyone for several timeouts: it must
 *               stop serving within timeout + 2 heartbeats (and the backup serve).
 *  outage-restart the main dies; later the backup is restarted while it is
 *               still down: it must serve again within timeout + 2 heartbeats.
 * In every family the active main writes now and then (Data Hub and log), and
 * settings are saved again unchanged now and then (no effect allowed).
 */
import type { Rng } from "./prng.ts";
import { aheadPeriods } from "../../src/core/failure-detector.ts";
import type { Heartbeat } from "../../src/net/heartbeat.ts";
import { ROGUE, simSignature, type World } from "./world.ts";
import { epochMessage, type AliveToken, type EpochCert } from "../../src/core/signed-claims.ts";

export type Family = "chaos" | "rejoin-split" | "blip" | "witness" | "late-client" | "new-backup" | "replay" | "isolate-main" | "outage-restart" | "rogue" | MachineFamily;
/** families-machine.ts */
export type MachineFamily = "ipv6" | "resave-storm" | "network-key" | "readd-backup" | "move-main";
export type RogueMode = "alone" | "crash-main" | "chaos";

export const CLIENTS = ["c1", "c2", "c3"] as const;
const SERVERS = ["main", "backup"] as const;
const ALL = [...SERVERS, ...CLIENTS];

export interface Window {
  readonly from: number;
  readonly stopAt: number;
}

/** Schedules an action that only happens while faults are still on. */
function fault(world: World, t: number, label: string, run: () => void): void {
  world.at(t, label, () => {
    if (!world.faultsStopped) run();
  });
}

function cut(world: World, t: number, dur: number, pairs: readonly (readonly [string, string])[], label: string): void {
  fault(world, t, `cut ${label} for ${dur} ms`, () => {
    for (const [a, b] of pairs) world.link(a, b).cut = true;
  });
  fault(world, t + dur, `heal ${label}`, () => {
    for (const [a, b] of pairs) world.link(a, b).cut = false;
  });
}

function both(a: string, b: string): [string, string][] {
  return [[a, b], [b, a]];
}

/** Two different machines. */
function pair(rng: Rng): [string, string] {
  const a = rng.pick(ALL);
  return [a, rng.pick(ALL.filter((n) => n !== a))];
}

function isolate(node: string): [string, string][] {
  return ALL.filter((n) => n !== node).flatMap((n) => both(node, n));
}

export function chaos(world: World, rng: Rng, w: Window, manual: boolean): void {
  const { heartbeatMs: h, failoverTimeoutMs: T } = world.cfg.timings;
  for (let t = w.from + rng.int(0, 2 * h); t < w.stopAt; t += rng.int(h / 2, 4 * h)) {
    const dur = rng.chance(0.5) ? rng.int(h / 2, T) : rng.int(T, 3 * T);
    const roll = rng.next();
    if (roll < 0.14) {
      const who = rng.chance(0.8) ? rng.pick(SERVERS) : rng.pick(CLIENTS);
      fault(world, t, `crash ${who}`, () => world.crash(who));
      fault(world, t + dur, `restart ${who}`, () => world.restart(who));
    } else if (roll < 0.26) {
      const who = rng.pick(ALL);
      // Half of them stall the event loop alone: the heartbeats handed over ahead still go, then silence.
      const loopOnly = rng.chance(0.5);
      fault(world, t, `freeze ${who}${loopOnly ? "'s event loop" : ""} for ${dur} ms`, () => world.freeze(who, loopOnly));
      fault(world, t + dur, `resume ${who}`, () => world.resume(who));
    } else if (roll < 0.38) {
      const who = rng.pick(ALL);
      cut(world, t, dur, isolate(who), `${who} off`);
    } else if (roll < 0.52) {
      cut(world, t, dur, both("main", "backup"), "main<->backup");
    } else if (roll < 0.6) {
      const [a, b] = rng.chance(0.5) ? ["main", "backup"] : ["backup", "main"];
      cut(world, t, dur, [[a, b]], `${a}->${b}`);
    } else if (roll < 0.74) {
      const c = rng.pick(CLIENTS);
      const s = rng.pick(SERVERS);
      const pairs: [string, string][] = rng.chance(0.6) ? both(c, s) : rng.chance(0.5) ? [[c, s]] : [[s, c]];
      cut(world, t, dur, pairs, pairs.map(([a, b]) => `${a}->${b}`).join(","));
    } else if (roll < 0.84) {
      const [a, b] = pair(rng);
      const loss = rng.int(10, 90) / 100;
      fault(world, t, `loss ${loss} ${a}<->${b} for ${dur} ms`, () => {
        world.link(a, b).loss = loss;
        world.link(b, a).loss = loss;
      });
      fault(world, t + dur, `no loss ${a}<->${b}`, () => {
        world.link(a, b).loss = 0;
        world.link(b, a).loss = 0;
      });
    } else if (roll < 0.94) {
      const [a, b] = pair(rng);
      const extra = rng.int(h, 2 * T);
      fault(world, t, `delay up to ${extra} ms ${a}->${b} for ${dur} ms`, () => (world.link(a, b).extraDelay = extra));
      fault(world, t + dur, `no delay ${a}->${b}`, () => (world.link(a, b).extraDelay = 0));
    } else if (manual) {
      fault(world, t, "switch back", () => world.switchBack());
    }
  }
}

/**
 * The longest blip guaranteed to go unnoticed. The detector sees silence, not
 * the blip: the last heartbeat before it may have been sent almost a period
 * before it began, and the first one after it up to a period after it ended,
 * each a tick late and a latency slower. So a blip b is safe when
 * b + 2·h + 2·tick + latency < timeout; we test blips up to that, which with
 * the defaults is 757 of 1000 ms (and 126 of 250 with the fast preset).
 */
export function longestSafeBlip(world: World): number {
  const { heartbeatMs: h, failoverTimeoutMs: T } = world.cfg.timings;
  return T - 2 * h - 2 * world.cfg.tickMs - world.cfg.latency[1] - 1;
}

export function blips(world: World, rng: Rng, w: Window): void {
  const { heartbeatMs: h } = world.cfg.timings;
  const longest = longestSafeBlip(world);
  // Blips one at a time, with a few heartbeats of calm between so silences never add up.
  for (let t = w.from; ; ) {
    const dur = rng.int(1, longest);
    if (t + dur >= w.stopAt) break;
    const roll = rng.next();
    if (roll < 0.15) {
      const who = rng.pick(ALL);
      fault(world, t, `freeze ${who} for ${dur} ms`, () => world.freeze(who));
      fault(world, t + dur, `resume ${who}`, () => world.resume(who));
    } else if (roll < 0.3) {
      // An event loop held longer than any blip: what its heartbeat thread was handed covers the difference.
      const who = rng.pick(ALL);
      const held = dur + (aheadPeriods(world.cfg.timings) - 1) * h;
      fault(world, t, `freeze ${who}'s event loop for ${held} ms`, () => world.freeze(who, true));
      fault(world, t + held, `resume ${who}`, () => world.resume(who));
      t += held - dur;
    } else if (roll < 0.6) {
      const who = rng.pick(ALL);
      cut(world, t, dur, isolate(who), `${who} off`);
    } else if (roll < 0.8) {
      cut(world, t, dur, both("main", "backup"), "main<->backup");
    } else {
      // The whole network drops for a moment (a switch reboot that comes back fast).
      cut(world, t, dur, ALL.flatMap((a) => ALL.filter((b) => b !== a).map((b) => [a, b] as [string, string])), "everything");
    }
    t += dur + rng.int(3 * h, 6 * h);
  }
}

function mainBackupCut(rng: Rng): { pairs: [string, string][]; label: string; mainToBackup: boolean } {
  const dir = rng.pick(["both", "main->backup", "backup->main"] as const);
  const pairs: [string, string][] = dir === "both" ? both("main", "backup") : dir === "main->backup" ? [["main", "backup"]] : [["backup", "main"]];
  return { pairs, label: dir === "both" ? "main<->backup" : dir, mainToBackup: dir !== "backup->main" };
}

export function rejoinSplit(world: World, rng: Rng, w: Window): void {
  const { failoverTimeoutMs: T, heartbeatMs: h } = world.cfg.timings;
  for (let t = w.from; ; ) {
    const dur = rng.int(3 * T, 6 * T);
    if (t + dur >= w.stopAt) break;
    const c = mainBackupCut(rng);
    cut(world, t, dur, c.pairs, c.label);
    const crashAt = t + rng.int(0, T);
    fault(world, crashAt, "crash main", () => world.crash("main"));
    fault(world, crashAt + rng.int(1, 2 * T), "restart main", () => world.restart("main"));
    t += dur + rng.int(2 * h, T);
  }
}

/** Returns whether the main→backup direction was ever cut (then the backup must say so). */
export function witness(world: World, rng: Rng, w: Window): boolean {
  const { failoverTimeoutMs: T, heartbeatMs: h } = world.cfg.timings;
  let mainToBackupCut = false;
  for (let t = w.from; ; ) {
    const dur = rng.int(2 * T, 6 * T);
    if (t + dur >= w.stopAt) break;
    const c = mainBackupCut(rng);
    if (c.mainToBackup) mainToBackupCut = true;
    cut(world, t, dur, c.pairs, c.label);
    t += dur + rng.int(2 * h, 2 * T);
  }
  return mainToBackupCut;
}

/** Returns when the late client joins. */
export function lateClient(world: World, rng: Rng, w: Window): number {
  const { failoverTimeoutMs: T } = world.cfg.timings;
  fault(world, w.from, "crash main", () => world.crash("main"));
  const joinAt = w.from + rng.int(0, 2 * T);
  world.at(joinAt, "client c4 starts, set up with the main's and the backup's addresses", () => {
    world.spawn("c4", "client", { main: true, backup: true });
  });
  if (rng.chance(0.6)) fault(world, w.stopAt - rng.int(0, T), "restart main", () => world.restart("main"));
  return joinAt;
}

/** Writes on the active main (its lanes move) and unchanged settings saved again, all run long. */
export function writes(world: World, rng: Rng, w: Window): void {
  const { heartbeatMs: h } = world.cfg.timings;
  for (let t = w.from + rng.int(1, 4 * h); t < w.stopAt; t += rng.int(h / 2, 6 * h)) {
    const lane = rng.chance(0.5) ? "hub" : "log";
    world.at(t, `write ${lane}`, () => world.write(lane));
    if (rng.chance(0.1)) {
      const who = rng.pick(ALL);
      world.at(t + 1, `resave ${who}`, () => world.resave(who));
    }
  }
}

export function newBackup(world: World, rng: Rng, w: Window): void {
  const { failoverTimeoutMs: T } = world.cfg.timings;
  const pairAt = w.from + rng.int(0, T);
  // Now and then the main records its side late, past the backup's grace: the main must ask again.
  const mainLag = rng.chance(0.4) ? rng.int(T, 5 * T) : 0;
  world.at(pairAt, "pair the new backup", () => world.pair(mainLag));
  if (rng.chance(0.3)) {
    world.at(pairAt + rng.int(2 * T, 4 * T), "the backup restarts without its pairing record", () => world.forgetPairing("backup"));
  } else if (rng.chance(0.7)) {
    const crashAt = pairAt + rng.int(0, 3 * T);
    fault(world, crashAt, "crash main", () => world.crash("main"));
    if (rng.chance(0.5)) fault(world, crashAt + rng.int(T, 3 * T), "restart main", () => world.restart("main"));
  }
}

export function replayer(world: World, rng: Rng, w: Window): void {
  const { heartbeatMs: h, failoverTimeoutMs: T } = world.cfg.timings;
  // Everything restarts once, so the recording holds heartbeats of earlier boots too.
  world.at(w.from, "crash everything", () => {
    for (const n of ALL) world.crash(n);
  });
  world.at(w.from + 1, "restart everything", () => {
    for (const n of ALL) world.restart(n);
  });
  for (let t = w.from + 2; t < w.stopAt; t += rng.int(1, h)) {
    world.at(t, "replay", () => {
      if (world.sent.length === 0) return;
      const old = world.sent[rng.int(0, world.sent.length - 1)]!;
      world.replay(rng.pick(ALL), old.hb);
    });
  }
}

/** Returns the window in which the main must not serve. */
export function isolateMain(world: World, rng: Rng, w: Window): { from: number; to: number } {
  const { failoverTimeoutMs: T } = world.cfg.timings;
  const dur = rng.int(3 * T, 5 * T);
  cut(world, w.from, dur, isolate("main"), "main off");
  return { from: w.from, to: w.from + dur };
}

/** Returns when the backup restarted during the outage, to check it serves soon after. */
export function outageRestart(world: World, rng: Rng, w: Window): number {
  const { failoverTimeoutMs: T } = world.cfg.timings;
  fault(world, w.from, "crash main", () => world.crash("main"));
  const crashAt = w.from + rng.int(0, 2 * T);
  fault(world, crashAt, "crash backup", () => world.crash("backup"));
  const restartAt = crashAt + rng.int(1, T);
  fault(world, restartAt, "restart backup", () => world.restart("backup"));
  return restartAt;
}

const STATES: Record<"main" | "backup", readonly Heartbeat["state"][]> = {
  main: ["active", "rejoining", "standby", "isolated"],
  backup: ["unpaired", "syncing", "idle", "active"],
};

/**
 * One forged heartbeat, made of what the rogue has seen on the wire (every
 * heartbeat so far: a generous adversary) and what it invents. Its echo is
 * the target's latest stamp, so freshness alone would believe it.
 */
function forgery(world: World, rng: Rng, to: string): Heartbeat | null {
  const seen = world.sent;
  if (seen.length === 0) return null;
  const base = seen[rng.int(Math.max(0, seen.length - 60), seen.length - 1)]!.hb;
  let echo: Heartbeat["echo"] = null;
  for (let i = seen.length - 1; i >= 0 && i >= seen.length - 200; i--) {
    if (seen[i]!.hb.id === to) {
      echo = seen[i]!.hb.stamp;
      break;
    }
  }
  const claims = rng.pick(SERVERS);
  const roll = rng.next();
  // Mostly a server's id; else a client's (saying it hears either server and follows one at any epoch), or its own.
  const id = roll < 0.75 ? claims : roll < 0.9 ? rng.pick(CLIENTS) : ROGUE;
  const role = id !== claims && id !== ROGUE ? "client" : rng.chance(0.85) ? claims : rng.pick(["main", "backup", "client"] as const);
  // As itself, a client: rogueClient() lies in its own name with everything it saw on the wire.
  if (id === ROGUE && role === "client") return null;
  const epoch = rng.chance(0.5) ? base.epoch + rng.int(0, 3) : rng.int(0, 1_000_000);
  const states = role === "client" ? (["follow-main", "follow-backup", "follow-none"] as const) : STATES[role];
  const state = rng.pick(states);
  const lanes = rng.chance(0.5) ? base.lanes : { hubEpoch: rng.int(0, epoch), hubSeq: rng.int(0, 1_000_000), logId: rng.pick(["log-1", "other"]), logSeq: rng.int(0, 1_000_000) };
  return {
    ...base,
    id,
    name: id,
    role,
    state,
    epoch,
    activeEpoch: state === "active" || rng.chance(0.2) ? epoch : null,
    stamp: { boot: rng.chance(0.5) ? base.stamp.boot : `rogue-${rng.int(0, 9999)}`, seq: base.stamp.seq + rng.int(1, 10_000), sentAt: base.stamp.sentAt },
    echo: rng.chance(0.9) ? echo : base.echo,
    echoHeldMs: 0,
    challenge: rng.chance(0.3),
    msSinceHeardMain: rng.pick([0, null, 10_000]),
    msSinceHeardBackup: rng.pick([0, null, 10_000]),
    condition: null,
    syncProgress: state === "syncing" ? rng.next() : null,
    pairedWith: rng.pick(["main", "backup", ROGUE, null]),
    lanes,
    hubCopied: rng.chance(0.5),
  };
}

/**
 * The rogue as the client it is, under its own id: it says nothing about whom it
 * hears (that word is not bound to anything; see the README's security section)
 * but names epochs far ahead, up to the last exact integer, to servers that learn
 * epochs from clients' heartbeats.
 */
function inflateEpochs(world: World, rng: Rng): void {
  const to = rng.pick(SERVERS);
  const seen = world.sent.findLast((x) => x.hb.id === to)?.hb;
  if (!seen) return;
  const epoch = rng.pick([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 2 ** 52, rng.int(0, 1_000_000)]);
  world.forge(to, {
    ...seen, id: ROGUE, name: ROGUE, role: "client", state: "follow-none", epoch, activeEpoch: null, echo: seen.stamp,
    stamp: { boot: "rogue-client", seq: world.now() + 1, sentAt: world.now() }, msSinceHeardMain: null, msSinceHeardBackup: null,
    condition: null, syncProgress: null, pairedWith: null, lanes: null, hubCopied: null,
  }, ROGUE, rng.chance(0.5) ? ROGUE : null);
}

/** Everything the servers signed that went over the wire so far: certificates and alive tokens. */
function signedOnWire(world: World): { certs: EpochCert[]; tokens: Record<"main" | "backup", AliveToken[]> } {
  const certs = new Map<string, EpochCert>();
  const tokens = { main: new Map<string, AliveToken>(), backup: new Map<string, AliveToken>() };
  for (const { hb } of world.sent.slice(-400)) {
    for (const c of [hb.epochCert, hb.activeCert]) if (c) certs.set(c.s, c);
    if (hb.mainToken) tokens.main.set(hb.mainToken.s, hb.mainToken);
    if (hb.backupToken) tokens.backup.set(hb.backupToken.s, hb.backupToken);
  }
  return { certs: [...certs.values()], tokens: { main: [...tokens.main.values()], backup: [...tokens.backup.values()] } };
}

/**
 * A made-up certificate: a real one for another epoch, one the rogue signs itself, or garbage.
 * (It holds no server's key, so it never signs in a server's name.)
 */
function fakeCert(rng: Rng, epoch: number, real: EpochCert[]): EpochCert {
  const roll = rng.next();
  if (roll < 0.4 && real.length > 0) return { e: epoch, s: rng.pick(real).s };
  if (roll < 0.7) return { e: epoch, s: simSignature(ROGUE, epochMessage(epoch, epoch % 2 === 1 ? "main" : "backup", rng.pick(["main", "backup", ROGUE]))) };
  return { e: epoch, s: `garbage-${rng.int(0, 9999)}` };
}

/**
 * The rogue as the client it is, with its own machine key, lying in every way the wire allows
 * (issue 17, finding 1): it heartbeats the servers with fresh echoes and says it follows either
 * server at the highest epoch it saw + 1 (or far beyond), that it hears both servers this very
 * moment, with certificates and alive tokens copied from the wire (old or current, for another
 * epoch) or made up, and any pairing, lanes and copy state. Nothing of it may move an epoch,
 * make the active server step down or keep the backup from taking over a dead main.
 */
function rogueClient(world: World, rng: Rng): void {
  const { certs, tokens } = signedOnWire(world);
  const top = Math.max(0, ...world.sent.slice(-200).map((x) => x.hb.epoch));
  const claimed = rng.chance(0.6) ? top + 1 : rng.chance(0.5) ? top + rng.int(2, 5) : rng.pick([top, rng.int(0, 1_000_000), 2 ** 50]);
  const real = certs.filter((c) => c.e >= top - 2);
  // A real certificate where one fits (relaying the truth is allowed), else a made-up one.
  const certFor = (e: number): EpochCert | null => {
    const genuine = certs.find((c) => c.e === e);
    if (genuine && rng.chance(0.7)) return genuine;
    return rng.chance(0.8) ? fakeCert(rng, e, real) : null;
  };
  const token = (role: "main" | "backup"): AliveToken | null => {
    const seen = tokens[role];
    const roll = rng.next();
    if (roll < 0.5 && seen.length > 0) return seen[seen.length - 1]!;
    if (roll < 0.75 && seen.length > 0) return rng.pick(seen);
    if (roll < 0.9) return { b: seen.at(-1)?.b ?? "rogue-boot", t: (seen.at(-1)?.t ?? 0) + rng.int(1, 10_000), s: seen.length > 0 ? rng.pick(seen).s : "garbage" };
    return null;
  };
  const state = rng.chance(0.6) ? "follow-backup" : rng.pick(["follow-main", "follow-none"] as const);
  const active = state === "follow-none" && rng.chance(0.7) ? null : rng.chance(0.7) ? claimed : rng.pick([top, top + 1, top + 2]);
  for (const to of rng.chance(0.7) ? SERVERS : [rng.pick(ALL)]) {
    const seen = world.sent.findLast((x) => x.hb.id === to)?.hb;
    if (!seen) continue;
    world.forge(to, {
      ...seen, id: ROGUE, name: ROGUE, role: "client", state, epoch: claimed, activeEpoch: active,
      stamp: { boot: "rogue-client", seq: world.now() + 1, sentAt: world.now() }, echo: rng.chance(0.95) ? seen.stamp : null, echoHeldMs: 0,
      challenge: rng.chance(0.2), msSinceHeardMain: rng.pick([0, 0, 0, 5, null]), msSinceHeardBackup: rng.pick([0, 0, 5, null]),
      condition: null, syncProgress: rng.chance(0.2) ? rng.next() : null, pairedWith: rng.pick(["main", "backup", ROGUE, null]),
      lanes: rng.chance(0.5) ? null : { hubEpoch: rng.int(0, claimed), hubSeq: rng.int(0, 1_000_000), logId: rng.pick(["log-1", "other"]), logSeq: rng.int(0, 1_000_000) },
      hubCopied: rng.pick([true, false, null]),
      epochCert: certFor(claimed), activeCert: active === null || active === claimed ? undefined : certFor(active),
      mainToken: token("main"), backupToken: token("backup"),
    }, ROGUE, rng.chance(0.7) ? ROGUE : null);
  }
}

/**
 * The rogue key holder (see the family list above). Returns when the main
 * crashes in "crash-main", to check that the backup still takes over.
 */
export function rogue(world: World, rng: Rng, w: Window, mode: RogueMode, manual: boolean): number | null {
  const { heartbeatMs: h, failoverTimeoutMs: T } = world.cfg.timings;
  for (let t = w.from + rng.int(0, h); t < w.stopAt; t += rng.int(1, h)) {
    fault(world, t, "rogue", () => {
      if (rng.chance(0.08)) return world.rogueAsks(rng.pick(["pair", "unpair"]), rng.pick(["main", "backup", ROGUE]));
      if (rng.chance(0.08)) return inflateEpochs(world, rng);
      if (rng.chance(0.45)) return rogueClient(world, rng);
      const to = rng.pick(ALL);
      const hb = forgery(world, rng, to);
      if (hb === null) return;
      const from = rng.pick([ROGUE, hb.id, "main", "backup"]);
      world.forge(to, hb, from, hb.id === ROGUE && rng.chance(0.5) ? ROGUE : null);
    });
  }
  if (mode === "chaos") chaos(world, rng, w, manual);
  if (mode !== "crash-main") return null;
  const crashAt = w.from + rng.int(0, 2 * T);
  fault(world, crashAt, "crash main", () => world.crash("main"));
  return crashAt;
}
