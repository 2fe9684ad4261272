/**
 * A client's failover state machine: which server its Data Hub follows.
 *
 * Rule: follow the active server with the highest epoch among those heard
 * within a timeout (and whose socket did not break since); none if there is
 * none. Epochs only grow at takeovers, so "highest" is the newest term: when
 * the main dies the backup's higher epoch wins, when the main takes back it
 * wins again, and during a split the newer side wins until fencing ends it.
 *
 * A client heartbeats every server whose address it knows, each heartbeat,
 * telling how long ago it heard each of them: the backup counts those as
 * witnesses before taking over, and both servers use "following X at epoch
 * e" as fencing evidence when they cannot hear each other.
 */
import { broke, clampTimings, excusePause, heard, isDown, msSinceHeard, silenceMs, stallMs, watch, type Timings } from "../failure-detector.ts";
import type { BeatBody, ClientEvent, ClientStateName, Effect, ServerRole, ServerView, Step } from "./types.ts";

export interface ClientState {
  readonly role: "client";
  readonly timings: Timings;
  /** Which server addresses the client knows (a client set up while the main is down knows the backup's). */
  readonly knows: { readonly main: boolean; readonly backup: boolean };
  /** Highest epoch heard of. Not persisted: a restarted client relearns it within a heartbeat. */
  readonly epoch: number;
  readonly servers: { readonly main: ServerView; readonly backup: ServerView };
  readonly following: ServerRole | null;
  readonly followingEpoch: number | null;
  readonly nextBeatAt: number;
  /** When the last transition ran: a long gap since means this machine stalled (see noteStall). */
  readonly lastStepAt: number;
  /**
   * When the server it followed stepped down for a newer term this client has not heard
   * from yet (a failback): a switch underway, not a loss, for up to a failover timeout.
   */
  readonly switchingSince?: number | null;
}

export interface ClientOptions {
  readonly timings?: Partial<Timings>;
  readonly knows: { readonly main: boolean; readonly backup: boolean };
}

const ROLES: readonly ServerRole[] = ["main", "backup"];

export function startClient(opts: ClientOptions, now: number): Step<ClientState> {
  const state: ClientState = {
    role: "client",
    timings: clampTimings(opts.timings),
    knows: { main: opts.knows.main, backup: opts.knows.backup },
    epoch: 0,
    servers: { main: { live: watch(now), beat: null }, backup: { live: watch(now), beat: null } },
    following: null,
    followingEpoch: null,
    nextBeatAt: now,
    lastStepAt: now,
  };
  return settle(state, now, [], false);
}

export function clientTransition(prev: ClientState, ev: ClientEvent, now: number): Step<ClientState> {
  const fx: Effect[] = [];
  const s = noteStall(prev, now);
  let next = s;
  let urgent = false;
  switch (ev.type) {
    case "tick":
      break;
    case "heartbeat": {
      const role = ev.beat.role;
      if (role === "client") break;
      const view: ServerView = { live: heard(s.servers[role].live, now), beat: ev.beat };
      next = { ...s, epoch: Math.max(s.epoch, ev.beat.epoch), servers: { ...s.servers, [role]: view } };
      break;
    }
    case "linkBroken": {
      const old = s.servers[ev.peer];
      next = { ...s, servers: { ...s.servers, [ev.peer]: { live: broke(old.live, now), beat: old.beat } } };
      // Tell the servers at once that we lost this one: the backup is waiting for exactly this word.
      urgent = true;
      break;
    }
    case "setServers":
      next = { ...s, knows: { main: ev.main, backup: ev.backup } };
      break;
  }
  return settle(next, now, fx, urgent);
}

/**
 * Servers' silence while this client itself was stopped is excused, so a
 * client resuming from a stall does not drop its server before it has read
 * the heartbeats that queued up meanwhile.
 */
function noteStall(s: ClientState, now: number): ClientState {
  const paused = stallMs(s.lastStepAt, now, s.timings);
  if (paused === 0) return { ...s, lastStepAt: now };
  const excuse = (v: ServerView): ServerView => ({ live: excusePause(v.live, paused), beat: v.beat });
  return { ...s, lastStepAt: now, servers: { main: excuse(s.servers.main), backup: excuse(s.servers.backup) } };
}

/** The server to follow now, by the rule above. */
export function chooseServer(s: ClientState, now: number): { server: ServerRole; epoch: number } | null {
  let best: { server: ServerRole; epoch: number } | null = null;
  for (const role of ROLES) {
    if (!s.knows[role]) continue;
    const view = s.servers[role];
    const beat = view.beat;
    if (beat === null || beat.state !== "active" || beat.activeEpoch === null) continue;
    if (isDown(view.live, now, s.timings)) continue;
    if (best === null || beat.activeEpoch > best.epoch) best = { server: role, epoch: beat.activeEpoch };
  }
  return best;
}

function settle(s: ClientState, now: number, fx: Effect[], urgentIn: boolean): Step<ClientState> {
  let cur = s;
  let urgent = urgentIn;
  const choice = chooseServer(s, now);
  const server = choice?.server ?? null;
  const epoch = choice?.epoch ?? null;
  if (server !== s.following || epoch !== s.followingEpoch) {
    fx.push({ type: "follow", server, epoch });
    fx.push({
      type: "log",
      level: server === null ? "warn" : "info",
      message: server === null ? "No active server: local publishes are queued." : `Following the ${server} server (epoch ${epoch}).`,
    });
    // The backup it followed stopped serving (its beat, or its socket closing) while still heard within the timeout:
    // it does so when the main takes back a newer term, so a switch is underway, not a loss. A backup that crashed
    // reads "No server reachable" a failover timeout later.
    const backup = s.servers.backup;
    const steppedDown = s.following === "backup" && backup.beat !== null && silenceMs(backup.live, now) < s.timings.failoverTimeoutMs;
    const switching = server === null && (steppedDown || (s.followingEpoch !== null && s.epoch > s.followingEpoch));
    cur = { ...cur, following: server, followingEpoch: epoch, switchingSince: switching ? now : null };
    urgent = true; // both servers use "who follows whom" as evidence; tell them now
  }
  const due = now >= cur.nextBeatAt;
  if (!due && !urgent) return { state: cur, effects: fx };
  const beat = clientBeat(cur, now);
  for (const role of ROLES) {
    if (cur.knows[role]) fx.push({ type: "send", to: { role }, beat });
  }
  if (due) {
    const next = cur.nextBeatAt + cur.timings.heartbeatMs;
    cur = { ...cur, nextBeatAt: next > now ? next : now + cur.timings.heartbeatMs };
  }
  return { state: cur, effects: fx };
}

export function clientBeat(s: ClientState, now: number): BeatBody {
  const state: ClientStateName = s.following === null ? "follow-none" : s.following === "main" ? "follow-main" : "follow-backup";
  return {
    role: "client",
    state,
    epoch: s.epoch,
    activeEpoch: s.followingEpoch,
    msSinceHeardMain: s.knows.main ? msSinceHeard(s.servers.main.live, now) : null,
    msSinceHeardBackup: s.knows.backup ? msSinceHeard(s.servers.backup.live, now) : null,
    condition: null,
    syncProgress: null,
    pairedWith: null,
    lanes: null,
    hubCopied: null,
  };
}
