/**
 * Failover core: pure state machines for the main, the backup and clients.
 * No clock, timer, socket or disk here; a runner owns those.
 *
 * ## Running a machine
 *
 *   let { state, effects } = startMain({ paired, epoch: persisted, failback }, clock.now());
 *   run(effects);
 *   // every tickPeriodMs(heartbeatMs), and on every input:
 *   ({ state, effects } = transition(state, event, clock.now()));
 *   run(effects);                      // in order, each one finished before the next
 *
 * Start: `startMain({timings?, failback?, selfId, pairing, epoch})`,
 * `startBackup({timings?, selfId, pairing, epoch})`, `startClient({timings?,
 * knows: {main, backup}})`. `transition(state, event, now)` dispatches on
 * `state.role` (same as `mainTransition` / `backupTransition` /
 * `clientTransition`). `statusChip(state, now)` gives the UI chip.
 *
 * Events (types.ts): every role takes `tick`, `heartbeat {id, beat}` (a
 * heartbeat body already authenticated and freed of replays; `id` = sender
 * machine id) and `linkBroken {peer: "main"|"backup"}` (the replication
 * socket on servers, the Data Hub socket on clients). The main also takes
 * `catchUpDone`, `catchUpFailed`, `switchBack`, `paired {peerId}`, `unpaired`,
 * `lanes`; the backup `paired {peerId}`, `syncProgress {progress}`, `syncDone`
 * (first complete Data Hub copy), `unpaired`, `lanes`; a client `setServers
 * {main, backup}` (which addresses it knows).
 *
 * Effects (types.ts), to run in order:
 * - `persistEpoch {epoch}`: write durably before the next effect. It always
 *   comes before any `send` or `startServing` carrying that epoch.
 * - `send {to, beat}`: seal and send a heartbeat, adding id, seq, sentAt,
 *   echo, showFileRevision. `to` is `{role: "main"}`, `{role: "backup"}` or
 *   `{role: "client", id}`. Servers send to the other server and to every
 *   client heard within a timeout, each period; to a new client at once.
 * - `startServing {epoch}`: accept Data Hub writes stamped with this epoch
 *   (on the main it also means: abandon any catch-up still running).
 * - `stopServing {epoch}`: refuse writes, close hub sessions. The backup's
 *   runner keeps its replication log readable so the main can copy the rest.
 * - `startCatchUp {epoch}` (main): copy the Data Hub state changed on the
 *   backup; answer `catchUpDone` or `catchUpFailed`. A late answer is
 *   ignored. Also while serving, for a main that took over without the
 *   backup's latest writes: it imports them beside its own.
 * - `follow {server, epoch}` (client): connect the Data Hub to that server,
 *   re-subscribe, flush what local apps published meanwhile; null = none.
 * - `persistPairing {pairing}` (servers): write the pairing record durably
 *   before the next effect.
 * - `log {level, message}`: for the operator's log only.
 *
 * ## Timing contract
 *
 * Tick every `tickPeriodMs(heartbeatMs)` (heartbeat / 5). Deadlines (next
 * heartbeat, silence ≥ timeout) are noticed on the first tick after them,
 * and taking over happens only on a tick, so a tick period g adds at most g.
 * With that, after faults stop every client is on the one active server
 * within failoverTimeout + 2 × heartbeat (+ 2 ticks + 2 one-way latencies;
 * test/sim checks it). A gap of more than half a heartbeat between two steps
 * is taken as this machine stalling (SIGSTOP, blocked loop): peers are not
 * blamed for it, and takeovers wait for a step on time at least a tick after
 * the stall (at most a heartbeat) so queued input is read.
 * A blip b causes no failover when b + 2 × heartbeat + 2 ticks + latency is
 * under the timeout (757 of 1000 ms with the defaults): silence seen is the
 * blip plus up to a period on each side of it.
 *
 * ## Rules (docs/design.md §Failover, refined)
 *
 * - Epochs (epoch.ts): the main claims odd epochs, the backup even ones,
 *   always above every epoch it knows, on every takeover (a restart too). So
 *   two servers are never active at one epoch, whatever the network does.
 * - Witness (server-common.ts): the backup takes over only when no client
 *   heard the main within a timeout (receipt time − msSinceHeardMain).
 * - Fencing (server-common.ts): an active server steps down at once when the
 *   other is active at a higher epoch: by its own heartbeat, or by a client
 *   that follows it (when that is newer than what it said itself).
 * - Main (main.ts): every start is `rejoining`; it copies from an idle or
 *   active backup before serving; it does not serve while clients say the
 *   backup serves and the backup cannot be reached to copy from.
 */
import { backupTransition, type BackupState } from "./backup.ts";
import { clientTransition, type ClientState } from "./client.ts";
import { mainTransition, type MainState } from "./main.ts";
import { backupBeat } from "./backup.ts";
import { clientBeat } from "./client.ts";
import { mainBeat } from "./main.ts";
import type { BackupEvent, BeatBody, ClientEvent, MainEvent, Step } from "./types.ts";

export type NodeState = MainState | BackupState | ClientState;
export type NodeEvent = MainEvent | BackupEvent | ClientEvent;

/** What this machine would say in a heartbeat now (the runner answers unverified heartbeats with it). */
export function beatOf(s: NodeState, now: number): BeatBody {
  switch (s.role) {
    case "main":
      return mainBeat(s, now);
    case "backup":
      return backupBeat(s, now);
    case "client":
      return clientBeat(s, now);
  }
}

export { TICKS_PER_HEARTBEAT, tickPeriodMs } from "../failure-detector.ts";

export function transition(s: MainState, ev: MainEvent, now: number): Step<MainState>;
export function transition(s: BackupState, ev: BackupEvent, now: number): Step<BackupState>;
export function transition(s: ClientState, ev: ClientEvent, now: number): Step<ClientState>;
export function transition(s: NodeState, ev: MainEvent | BackupEvent | ClientEvent, now: number): Step<NodeState> {
  switch (s.role) {
    case "main":
      return mainTransition(s, ev as MainEvent, now);
    case "backup":
      return backupTransition(s, ev as BackupEvent, now);
    case "client":
      return clientTransition(s, ev as ClientEvent, now);
  }
}

export { backupBeat, backupTransition, startBackup, syncProgress } from "./backup.ts";
export type { BackupOptions, BackupPhase, BackupState } from "./backup.ts";
export { chooseServer, clientBeat, clientTransition, startClient } from "./client.ts";
export type { ClientOptions, ClientState } from "./client.ts";
export { claimEpoch, epochOwner } from "./epoch.ts";
export { mainBeat, mainTransition, startMain } from "./main.ts";
export { fromFormerPartner, MAX_FORMER_PARTNERS } from "./former-partners.ts";
export type { CatchUp, MainOptions, MainPhase, MainState } from "./main.ts";
export { isIsolated, otherActiveEpoch, witnessHearsMain } from "./server-common.ts";
export { EMPTY_LANES, lanesBehind, logFraction, sameLanes } from "./lanes.ts";
export type { Lanes } from "./lanes.ts";
export { CHIP_TEXT, statusChip } from "./status.ts";
export type { ChipKind, StatusChip } from "./status.ts";
export type * from "./types.ts";
